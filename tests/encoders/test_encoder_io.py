import argparse
import json

import pytest
import torch
from safetensors.torch import save_file

from amortinv.encoders import build_encoder, load_encoder, load_pretrained_vit, save_encoder

VIT = {"img_size": 32, "patch_size": 8, "depth": 2}


def test_save_load_roundtrip_and_run_folder(tmp_path):
    enc = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.125).eval()
    enc(torch.rand(2, 3, 32, 32), torch.ones(2))
    path = save_encoder(tmp_path / "run" / "encoder", enc, metadata={"space": "groups2"})
    assert path.name == "encoder.safetensors" and (tmp_path / "run" / "encoder.json").is_file()
    cfg = json.loads((tmp_path / "run" / "encoder.json").read_text())
    assert cfg["encoder"]["name"] == "hyper_resnet18" and cfg["metadata"] == {"space": "groups2"}
    for where in (path, tmp_path / "run" / "encoder.json", tmp_path / "run"):
        loaded = load_encoder(where, name="hyper_resnet18", invariance_dim=2).eval()
        x, i = torch.rand(2, 3, 32, 32), torch.tensor([0.5, 0.5])
        assert torch.equal(loaded(x, i), enc(x, i))


def test_load_reports_what_differs(tmp_path):
    enc = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.125)
    save_encoder(tmp_path / "e", enc)
    with pytest.raises(ValueError, match="invariance_dim: saved 2, expected 5"):
        load_encoder(tmp_path / "e", invariance_dim=5)
    with pytest.raises(ValueError, match="name: saved 'hyper_resnet18', expected 'resnet18'"):
        load_encoder(tmp_path / "e", name="resnet18")
    # weights of another architecture under this config
    other = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.25)
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(tmp_path / "e.safetensors"))
    with pytest.raises(ValueError, match="shape mismatches"):
        load_encoder(tmp_path / "e")
    (tmp_path / "e.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        load_encoder(tmp_path / "e")
    with pytest.raises(FileNotFoundError, match="encoder config not found"):
        load_encoder(tmp_path / "nothing")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_encoder(tmp_path / "bad")


def test_load_timm_layout_keeps_patch_embedding(tmp_path):
    torch.manual_seed(0)
    source = build_encoder("vit_tiny", **VIT)
    state = {k: v.clone() for k, v in source.state_dict().items()}
    state["head.weight"], state["head.bias"] = torch.zeros(10, 192), torch.zeros(10)
    save_file(state, str(tmp_path / "timm.safetensors"))
    target = build_encoder("prompt_vit_tiny", invariance_dim=2, **VIT)
    report = load_pretrained_vit(target, tmp_path / "timm.safetensors")
    assert torch.equal(target.patch_embed.proj.weight, source.patch_embed.proj.weight)
    assert torch.equal(target.blocks[1].mlp.fc2.weight, source.blocks[1].mlp.fc2.weight)
    assert report["unexpected"] == []
    assert sorted(report["missing"]) == ["prompt.fc1.bias", "prompt.fc1.weight", "prompt.fc2.bias", "prompt.fc2.weight"]
    assert "patch_embed.proj.weight" in report["loaded"]


def test_load_moco_v3_layout(tmp_path):
    torch.manual_seed(1)
    source = build_encoder("vit_tiny", **VIT, pos_embed="sincos")
    sd = {f"module.base_encoder.{k}": v for k, v in source.state_dict().items()}
    sd.update({f"module.momentum_encoder.{k}": torch.zeros_like(v) for k, v in source.state_dict().items()})
    sd["module.base_encoder.head.0.weight"] = torch.zeros(4096, 192)
    sd["module.predictor.0.weight"] = torch.zeros(4096, 256)
    torch.save({"epoch": 300, "state_dict": sd}, tmp_path / "moco.pth.tar")
    target = build_encoder("prompt_vit_tiny", invariance_dim=2, **VIT, pos_embed="sincos")
    report = load_pretrained_vit(target, tmp_path / "moco.pth.tar")
    assert torch.equal(target.patch_embed.proj.weight, source.patch_embed.proj.weight)
    assert torch.equal(target.cls_token, source.cls_token)
    assert report["unexpected"] == [] and all(k.startswith("prompt.") for k in report["missing"])


def test_pretrained_vit_errors(tmp_path):
    target = build_encoder("prompt_vit_tiny", invariance_dim=2, **VIT)
    other = build_encoder("vit_tiny", img_size=32, patch_size=4, depth=2)
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(tmp_path / "p4.safetensors"))
    with pytest.raises(ValueError, match="does not fit"):
        load_pretrained_vit(target, tmp_path / "p4.safetensors")
    with pytest.raises(FileNotFoundError):
        load_pretrained_vit(target, tmp_path / "missing.pth")

    torch.save({"state_dict": {"w": torch.zeros(1)}, "obj": argparse.Namespace(cmd="rm -rf")}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="safely"):
        load_pretrained_vit(target, tmp_path / "evil.pth")


def test_an_unrelated_file_is_not_a_pretrained_vit(tmp_path):
    target = build_encoder("prompt_vit_tiny", invariance_dim=2, **VIT)
    resnet = build_encoder("resnet18", cifar_stem=True, width=0.0625)
    save_file({k: v.contiguous() for k, v in resnet.state_dict().items()}, str(tmp_path / "resnet.safetensors"))
    with pytest.raises(ValueError, match="holds no tensor of this ViT"):
        load_pretrained_vit(target, tmp_path / "resnet.safetensors")


def test_non_square_images_need_an_image_size(tmp_path):
    import numpy as np

    from amortinv.ssl.pretrain import PretrainConfig, run_pretrain

    for split in ("train", "test"):
        np.savez(tmp_path / f"{split}.npz", images=np.zeros((32, 17, 5, 3), np.uint8), labels=np.arange(32) % 2)
    with pytest.raises(ValueError, match="17x5, not square: pass --image-size"):
        run_pretrain(
            PretrainConfig(data="npz", data_root=str(tmp_path), batch_size=16, max_steps=1, out=str(tmp_path / "run"))
        )
    assert not (tmp_path / "run").exists()


def test_streamed_safetensors_read_back_with_the_library_bit_for_bit(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    from amortinv.encoders.io import write_safetensors

    tensors = {
        "w": torch.randn(3, 4),
        "step": torch.tensor(7),
        "half": torch.randn(5).to(torch.bfloat16),
        "strided": torch.randn(4, 6)[:, ::2],
        "empty": torch.zeros(0, 3),
        "mask": torch.tensor([True, False]),
    }
    write_safetensors(tmp_path / "x.safetensors", tensors, metadata={"format": "test"})
    back = load_file(str(tmp_path / "x.safetensors"))
    assert set(back) == set(tensors) and all(
        torch.equal(back[k], v) and back[k].dtype == v.dtype for k, v in tensors.items()
    )
    with safe_open(str(tmp_path / "x.safetensors"), "pt") as f:
        assert f.metadata() == {"format": "test"}
    assert [p.name for p in tmp_path.iterdir()] == ["x.safetensors"]  # no temporary file left
