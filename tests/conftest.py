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
