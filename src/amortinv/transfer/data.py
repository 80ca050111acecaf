"""Downstream task data: raw inputs (uint8 images or waveforms) and targets split into train / val / test.

The validation split is carved from the training data with a fixed seed; the test split is
only ever used once, for the final score of a selected model (SPEC section 5).
Regression targets are standardised with the training split's mean and std (``Standardiser``);
metrics are computed on the original scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from amortinv.data import ImageArrayDataset
from amortinv.encoders.base import Encoder
from amortinv.modality import modality_of
from amortinv.transfer.settings import VAL_FRACTION

__all__ = [
    "subset_indices",
    "TaskData",
    "Standardiser",
    "stack_dataset",
    "carve_validation",
    "make_task",
    "prepare_batch",
]


@dataclass
class Standardiser:
    """``(y - mean) / std`` per output with training statistics; identity for classification."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def fit(cls, y: torch.Tensor) -> Standardiser:
        std = y.std(dim=0, unbiased=False)
        return cls(y.mean(dim=0), torch.where(std > 1e-8, std, torch.ones_like(std)))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.mean.to(y.device)) / self.std.to(y.device)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.std.to(y.device) + self.mean.to(y.device)


@dataclass
class TaskData:
    """One downstream task: raw inputs (uint8 images (N, 3, H, W) or float waveforms (N, 1, L)) and targets for train / val / test.

    ``targets`` are int64 labels (N,) for classification or float32 (N, D) for regression.
    """

    name: str
    task: str
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    num_classes: int = 0
    standardiser: Standardiser | None = None

    @property
    def num_outputs(self) -> int:
        return self.num_classes if self.task == "classification" else int(self.train[1].shape[1])

    def summary(self) -> dict[str, object]:
        return {
            "name": self.name,
            "task": self.task,
            "train": len(self.train[0]),
            "val": len(self.val[0]),
            "test": len(self.test[0]),
            "outputs": self.num_outputs,
        }


def subset_indices(n: int, limit: int | None, seed: int = 0) -> torch.Tensor:
    """All of ``range(n)``, or a seeded random ``limit`` of it (sorted)."""
    if not limit or limit >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit].sort().values


def stack_dataset(ds: Dataset, limit: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """All (or a seeded random ``limit`` of the) images and targets of a registry dataset, stacked."""
    idx = subset_indices(len(ds), limit, seed)
    if isinstance(ds, ImageArrayDataset):
        return ds.images[idx], ds.targets[idx]
    items = [ds[int(k)] for k in idx]
    targets = [t for _, t in items]
    vectors = isinstance(targets[0], torch.Tensor) and targets[0].ndim > 0  # e.g. landmark coordinates (2P,)
    return torch.stack([im for im, _ in items]), torch.stack(targets) if vectors else torch.as_tensor(targets)


def carve_validation(
    images: torch.Tensor, targets: torch.Tensor, fraction: float = VAL_FRACTION, seed: int = 0
) -> tuple[tuple, tuple]:
    """Split off a seeded random ``fraction`` of the training data as the validation split."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    n = len(images)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(round(n * fraction)))
    val, train = perm[:n_val].sort().values, perm[n_val:].sort().values
    return (images[train], targets[train]), (images[val], targets[val])


def _check_targets(name: str, targets: torch.Tensor, task: str) -> torch.Tensor:
    if task == "classification":
        if torch.is_floating_point(targets) or targets.ndim != 1:
            raise ValueError(
                f"task '{name}': classification needs integer labels of shape (N,), got {targets.dtype} {tuple(targets.shape)}"
            )
        if (targets < 0).any():
            raise ValueError(f"task '{name}': labels must be >= 0")
        return targets.long()
    if task != "regression":
        raise ValueError(f"task must be classification or regression, got '{task}'")
    targets = targets.float()
    targets = targets[:, None] if targets.ndim == 1 else targets
    if targets.ndim != 2:
        raise ValueError(f"task '{name}': regression targets must be (N,) or (N, D), got {tuple(targets.shape)}")
    if not torch.isfinite(targets).all():
        raise ValueError(f"task '{name}': regression targets contain NaN or infinite values")
    return targets


def make_task(
    name: str,
    task: str,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    val_fraction: float = VAL_FRACTION,
    seed: int = 0,
) -> TaskData:
    """Check shapes, carve the validation split and fit the target standardiser."""
    for split, (x, y) in (("train", train), ("test", test)):
        modality_of(x).check(x, f"task '{name}': {split} inputs")
        if len(x) != len(y):
            raise ValueError(f"task '{name}': {split} has {len(x)} images but {len(y)} targets")
    ytr, yte = _check_targets(name, train[1], task), _check_targets(name, test[1], task)
    if len(ytr) < 10:
        raise ValueError(
            f"task '{name}': {len(ytr)} training examples are too few to carve a validation split (need >= 10)"
        )
    if task == "classification" and len(ytr.unique()) < 2:
        raise ValueError(
            f"task '{name}': the training labels hold a single class ({int(ytr[0])}); classification needs >= 2"
        )
    if task == "regression" and ytr.shape[1] != yte.shape[1]:
        raise ValueError(f"task '{name}': train targets have {ytr.shape[1]} outputs, test targets {yte.shape[1]}")
    tr, val = carve_validation(train[0], ytr, val_fraction, seed)
    if task == "classification":
        return TaskData(name, task, tr, val, (test[0], yte), num_classes=int(max(ytr.max(), yte.max())) + 1)
    return TaskData(name, task, tr, val, (test[0], yte), standardiser=Standardiser.fit(tr[1]))


def prepare_batch(encoder: Encoder, images: torch.Tensor, size: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """A raw batch (uint8 images or waveforms) -> the encoder's deterministic input at ``size``, in its dtype
    (``Modality.eval_input``: images resized + centre-cropped + normalised, waveforms centre-windowed)."""
    dtype = next(encoder.parameters()).dtype
    return modality_of(images).eval_input(images.to(device), size).to(dtype)
