"""Shared fixtures: the shared data folder, a private decode cache, small image batches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never write into the user's ~/.cache (one cache per session keeps them fast)."""
    monkeypatch.setenv("AMORTINV_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def cifar_root() -> Path:
    root = SHARED_DATA / "cifar10"
    if not (root / "test.npz").is_file():
        pytest.skip(f"shared CIFAR-10 not found at {root}")
    return root


@pytest.fixture
def images() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny labelled image dataset (train 96 / test 32 images, 16x16, 4 classes) as npz files."""
    import numpy as np

    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for split, n in (("train", 96), ("test", 32)):
        labels = np.arange(n) % 4
        images = rng.integers(0, 60, (n, 16, 16, 3), dtype=np.uint8)
        for k, c in enumerate(labels):  # a bright square whose channel and corner tell the class
            y, x = (c // 2) * 8, (c % 2) * 8
            images[k, y : y + 8, x : x + 8, c % 3] = 230
        np.savez(root / f"{split}.npz", images=images, labels=labels)
    return root


@pytest.fixture
def tiny_pretrain_flags(tiny_npz: Path) -> list[str]:
    """Command-line flags of a 2-step pre-training run on ``tiny_npz`` (add ``--out`` and any others)."""
    return [
        "--data", "npz", "--data-root", str(tiny_npz), "--batch-size", "16", "--max-steps", "2",
        "--encoder-options", '{"cifar_stem": true, "width": 0.0625}', "--proj-hidden", "32", "--proj-dim", "16",
        "--knn-eval", "false", "--progress", "false",
    ]  # fmt: skip


TINY_ENCODER = {"cifar_stem": True, "width": 0.0625}
"""A ResNet-18 at 1/16 width with the CIFAR stem: the tests' encoder size."""


def tiny_config(root: Path, out: Path | str, **kw: object):
    """A pre-training config for ``root``'s tiny npz data (SimCLR, batch 16, one epoch of 6 steps), ``kw`` overriding."""
    from amortinv.ssl.config import PretrainConfig

    base = dict(
        method="simclr", data="npz", data_root=str(root), batch_size=16, epochs=1, encoder_options=TINY_ENCODER,
        proj_hidden=32, proj_dim=16, queue_size=32, knn_eval=False, progress=False, out=str(out), seed=3,
    )  # fmt: skip
    return PretrainConfig(**{**base, **kw})


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory: pytest.TempPathFactory):
    """``reference_run(cfg) -> folder`` of the uninterrupted run of ``cfg`` (its ``out`` and ``resume`` ignored),
    trained once per session per settings: the resume tests compare their interrupted runs with it."""
    import dataclasses
    import json

    from amortinv.ssl.pretrain import run_pretrain

    made: dict[str, Path] = {}

    def run(cfg) -> Path:  # noqa: ANN001
        settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("out", "resume")}
        key = json.dumps(settings, sort_keys=True, default=str)
        if key not in made:
            out = tmp_path_factory.mktemp("reference")
            run_pretrain(dataclasses.replace(cfg, out=str(out / "run"), resume=None))
            made[key] = out / "run"
        return made[key]

    return run


@pytest.fixture(scope="session")
def saved_encoders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Untrained tiny encoders saved as a pre-training run saves them, for commands that only need saved weights:
    ``ai`` (Hyper-ResNet-18 on groups2, the space in its metadata) and ``plain`` (ResNet-18), each a run folder."""
    from amortinv.encoders import build_encoder, save_encoder
    from amortinv.spaces import load_space

    root = tmp_path_factory.mktemp("saved_encoders")
    space = load_space("groups2")
    torch.manual_seed(0)
    made = {
        "ai": (build_encoder("hyper_resnet18", invariance_dim=space.dim, **TINY_ENCODER), None),
        "plain": (build_encoder("resnet18", **TINY_ENCODER), "1,1"),
    }
    for name, (encoder, fixed) in made.items():
        meta = {"space": space.to_config(), "method": "simclr", "steps": 0, "fixed_descriptor": fixed}
        save_encoder(root / name / "encoder", encoder.eval(), metadata=meta)
    return {name: root / name for name in made}
