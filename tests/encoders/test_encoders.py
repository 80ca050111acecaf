import pytest
import torch
import torchvision

from amortinv.encoders import HyperConv2d, build_encoder
from amortinv.encoders.resnet import ResNet

TINY = {"cifar_stem": True, "width": 0.125}


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_hyper_resnet50_parameter_count_matches_paper_design():
    with torch.device("meta"):
        assert n_params(build_encoder("hyper_resnet50", invariance_dim=2)) == 773_792_960


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_parameter_rule_and_plain_counts(depth):
    with torch.device("meta"):
        hyper = build_encoder(f"hyper_resnet{depth}", invariance_dim=3)
        plain = build_encoder(f"resnet{depth}")
        tv = getattr(torchvision.models, f"resnet{depth}")()
    assert n_params(plain) == n_params(tv) - tv.fc.weight.numel() - tv.fc.bias.numel()
    kernels = [m for m in hyper.modules() if isinstance(m, HyperConv2d)]
    assert len(kernels) == {18: 19, 34: 35, 50: 52}[depth]
    generated = sum(m.out.out_features for m in kernels)
    blocks = sum(len(s) for s in hyper.stages())
    expected = (n_params(plain) - generated) + sum(33 * m.out.out_features + 544 for m in kernels) + blocks * 16 * 3
    assert n_params(hyper) == expected


@pytest.mark.parametrize(
    ("name", "opts", "shape", "dim"),
    [
        ("hyper_resnet18", TINY, (2, 3, 32, 32), 64),
        ("hyper_resnet18", {"width": 0.125}, (1, 3, 224, 224), 64),
        ("hyper_resnet50", {**TINY, "in_channels": 1}, (2, 1, 32, 32), 256),
        ("hyper_resnet34", {**TINY, "hidden_dim": 8, "embed_dim": 4}, (2, 3, 32, 32), 64),
        ("resnet18", TINY, (2, 3, 32, 32), 64),
        ("prompt_vit_tiny", {"img_size": 32, "patch_size": 8, "depth": 2}, (2, 3, 32, 32), 192),
        ("vit_tiny", {"img_size": 224, "patch_size": 16, "depth": 1}, (1, 3, 224, 224), 192),
    ],
)
def test_output_shapes(name, opts, shape, dim):
    enc = build_encoder(name, invariance_dim=2, **opts).eval()
    out = enc(torch.rand(shape), torch.tensor([1.0, 0.0]))
    assert out.shape == (shape[0], dim) == (shape[0], enc.feature_dim)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["hyper_resnet18", "prompt_vit_tiny"])
def test_output_depends_on_i_and_gradient_matches_finite_differences(name):
    torch.manual_seed(0)
    opts = TINY if "resnet" in name else {"img_size": 16, "patch_size": 8, "depth": 2, "projectors": 3}
    enc = build_encoder(name, invariance_dim=2, **opts).double().eval()
    x = torch.rand(3, 3, 32 if "resnet" in name else 16, 32 if "resnet" in name else 16, dtype=torch.float64)
    a, b = enc(x, torch.tensor([1.0, 0.0])), enc(x, torch.tensor([0.0, 1.0]))
    assert (a - b).norm() > 0.05 * a.norm()
    i = torch.tensor([0.4, 0.7], dtype=torch.float64, requires_grad=True)
    direction = torch.randn(3, enc.feature_dim, dtype=torch.float64)
    loss = (enc(x, i) * direction).sum()
    (grad,) = torch.autograd.grad(loss, i)
    assert grad.abs().min() > 0
    eps = 1e-6
    for k in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[k] = eps
        with torch.no_grad():
            fd = ((enc(x, i + e) * direction).sum() - (enc(x, i - e) * direction).sum()) / (2 * eps)
        assert torch.isclose(grad[k], fd, rtol=1e-4, atol=1e-8), (k, grad[k], fd)


def test_eval_mode_is_deterministic():
    enc = build_encoder("hyper_resnet18", invariance_dim=2, **TINY).eval()
    x, i = torch.rand(4, 3, 32, 32), torch.tensor([0.3, 0.6])
    assert torch.equal(enc(x, i), enc(x, i))
    assert torch.equal(enc(x[:2], i), enc(x, i)[:2])  # no batch statistics in eval mode


def test_init_gives_fan_in_scale_and_descriptor_dependent_kernels():
    torch.manual_seed(0)
    enc = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.5)
    blk = enc.layer3[1]
    conv = blk.conv2
    fan_in_std = (2 / (conv.in_channels * 9)) ** 0.5
    w10 = conv.weight(blk.embed(torch.tensor([1.0, 0.0])))
    w01 = conv.weight(blk.embed(torch.tensor([0.0, 1.0])))
    for w in (w10, w01):
        assert 0.6 * fan_in_std < w.std() < 1.3 * fan_in_std
    assert (w10 - w01).norm() > 0.3 * w10.norm()


def test_materialise_matches_and_loads_into_torchvision():
    torch.manual_seed(0)
    hyper = build_encoder("hyper_resnet18", invariance_dim=2, hidden_dim=4)  # ImageNet stem, full width
    x = torch.rand(2, 3, 64, 64)
    hyper.train()
    for _ in range(2):  # give the BatchNorms non-trivial running statistics
        hyper(x, torch.tensor([1.0, 1.0]))
    hyper.eval()
    i = torch.tensor([0.2, 0.9])
    plain = hyper.materialise(i).eval()
    assert isinstance(plain, ResNet) and not plain.conditioned
    assert not any(isinstance(m, HyperConv2d) for m in plain.modules())
    with torch.no_grad():
        ref = hyper(x, i)
        assert torch.allclose(plain(x), ref, atol=1e-5)
        tv = torchvision.models.resnet18()
        result = tv.load_state_dict(plain.state_dict(), strict=False)
        assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"] and not result.unexpected_keys
        tv.fc = torch.nn.Identity()
        assert torch.allclose(tv.eval()(x), ref, atol=1e-5)
    with pytest.raises(ValueError, match="plain already"):
        plain.materialise(i)


def test_wide_projector_equals_mean_of_separate_mlps():
    torch.manual_seed(0)
    vit = build_encoder("prompt_vit_tiny", invariance_dim=3, img_size=16, patch_size=8, depth=1, projectors=5)
    proj, d, p = vit.prompt, vit.feature_dim, 5
    i = torch.rand(3)
    separate = []
    for k in range(p):
        sl = slice(k * d, (k + 1) * d)
        h = torch.relu(proj.fc1.weight[sl] @ i + proj.fc1.bias[sl])
        separate.append(proj.fc2.weight[:, sl] @ h + proj.fc2.bias)
    assert torch.allclose(proj(i), torch.stack(separate).mean(0), atol=1e-6)


def test_prompt_vit_token_layout():
    torch.manual_seed(0)
    vit = build_encoder("prompt_vit_tiny", invariance_dim=2, img_size=32, patch_size=8, depth=1)
    i = torch.tensor([1.0, 0.0])
    a, b = vit.tokens(torch.rand(2, 3, 32, 32), i), vit.tokens(torch.rand(2, 3, 32, 32), i)
    assert a.shape == (2, 1 + 16 + 1, 192)
    assert torch.equal(a[:, -1], b[:, -1]) and torch.allclose(a[0, -1], vit.prompt(i))
    assert not torch.allclose(a[:, 1:-1], b[:, 1:-1])
    assert not torch.allclose(vit.tokens(torch.rand(1, 3, 32, 32), torch.tensor([0.0, 1.0]))[0, -1], a[0, -1])
    plain = build_encoder("vit_tiny", img_size=32, patch_size=8, depth=1, pos_embed="sincos")
    assert plain.tokens(torch.rand(2, 3, 32, 32)).shape == (2, 17, 192)
    assert not plain.pos_embed.requires_grad


def test_bad_descriptors_and_inputs_are_rejected():
    enc = build_encoder("hyper_resnet18", invariance_dim=2, **TINY)
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"shape \(2,\).*\(2, 2\).*one descriptor per call"):
        enc(x, torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"shape \(2,\), got \(3,\)"):
        enc(x, torch.ones(3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        enc(x, torch.tensor([1.5, 0.0]))
    with pytest.raises(ValueError, match="non-finite"):
        enc(x, torch.tensor([float("nan"), 0.0]))
    with pytest.raises(ValueError, match="pass i"):
        enc(x)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        enc(torch.rand(2, 1, 32, 32), torch.ones(2))
    vit = build_encoder("prompt_vit_tiny", invariance_dim=2, img_size=32, patch_size=8, depth=1)
    with pytest.raises(ValueError, match="32x32"):
        vit(torch.rand(1, 3, 64, 64), torch.ones(2))
    with pytest.raises(ValueError, match="unknown encoder"):
        build_encoder("resnet101")
    with pytest.raises(ValueError, match="invariance_dim >= 1"):
        build_encoder("hyper_resnet18")
    with pytest.raises(ValueError, match="no options"):
        build_encoder("resnet18", widht=0.5)
    # plain encoders ignore i
    plain = build_encoder("resnet18", **TINY).eval()
    assert torch.equal(plain(x), plain(x, torch.ones(2)))


def test_autocast_bfloat16_forward():
    enc = build_encoder("hyper_resnet18", invariance_dim=2, **TINY).eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(torch.rand(2, 3, 32, 32), torch.tensor([1.0, 0.0]))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
