"""CUDA checks (skipped without a GPU): augmentation, encoders and pre-training on the device."""

import json

import pytest
import torch

from amortinv import InvarianceSpace
from amortinv.augment import VisionAugment
from amortinv.encoders import build_encoder

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_augment_runs_on_gpu_and_matches_shapes():
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, device="cuda")
    aug = VisionAugment(InvarianceSpace.from_name("groups2"), 32).cuda()
    for d in ([1, 0], [0, 1], [1, 1]):
        v1, v2 = aug(x, d)
        assert v1.is_cuda and v1.shape == (64, 3, 32, 32) and not torch.allclose(v1, v2)


def test_views_on_gpu_equal_views_on_cpu_for_the_same_parameters():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (300, 3, 40, 44), dtype=torch.uint8)  # some crops shrink: antialiased
    aug = VisionAugment(InvarianceSpace.from_name("groups2"), 32, recipe="moco")
    for d in ([1, 0], [0, 1], [1, 1]):
        p = aug.sample(x, d)
        torch.testing.assert_close(aug.apply(x.cuda(), p).cpu(), aug.apply(x, p), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["hyper_resnet18", "prompt_vit_tiny"])
def test_encoder_bf16_training_step_and_materialise_on_gpu(name):
    opts = {"cifar_stem": True, "width": 0.5} if "resnet" in name else {"img_size": 32, "patch_size": 4}
    enc = build_encoder(name, invariance_dim=2, **opts).cuda()
    i = torch.tensor([0.3, 0.7], device="cuda", requires_grad=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = enc(torch.rand(16, 3, 32, 32, device="cuda"), i).float().pow(2).mean()
    loss.backward()
    assert torch.isfinite(loss) and i.grad is not None and i.grad.abs().sum() > 0
    if "resnet" in name:
        enc.eval()
        x = torch.rand(8, 3, 32, 32, device="cuda")
        with torch.no_grad():
            assert torch.allclose(enc.materialise(i.detach())(x), enc(x, i.detach()), atol=1e-4)


@pytest.mark.parametrize("method", ["simclr", "mocov2", "mocov3"])
def test_pretrain_on_gpu_bf16(tiny_npz, tmp_path, method):
    from amortinv.ssl.pretrain import PretrainConfig, run_pretrain

    cfg = PretrainConfig(
        method=method,
        data="npz",
        data_root=str(tiny_npz),
        batch_size=16,
        epochs=1,
        max_steps=3,
        encoder_options={"cifar_stem": True, "width": 0.125},
        proj_hidden=32,
        proj_dim=16,
        queue_size=64,
        pred_hidden=32,
        accelerator="gpu",
        devices=1,
        precision="bf16-mixed",
        knn_bank=64,
        progress=False,
        out=str(tmp_path / method),
    )
    result = run_pretrain(cfg)
    assert result["steps"] == 3 and result["device"] != "cpu" and result["peak_memory_mb"] > 0
    assert json.loads((tmp_path / method / "result.json").read_text())["final_loss"] > 0


def test_forward_mode_gradient_matches_backprop_on_gpu():
    from amortinv.transfer.learn import features_and_tangents

    torch.manual_seed(0)
    enc = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.25).cuda().eval()
    for p in enc.parameters():
        p.requires_grad_(False)
    x = torch.rand(8, 3, 32, 32, device="cuda")
    i = torch.tensor([0.3, 0.6], device="cuda", requires_grad=True)
    w = torch.randn(8, enc.feature_dim, device="cuda")
    (enc(x, i) * w).sum().backward()
    _, tangents = features_and_tangents(enc, x, i.detach())
    assert torch.allclose(torch.einsum("bd,kbd->k", w, tangents), i.grad, rtol=1e-3, atol=1e-3)


def test_demo_quick_on_gpu(tmp_path):
    from amortinv.demo import run_demo

    result = run_demo(out=str(tmp_path / "demo"), quick=True, device="cuda")
    assert result["device"] == "cuda" and set(result["learned_i"]) == {"shape", "orientation", "position", "colour"}
