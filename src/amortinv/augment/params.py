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

__all__ = ["ViewParams", "PARAM_NAMES", "OP_FIELDS", "sample_crop_boxes", "sample_view_params"]

PARAM_NAMES = (
    "crop_top",
    "crop_left",
    "crop_height",
    "crop_width",
    "flip",
    "brightness",
    "contrast",
    "saturation",
    "hue",
    "brightness_position",
    "contrast_position",
    "saturation_position",
    "hue_position",
    "grayscale",
    "blur_sigma",
    "solarize",
)
"""The columns of ``ViewParams.vector``: what a method that uses the augmentation parameters is handed."""

OP_FIELDS = {
    "crop": ("boxes",),
    "flip": ("flip",),
    "color_jitter": ("jitter", "jitter_factors", "jitter_order"),
    "grayscale": ("grayscale",),
    "blur": ("blur", "blur_sigma"),
    "solarize": ("solarize",),
}
"""The ``ViewParams`` fields each op draws."""


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

    def vector(self, height: int, width: int) -> torch.Tensor:
        """The parameters as one row per sample, (B, 16) float, columns ``PARAM_NAMES``:

        crop box (top, left, height, width) as fractions of the source image (0, 0, 1, 1 without
        crop); flip (0/1); the jitter factors brightness, contrast, saturation (1 = unchanged) and
        hue (turns, 0 = unchanged), then each jitter op's position in the sample's order divided by
        3 (identity values 1, 1, 1, 0 and positions 0, 1/3, 2/3, 1 for a sample not jittered);
        grayscale (0/1); blur sigma (0 without blur); solarize (0/1). An op that is off reads as
        not applied.
        """
        n = next(
            len(v)
            for v in (self.boxes, self.flip, self.jitter, self.grayscale, self.blur, self.solarize)
            if v is not None
        )
        out = torch.zeros(n, len(PARAM_NAMES))
        out[:, 2:4] = 1.0
        if self.boxes is not None:
            out[:, :4] = self.boxes / torch.tensor([height, width, height, width], dtype=torch.float32)
        if self.flip is not None:
            out[:, 4] = self.flip.float()
        out[:, 5:8], out[:, 9:13] = 1.0, torch.arange(4.0) / 3
        if self.jitter is not None:
            on = self.jitter[:, None]
            out[:, 5:9] = torch.where(on, self.jitter_factors, out[:, 5:9])
            out[:, 9:13] = torch.where(on, self.jitter_order.argsort(dim=1).float() / 3, out[:, 9:13])
        for column, flag in ((13, self.grayscale), (15, self.solarize)):
            if flag is not None:
                out[:, column] = flag.float()
        if self.blur is not None:
            out[:, 14] = torch.where(self.blur, self.blur_sigma, 0.0)
        return out

    @classmethod
    def from_vector(cls, rows: torch.Tensor, height: int, width: int) -> ViewParams:
        """The parameters that ``vector`` rows (B, 16) describe, every op present (an op not applied
        reads as its identity: the full image, no flip, factors 1 and hue 0, sigma 0); they make the
        same views."""
        rows = rows.detach().float().cpu()
        factors = rows[:, 5:9]
        return cls(
            boxes=torch.round(rows[:, :4] * torch.tensor([height, width, height, width], dtype=torch.float32)),
            flip=rows[:, 4] > 0,
            jitter=(factors != torch.tensor([1.0, 1.0, 1.0, 0.0])).any(dim=1),
            jitter_factors=factors,
            jitter_order=torch.round(rows[:, 9:13] * 3).argsort(dim=1),
            grayscale=rows[:, 13] > 0,
            blur=rows[:, 14] > 0,
            blur_sigma=rows[:, 14],
            solarize=rows[:, 15] > 0,
        )

    def sharing(self, other: ViewParams, ops: tuple[str, ...]) -> ViewParams:
        """These parameters with those of the ops ``ops`` taken from ``other`` (LooC's key views)."""
        taken = {name for op in ops for name in OP_FIELDS.get(op, ())}
        kept = {
            f.name: getattr(other if f.name in taken else self, f.name) for f in fields(self) if f.name != "supersample"
        }
        return ViewParams(**kept)

    def select(self, index: torch.Tensor | slice) -> ViewParams:
        """The parameters of the samples ``index`` (batch-wide values kept)."""
        return ViewParams(
            **{f.name: v[index] if isinstance(v := getattr(self, f.name), torch.Tensor) else v for f in fields(self)}
        )


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
