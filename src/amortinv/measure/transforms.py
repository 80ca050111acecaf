"""Deterministic, batched image transforms over parameter grids (BMVC 2022 invariance measurement).

Each image transform maps a float batch (B, 3, H, W) in [0, 1] and one parameter to a batch of the
same shape; ``IDENTITY[name]`` is the parameter that leaves images unchanged, and ``GRIDS[name]``
the parameters measured (identity included; averages exclude it by default). ``VISION_SET`` holds
them as the vision modality's ``TransformSet``; the audio set is ``amortinv.measure.audio_transforms``.
``apply_transform`` and ``resolve_transforms`` go through the modality, never a branch on it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchvision.transforms.v2.functional as TF

from amortinv.measure.transform_set import TransformSet
from amortinv.modality import MODALITIES, modality_of

__all__ = [
    "TRANSFORMS", "GRIDS", "IDENTITY", "SPATIAL", "APPEARANCE", "VISION_SET", "apply_transform", "resolve_transforms"
]  # fmt: skip


def _resized_crop(x: torch.Tensor, area: float) -> torch.Tensor:
    h, w = x.shape[-2:]
    side = area**0.5
    ch, cw = max(1, round(h * side)), max(1, round(w * side))
    return TF.resize(TF.center_crop(x, [ch, cw]), [h, w], antialias=True) if (ch, cw) != (h, w) else x


def _affine(x: torch.Tensor, **kw: float) -> torch.Tensor:
    params = {"angle": 0.0, "translate": [0, 0], "scale": 1.0, "shear": [0.0, 0.0], **kw}
    return TF.affine(x, interpolation=TF.InterpolationMode.BILINEAR, **params)


def _translate(x: torch.Tensor, frac: float) -> torch.Tensor:
    h, w = x.shape[-2:]
    return _affine(x, translate=[round(frac * w), round(frac * h)])


def _grayscale(x: torch.Tensor, amount: float) -> torch.Tensor:
    return torch.lerp(x, TF.rgb_to_grayscale(x, num_output_channels=3), amount)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0:
        return x
    k = max(3, int(2 * round(3 * sigma) + 1))
    return TF.gaussian_blur(x, [k, k], [sigma, sigma])


TRANSFORMS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "resized_crop": _resized_crop,
    "hflip": lambda x, p: x.flip(-1) if p else x,
    "vflip": lambda x, p: x.flip(-2) if p else x,
    "scale": lambda x, s: _affine(x, scale=s),
    "rotation": lambda x, a: _affine(x, angle=a),
    "translation": _translate,
    "shear": lambda x, s: _affine(x, shear=[s, 0.0]),
    "grayscale": _grayscale,
    "brightness": lambda x, f: TF.adjust_brightness(x, f),
    "contrast": lambda x, f: TF.adjust_contrast(x, f),
    "saturation": lambda x, f: TF.adjust_saturation(x, f),
    "hue": lambda x, f: TF.adjust_hue(x, f),
    "blur": _blur,
    "sharpness": lambda x, f: TF.adjust_sharpness(x, f),
}

GRIDS: dict[str, tuple[float, ...]] = {
    "resized_crop": (1.0, 0.8, 0.6, 0.4, 0.25),
    "hflip": (0.0, 1.0),
    "vflip": (0.0, 1.0),
    "scale": (1.0, 0.9, 0.75, 0.6, 0.5),
    "rotation": (-45.0, -30.0, -15.0, 0.0, 15.0, 30.0, 45.0),
    "translation": (-0.2, -0.1, 0.0, 0.1, 0.2),
    "shear": (-30.0, -15.0, 0.0, 15.0, 30.0),
    "grayscale": (0.0, 0.25, 0.5, 0.75, 1.0),
    "brightness": (0.5, 0.75, 1.0, 1.25, 1.5),
    "contrast": (0.5, 0.75, 1.0, 1.25, 1.5),
    "saturation": (0.0, 0.5, 1.0, 1.5, 2.0),
    "hue": (-0.4, -0.2, 0.0, 0.2, 0.4),
    "blur": (0.0, 0.5, 1.0, 1.5, 2.0),
    "sharpness": (0.0, 0.5, 1.0, 2.0, 4.0),
}

IDENTITY: dict[str, float] = {
    "resized_crop": 1.0,
    "hflip": 0.0,
    "vflip": 0.0,
    "scale": 1.0,
    "rotation": 0.0,
    "translation": 0.0,
    "shear": 0.0,
    "grayscale": 0.0,
    "brightness": 1.0,
    "contrast": 1.0,
    "saturation": 1.0,
    "hue": 0.0,
    "blur": 0.0,
    "sharpness": 1.0,
}

SPATIAL = ("resized_crop", "hflip", "vflip", "scale", "rotation", "translation", "shear")
APPEARANCE = ("grayscale", "brightness", "contrast", "saturation", "hue", "blur", "sharpness")
VISION_SET = TransformSet(
    "vision", TRANSFORMS, GRIDS, IDENTITY, {"all": SPATIAL + APPEARANCE, "spatial": SPATIAL, "appearance": APPEARANCE},
    clamp=True,
)  # fmt: skip


def apply_transform(name: str, x: torch.Tensor, param: float) -> torch.Tensor:
    """Transform ``name`` at ``param`` applied to a float batch: images (B, 3, H, W) in [0, 1] or waveforms (B, 1, L)."""
    return modality_of(x).measurement().apply(name, x, param)


def resolve_transforms(spec: str, modality: str = "vision") -> tuple[str, ...]:
    """A group name (vision: ``all``, ``spatial``, ``appearance``; audio: ``all``, ``frequency``, ``temporal``)
    or a comma-separated list of the modality's transform names."""
    return MODALITIES[modality].measurement().resolve(spec)
