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
