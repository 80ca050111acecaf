"""Importing the paper's released AI-MoCo-v2 Hyper-ResNet-50 (``amortinv import --format official-ai-moco``), without the real file.

The synthetic checkpoints are written here in the released file's layout (facts from the authors'
code: DDP prefixes, query and momentum encoders, per-descriptor heads and queues, optimiser and
scaler entries) at a reduced width, and the imported encoder is compared with an independent
re-implementation of the official forward written from the paper's Appendix A.1.1.
"""

from __future__ import annotations

import argparse
import json

import pytest
import torch
import torch.nn.functional as F
from official_files import STAGES, WIDTH, official_backbone, official_checkpoint

from amortinv.cli import main
from amortinv.encoders import build_encoder, load_encoder
from amortinv.encoders.official import official_backbone_shapes, official_key


def official_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, inv: torch.Tensor) -> torch.Tensor:
    """Appendix A.1.1 written out: per block z = E i; per conv W = reshape(L2(relu(L1 z))) as (O, I, k, k); eval BatchNorm;
    ImageNet stem; global average of layer 4."""

    def bn(h: torch.Tensor, p: str) -> torch.Tensor:
        return F.batch_norm(
            h, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"], False, 0.0, 1e-5
        )

    def kernel(p: str, z: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        hidden = F.relu(z @ sd[f"{p}.layer.0.weight"].T + sd[f"{p}.layer.0.bias"])
        return (hidden @ sd[f"{p}.layer.2.weight"].T + sd[f"{p}.layer.2.bias"]).view(shape)

    h = F.max_pool2d(F.relu(bn(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3), "bn1")), 3, 2, 1)
    for s, blocks in enumerate(STAGES):
        for b in range(blocks):
            p, stride, cin = f"layer{s + 1}.{b}", 2 if s and not b else 1, h.shape[1]
            z, planes = inv @ sd[f"{p}.emb1.weight"].T, sd[f"{p}.bn1.weight"].shape[0]
            out = F.relu(bn(F.conv2d(h, kernel(f"{p}.hypernet1", z, (planes, cin, 1, 1))), f"{p}.bn1"))
            out = F.relu(
                bn(
                    F.conv2d(out, kernel(f"{p}.hypernet2", z, (planes, planes, 3, 3)), stride=stride, padding=1),
                    f"{p}.bn2",
                )
            )
            out = bn(F.conv2d(out, kernel(f"{p}.hypernet3", z, (4 * planes, planes, 1, 1))), f"{p}.bn3")
            if b == 0:
                h = bn(
                    F.conv2d(h, kernel(f"{p}.hypernet_down", z, (4 * planes, cin, 1, 1)), stride=stride),
                    f"{p}.downsample.1",
                )
            h = F.relu(out + h)
    return h.mean(dim=(2, 3))


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("official")
    backbone = official_backbone()
    torch.save(official_checkpoint(backbone), root / "hyper_resnet50_imagenet100-moco_2_checkpoint_0300.pth.tar")
    return root / "hyper_resnet50_imagenet100-moco_2_checkpoint_0300.pth.tar", backbone


def test_imported_features_equal_the_official_forward_at_every_descriptor(released, tmp_path, capsys):
    path, backbone = released
    main(["import", "--checkpoint", str(path), "--out", str(tmp_path / "run"), "--heads", "true"])
    enc = load_encoder(tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "encoder.json").read_text())["metadata"]
    assert enc.config["name"] == "hyper_resnet50" and enc.config["width"] == WIDTH and not enc.config["cifar_stem"]
    assert meta["imported_from"]["epoch"] == 200 and list(meta["space"]["factors"]) == ["spatial", "appearance"]
    assert [d["descriptor"] for d in meta["descriptors"]] == [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    torch.manual_seed(0)
    x = torch.rand(3, 3, 64, 64)
    worst = 0.0
    for i in ([0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.3, 0.8]):
        inv = torch.tensor(i)
        with torch.no_grad():
            ours, theirs = enc(x, inv), official_forward(backbone, x, inv)
        assert theirs.abs().mean() > 0.1  # the reference produces real features, not zeros
        worst = max(worst, float((ours - theirs).abs().max()))
    assert worst < 1e-5, worst
    from safetensors.torch import load_file

    heads = load_file(str(tmp_path / "run" / "heads.safetensors"))
    assert sorted(heads) == sorted(
        f"predictor_b.{j}.{n}.{p}" for j in range(3) for n in (0, 2) for p in ("weight", "bias")
    )
    assert "imported resnet50 (epoch 200)" in capsys.readouterr().out


def test_full_size_key_list_and_parameter_counts_on_the_meta_device():
    shapes = official_backbone_shapes()
    count = sum(
        torch.Size(s).numel()
        for n, s in shapes.items()
        if not n.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )
    assert count == 773_823_168  # the authors' Hyper-ResNet-50 with K = 2
    with torch.device("meta"):
        ours = build_encoder("hyper_resnet50", invariance_dim=2, cifar_stem=False, width=1.0)
    assert sum(p.numel() for p in ours.parameters()) == 773_792_960
    mapped = {official_key(k): tuple(v.shape) for k, v in ours.state_dict().items()}
    assert all(shapes[k] == s for k, s in mapped.items())
    unused = {k: s for k, s in shapes.items() if k not in mapped}
    assert all(".bn_down." in k for k in unused) and len(unused) == 16 * 5
    assert count - 773_792_960 == sum(s[0] for k, s in unused.items() if k.endswith(("weight", "bias"))) == 30_208
    # export materialises it as a plain ResNet-50 whose tensors are torchvision's (all but the classifier)
    import torchvision

    plain = ours.materialise(torch.tensor([1.0, 0.0]))
    with torch.device("meta"):
        reference = torchvision.models.resnet50().state_dict()
    assert {k: v.shape for k, v in plain.state_dict().items()} == {
        k: v.shape for k, v in reference.items() if not k.startswith("fc.")
    }


def _broken(released, tmp_path, change) -> str:
    ckpt = official_checkpoint(official_backbone(**change.get("backbone", {})))
    change.get("edit", lambda c: None)(ckpt)
    path = tmp_path / "broken.pth.tar"
    torch.save(ckpt, path)
    return str(path)


@pytest.mark.parametrize(
    "case, message",
    [
        ("truncated", "not a readable PyTorch checkpoint"),
        ("wrong_k", "K = 3 factors"),
        ("missing", "lacks 1 tensors"),
        ("extra", "has unexpected 1 tensors"),
        ("pickle", "holds Python objects besides tensors"),
    ],
)
def test_bad_checkpoints_are_one_line_and_write_nothing(released, tmp_path, capsys, case, message):
    if case == "truncated":
        path = tmp_path / "truncated.pth.tar"
        path.write_bytes(released[0].read_bytes()[:4000])
        path = str(path)
    else:
        edits = {
            "missing": lambda c: c["state_dict"].pop("module.base_encoder.layer2.1.hypernet2.layer.2.bias"),
            "extra": lambda c: c["state_dict"].update(
                {"module.base_encoder.layer1.0.hypernet4.layer.0.weight": torch.zeros(1)}
            ),
            "pickle": lambda c: c.update({"args": argparse.Namespace(lr=0.03)}),
        }
        path = _broken(released, tmp_path, {"backbone": {"k": 3}} if case == "wrong_k" else {"edit": edits[case]})
    with pytest.raises(SystemExit) as err:
        main(["import", "--checkpoint", path, "--out", str(tmp_path / "run")])
    assert err.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("amortinv:")]
    assert len(lines) == 1 and message in lines[0] and path in lines[0], lines
    assert not (tmp_path / "run").exists()


def test_an_imported_run_works_in_transfer_fewshot_measure_and_export(released, tiny_npz, tmp_path):
    run = tmp_path / "run"
    main(["import", "--checkpoint", str(released[0]), "--out", str(run)])
    data = ["--data", "npz", "--data-root", str(tiny_npz)]
    main(
        [
            "transfer",
            "--encoder",
            str(run),
            *data,
            "--image-size",
            "32",
            "--i-steps",
            "2",
            "--eval-every",
            "1",
            "--i-batch-size",
            "16",
            "--lams",
            "0.01",
            "--out",
            str(tmp_path / "t"),
        ]
    )
    learned = json.loads((tmp_path / "t" / "result.json").read_text())["learned_i"]["npz:classification"]
    assert set(learned) == {"spatial", "appearance"}
    main(
        [
            "fewshot",
            "--encoder",
            str(run),
            *data,
            "--ways",
            "2",
            "--shots",
            "1",
            "--queries",
            "2",
            "--episodes",
            "2",
            "--steps",
            "1",
            "--heads",
            "ridge",
            "--out",
            str(tmp_path / "f"),
        ]
    )
    assert json.loads((tmp_path / "f" / "result.json").read_text())["results"]["1shot"]
    main(
        [
            "measure",
            "--encoder",
            str(run),
            *data,
            "--num-images",
            "4",
            "--reference-images",
            "4",
            "--transforms",
            "hflip",
            "--out",
            str(tmp_path / "m"),
        ]
    )
    assert (tmp_path / "m" / "invariance.json").is_file()
    main(["export", "--encoder", str(run), "--transfer", str(tmp_path / "t"), "--out", str(tmp_path / "e")])
    plain, hyper = load_encoder(tmp_path / "e"), load_encoder(run)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(plain(x), hyper(x, torch.tensor([learned["spatial"], learned["appearance"]])), atol=1e-4)
    from amortinv.suite import suite_command

    suite = suite_command(
        {"AI-MoCo (imported)": str(run), "exported": str(tmp_path / "e")},
        [{"name": "npz", "root": str(tiny_npz), "label": "tiny", "image_size": 32}],
        out=str(tmp_path / "s"),
        i_steps=1,
        device="cpu",
    )
    assert set(suite["datasets"]["tiny"]["scores"]["tiny"]) == {"AI-MoCo (imported)", "exported"}
