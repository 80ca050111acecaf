"""Deterministic waveform transforms over parameter grids: the seven CLAR ops, for measuring audio invariance.

Each maps float waveforms (B, 1, L) and one parameter to waveforms of the same shape, through the
audio engine's batched ops (``amortinv.augment.audio_ops``), with every sample given the same
parameter. ``AUDIO_IDENTITY[name]`` leaves clips unchanged; ``AUDIO_GRIDS[name]`` are the
parameters measured. Groups follow CLAR: ``frequency`` (pitch shift, fades, noise) and
``temporal`` (time mask, time shift, time stretch). Noise is a fixed seeded draw.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from amortinv.augment import audio_ops as A
from amortinv.measure.transform_set import TransformSet

__all__ = ["AUDIO_TRANSFORMS", "AUDIO_GRIDS", "AUDIO_IDENTITY", "FREQUENCY", "TEMPORAL", "AUDIO_SET"]


def _same(x: torch.Tensor, value: float) -> torch.Tensor:
    return torch.full((len(x),), float(value))


def _noise(x: torch.Tensor, snr_db: float) -> torch.Tensor:
    if snr_db == float("inf"):
        return x
    noise = torch.randn(x.shape[0], x.shape[-1], generator=torch.Generator().manual_seed(0)).to(x.device)
    return A.add_noise(x[:, 0], _same(x, snr_db), noise)[:, None]


def _on_clips(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> Callable[[torch.Tensor, float], torch.Tensor]:
    """Lift an op on (B, L) to waveforms (B, 1, L)."""
    return lambda x, p: fn(x[:, 0], p)[:, None]


AUDIO_TRANSFORMS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "pitch_shift": _on_clips(lambda x, s: A.pitch_shift(x, _same(x, s))),
    "fade_in": _on_clips(lambda x, f: A.fade(x, _same(x, f), _same(x, 0), torch.zeros(len(x), dtype=torch.long))),
    "fade_out": _on_clips(lambda x, f: A.fade(x, _same(x, 0), _same(x, f), torch.zeros(len(x), dtype=torch.long))),
    "noise": _noise,
    "time_mask": _on_clips(lambda x, w: A.time_mask(x, _same(x, 0.5 - w / 2), _same(x, w))),
    "time_shift": _on_clips(lambda x, s: A.time_shift(x, _same(x, s))),
    "time_stretch": _on_clips(lambda x, r: A.time_stretch(x, _same(x, r))),
}

AUDIO_GRIDS: dict[str, tuple[float, ...]] = {
    "pitch_shift": (-6.0, -3.0, 0.0, 3.0, 6.0),
    "fade_in": (0.0, 0.1, 0.2, 0.3, 0.5),
    "fade_out": (0.0, 0.1, 0.2, 0.3, 0.5),
    "noise": (float("inf"), 30.0, 20.0, 10.0, 3.0),
    "time_mask": (0.0, 0.05, 0.1, 0.125),
    "time_shift": (-0.2, -0.1, 0.0, 0.1, 0.2),
    "time_stretch": (0.7, 0.85, 1.0, 1.15, 1.3),
}

AUDIO_IDENTITY: dict[str, float] = {
    "pitch_shift": 0.0,
    "fade_in": 0.0,
    "fade_out": 0.0,
    "noise": float("inf"),
    "time_mask": 0.0,
    "time_shift": 0.0,
    "time_stretch": 1.0,
}

FREQUENCY = ("pitch_shift", "fade_in", "fade_out", "noise")
TEMPORAL = ("time_mask", "time_shift", "time_stretch")
AUDIO_SET = TransformSet(
    "audio", AUDIO_TRANSFORMS, AUDIO_GRIDS, AUDIO_IDENTITY,
    {"all": FREQUENCY + TEMPORAL, "frequency": FREQUENCY, "temporal": TEMPORAL},
)  # fmt: skip
"""The audio modality's measured transforms (``Modality.measurement()``)."""
