"""Augmentation preview: what each training descriptor does to a few images (a PNG grid)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from amortinv.augment import VisionAugment  # noqa: E402
from amortinv.viz.figure import save_figure  # noqa: E402

__all__ = ["preview_grid"]


def _row(images: torch.Tensor, gap: int = 2) -> torch.Tensor:
    """Lay (N, 3, H, W) images in [0, 1] side by side with white gaps -> (H, N*(W+gap)-gap, 3)."""
    n, _, h, w = images.shape
    canvas = torch.ones(3, h, n * (w + gap) - gap)
    for k in range(n):
        canvas[:, :, k * (w + gap) : k * (w + gap) + w] = images[k]
    return canvas.permute(1, 2, 0)


def preview_grid(images: torch.Tensor, augment: VisionAugment, out: Path, title: str = "") -> Path:
    """Write a PNG: one row per training descriptor, two views per image (view 1, view 2 side by side).

    Args:
        images: uint8 or float batch (N, 3, H, W).
        augment: the engine; its space's training descriptors give the rows.
        out: the PNG path (parent folders are created).
    Returns:
        ``out``.
    """
    descriptors = augment.space.training_descriptors()
    base = augment.base(images)
    rows = [("original", _row(base.repeat_interleave(2, dim=0)))]
    for d in descriptors:
        v1, v2 = augment(images, d)
        pairs = torch.stack([augment.denormalise(v1), augment.denormalise(v2)], dim=1).flatten(0, 1)
        rows.append((augment.space.label(d), _row(pairs)))
    height, width = rows[0][1].shape[:2]
    fig_w = min(14.0, 2.5 + width / 28)
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(fig_w, 0.3 + len(rows) * fig_w * height / width * 1.15), squeeze=False
    )
    for ax, (label, img) in zip(axes[:, 0], rows):
        ax.imshow(img.numpy(), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(
        rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()) if title else None
    )  # keep the title above the first row
    return save_figure(fig, out, dpi=110)
