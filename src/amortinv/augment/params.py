"""Per-sample random parameters of one augmented view, drawn on the CPU for a whole batch.

The draws follow torchvision's transforms: ``RandomResizedCrop`` (ten attempts of area and
log-ratio, the first that fits, else the ratio-clamped centre crop), ``RandomHorizontalFlip``,
``RandomApply(ColorJitter)`` with a per-sample random order of the four jitter ops,
``RandomGrayscale``, ``RandomApply(GaussianBlur)`` with sigma ~ U[lo, hi], ``RandomSolarize``.
Drawing everything from torch's global CPU generator, one tensor per quantity, makes the views a
pure function of the seed on any device, and the training device never waits for the host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

__all__ = ["ViewParams", "sample_crop_boxes", "sample_view_params"]


@dataclass
class ViewParams:
    """Parameters of one view of a batch of B images (CPU tensors; None where the op is off).

    boxes (B, 4) float crop boxes (top, left, height, width); flip (B,) bool;
    jitter (B,) bool: jitter applied; jitter_factors (B, 4): brightness, contrast, saturation
    (multiplicative) and hue (turns); jitter_order (B, 4): per-sample permutation of those ops;
    grayscale (B,) bool; blur (B,) bool with blur_sigma (B,); solarize (B,) bool;
    supersample: the side of the sub-pixel grid that antialiases shrunk crops, one value for the
    whole batch so that a sample's view does not depend on how the batch is split (None: derived
    from the boxes when the view is made).
    """

    boxes: torch.Tensor | None = None
    flip: torch.Tensor | None = None
    jitter: torch.Tensor | None = None
    jitter_factors: torch.Tensor | None = None
    jitter_order: torch.Tensor | None = None
    grayscale: torch.Tensor | None = None
    blur: torch.Tensor | None = None
    blur_sigma: torch.Tensor | None = None
    solarize: torch.Tensor | None = None
    supersample: int | None = None

    def select(self, index: torch.Tensor | slice) -> ViewParams:
        """The parameters of the samples ``index`` (batch-wide values kept)."""
        return ViewParams(**{f.name: v[index] if isinstance(v := getattr(self, f.name), torch.Tensor) else v for f in fields(self)})


def _uniform(n: int, lo: float, hi: float, *shape: int) -> torch.Tensor:
    return torch.empty(n, *shape).uniform_(lo, hi)


def sample_crop_boxes(
    n: int, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float], attempts: int = 10
) -> torch.Tensor:
    """``RandomResizedCrop`` boxes (n, 4) = (top, left, h, w) for an image of height x width."""
    area = height * width
    target = area * _uniform(n, scale[0], scale[1], attempts)
    aspect = torch.exp(_uniform(n, math.log(ratio[0]), math.log(ratio[1]), attempts))
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.float().argmax(dim=1, keepdim=True)
    h, w = h.gather(1, first)[:, 0], w.gather(1, first)[:, 0]
    top = torch.floor(torch.rand(n) * (height - h + 1))
    left = torch.floor(torch.rand(n) * (width - w + 1))
    boxes = torch.stack([top, left, h, w], dim=1)
    fallback = ~fits.any(dim=1)
    if fallback.any():
        boxes[fallback] = torch.tensor(_centre_box(height, width, ratio), dtype=boxes.dtype)
    return boxes


def _centre_box(height: int, width: int, ratio: tuple[float, float]) -> tuple[float, float, float, float]:
    """torchvision's fallback: the whole image with its aspect clamped to ``ratio``, centred."""
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return float((height - h) // 2), float((width - w) // 2), float(h), float(w)


def sample_view_params(ops: tuple[str, ...], recipe, n: int, height: int, width: int) -> ViewParams:  # noqa: ANN001
    """Draw the parameters of the ops ``ops`` (names of ``VisionAugment``) for ``n`` images.

    ``recipe`` is an ``amortinv.augment.vision.Recipe``.
    """
    p = ViewParams()
    if "crop" in ops:
        p.boxes = sample_crop_boxes(n, height, width, recipe.crop_scale, recipe.crop_ratio)
    if "flip" in ops:
        p.flip = torch.rand(n) < recipe.flip_p
    if "color_jitter" in ops:
        b, c, s, h = recipe.jitter
        p.jitter = torch.rand(n) < recipe.jitter_p
        p.jitter_factors = torch.stack(
            [_uniform(n, max(0.0, 1 - v), 1 + v) for v in (b, c, s)] + [_uniform(n, -h, h)], dim=1
        )
        p.jitter_order = torch.argsort(torch.rand(n, 4), dim=1)
    if "grayscale" in ops:
        p.grayscale = torch.rand(n) < recipe.grayscale_p
    if "blur" in ops:
        p.blur = torch.rand(n) < recipe.blur_p
        p.blur_sigma = _uniform(n, *recipe.blur_sigma)
    if "solarize" in ops:
        p.solarize = torch.rand(n) < recipe.solarize_p
    return p
