"""Diagnostic downstream tasks derived from any image dataset, with known invariance needs.

Each helper takes uint8 images (N, 3, H, W), applies a seeded random transformation per image
and returns ``(images, targets)``: the transformed images and what was done to them. Spatial
tasks (rotation, flip, crop position) want spatial sensitivity; the colour task wants
appearance sensitivity.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torchvision.transforms.v2.functional as TF

if TYPE_CHECKING:
    from amortinv.transfer.data import TaskData

__all__ = [
    "rotation_task",
    "flip_task",
    "colour_task",
    "crop_position_task",
    "TASKS",
    "derive_task",
    "build_tasks",
    "OWN_TASKS",
]

OWN_TASKS = ("classification", "regression")
"""Tasks on a dataset's own targets; the others are derived (``TASKS``) or, for the shapes data, its factors."""


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rotation_task(images: torch.Tensor, seed: int = 0, max_degrees: float = 45.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate each image by a uniform angle in [-max, max]; targets (N, 2) = (cos, sin) of the angle."""
    angles = (torch.rand(len(images), generator=_gen(seed)) * 2 - 1) * max_degrees
    out = torch.stack([TF.rotate(img, float(a)) for img, a in zip(images, angles)])
    rad = angles * math.pi / 180
    return out, torch.stack([rad.cos(), rad.sin()], dim=1)


def flip_task(images: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip half of the images horizontally; labels (N,) 1 = flipped."""
    flipped = torch.rand(len(images), generator=_gen(seed)) < 0.5
    out = images.clone()
    out[flipped] = images[flipped].flip(-1)
    return out, flipped.long()


def colour_task(images: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift each image's hue and brightness at random; targets (N, 3) = (cos hue, sin hue, brightness factor)."""
    g = _gen(seed)
    hue = torch.rand(len(images), generator=g) - 0.5  # in [-0.5, 0.5): a full turn
    bright = 0.6 + 0.8 * torch.rand(len(images), generator=g)
    out = torch.stack(
        [TF.adjust_brightness(TF.adjust_hue(img, float(h)), float(b)) for img, h, b in zip(images, hue, bright)]
    )
    turn = hue * 2 * math.pi
    return out, torch.stack([turn.cos(), turn.sin(), bright], dim=1)


def crop_position_task(images: torch.Tensor, seed: int = 0, scale: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop a window of ``scale`` of the side at a random position, resized back; targets (N, 2) = centre (x, y) in [0, 1]."""
    n, _, h, w = images.shape
    ch, cw = max(1, int(h * scale)), max(1, int(w * scale))
    g = _gen(seed)
    top = (torch.rand(n, generator=g) * (h - ch + 1)).long()
    left = (torch.rand(n, generator=g) * (w - cw + 1)).long()
    out = torch.stack(
        [TF.resized_crop(img, int(t), int(lf), ch, cw, [h, w], antialias=True) for img, t, lf in zip(images, top, left)]
    )
    centre = torch.stack([(left + cw / 2) / w, (top + ch / 2) / h], dim=1).float()
    return out, centre


TASKS = {"rotation": rotation_task, "flip": flip_task, "colour": colour_task, "crop_position": crop_position_task}


def derive_task(name: str, images: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the derived task ``name`` (rotation, flip, colour, crop_position) to uint8 images (N, 3, H, W)."""
    if name not in TASKS:
        raise ValueError(f"unknown derived task '{name}'; choose from {sorted(TASKS)}")
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"derived tasks need uint8 images (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
    return TASKS[name](images, seed)


def build_tasks(
    names: list[str],
    data: str,
    data_root: str | None,
    *,
    image_size: int | None,
    train_limit: int | None,
    test_limit: int | None,
    val_fraction: float,
    seed: int,
    audio: dict[str, Any] | None = None,
) -> list[TaskData]:
    """TaskData for each name: the dataset's own targets (classification / regression) or a derived task."""
    import torch

    from amortinv.data import SHAPE_TASKS, build_dataset
    from amortinv.transfer.data import make_task, stack_dataset, subset_indices

    factor_tasks = SHAPE_TASKS if data == "shapes" else ()
    unknown = [n for n in names if n not in OWN_TASKS and n not in TASKS and n not in factor_tasks]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; choose from {list(OWN_TASKS) + sorted(TASKS) + list(factor_tasks)}")
    train_ds = build_dataset(data, data_root, "train", image_size=image_size, **(audio or {}))
    test_ds = build_dataset(data, data_root, "test", image_size=image_size, **(audio or {}))
    train, test = stack_dataset(train_ds, train_limit, seed), stack_dataset(test_ds, test_limit, seed)
    tasks = []
    for name in names:
        if name in factor_tasks:
            y_train, y_test = (
                ds.factors[name][subset_indices(len(ds), limit, seed)]
                for ds, limit in ((train_ds, train_limit), (test_ds, test_limit))
            )
            tasks.append(
                make_task(
                    name,
                    "classification" if name == "shape" else "regression",
                    (train[0], y_train),
                    (test[0], y_test),
                    val_fraction,
                    seed,
                )
            )
        elif name in OWN_TASKS:
            kind = "regression" if torch.is_floating_point(train[1]) else "classification"
            if kind != name:
                raise ValueError(f"dataset '{data}' has {kind} targets, not {name}")
            tasks.append(make_task(f"{data}:{name}", name, train, test, val_fraction, seed))
        else:
            kind = "classification" if name == "flip" else "regression"
            tasks.append(
                make_task(
                    name,
                    kind,
                    derive_task(name, train[0], seed),
                    derive_task(name, test[0], seed + 1),
                    val_fraction,
                    seed,
                )
            )
    return tasks
