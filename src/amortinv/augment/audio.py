"""Batched, per-sample-random waveform augmentations driven by an invariance descriptor (CLAR's seven).

``AudioAugment(space, length)(waves, i)`` returns the two views of a contrastive step: waveforms
(B, 1, L) in, (B, 1, L) out, with only the ops of the factors switched on by the binary
descriptor ``i`` applied. Op names (the ``audio7`` space's factors, one op each): ``pitch_shift``,
``fade_in``, ``fade_out``, ``noise``, ``time_mask``, ``time_shift``, ``time_stretch``. They run in
the order stretch, pitch, shift, mask, fades, noise, each with probability 1 when on.

Parameter ranges (``AudioRecipe``) follow CLAR (Al-Tahan & Mohsenzadeh, 2021) as collected in the
public parameter file of the same group's MT-SLVR code: pitch shift U[-15, 15] semitones, fade-in
and fade-out lengths U[0, 0.5] of the clip with a linear, logarithmic or exponential curve, white
noise at an SNR of U[3, 30] dB, one time mask of U[0, 0.125] of the clip (zeros), time shift
U[-0.5, 0.5] of the clip with wrap-around, time stretch by a rate U[0.5, 1.5] (length kept by
centre crop / zero padding). Coloured noise (MT-SLVR's ``f_decay``) is not implemented.

Parameters are drawn per sample from torch's global CPU generator (``torch.manual_seed``
reproduces the views); the ops (``amortinv.augment.audio_ops``) run on the batch's device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from amortinv.augment import audio_ops as A
from amortinv.augment.common import active_ops, check_space_ops, pick_recipe
from amortinv.spaces import InvarianceSpace

__all__ = ["AudioAugment", "AudioRecipe", "AUDIO_RECIPES", "AUDIO_OPS", "check_waveforms"]

AUDIO_OPS = ("time_stretch", "pitch_shift", "time_shift", "time_mask", "fade_in", "fade_out", "noise")


@dataclass(frozen=True)
class AudioRecipe:
    """Ranges of the seven audio ops (see the module docstring)."""

    pitch_semitones: tuple[float, float] = (-15.0, 15.0)
    fade_in_max: float = 0.5
    fade_out_max: float = 0.5
    snr_db: tuple[float, float] = (3.0, 30.0)
    mask_max: float = 0.125
    shift_max: float = 0.5
    stretch: tuple[float, float] = (0.5, 1.5)
    n_fft: int = 512


# one recipe, CLAR's; the vision recipe names select it too, so a method's default recipe works on audio
AUDIO_RECIPES: dict[str, AudioRecipe] = {"clar": AudioRecipe(), "simclr": AudioRecipe(), "moco": AudioRecipe()}


def check_waveforms(x: torch.Tensor) -> torch.Tensor:
    """Check a waveform batch (B, 1, L), float; return it as float32 (B, 1, L)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"waveforms must be a torch.Tensor of shape (B, 1, L), got {type(x).__name__}")
    if x.ndim != 3 or x.shape[1] != 1:
        raise ValueError(f"waveforms must have shape (B, 1, L), got {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        raise ValueError(f"waveforms must be float (values in [-1, 1]), got dtype {x.dtype}")
    return x.float()


def _uniform(n: int, lo: float, hi: float) -> torch.Tensor:
    return torch.empty(n).uniform_(lo, hi)


def _mask(n: int, r: AudioRecipe, length: int) -> dict[str, Any]:
    width = _uniform(n, 0, r.mask_max)
    return {"start": torch.rand(n) * (1 - width), "width": width}


def _fade(which: str) -> Callable[[int, AudioRecipe, int], dict[str, Any]]:
    def draw(n: int, r: AudioRecipe, length: int) -> dict[str, Any]:
        lengths = {"fade_in": torch.zeros(n), "fade_out": torch.zeros(n)}
        lengths[which] = _uniform(n, 0, r.fade_in_max if which == "fade_in" else r.fade_out_max)
        return {**lengths, "shape": torch.randint(0, len(A.FADE_SHAPES), (n,))}

    return draw


# per op: the draw of its keyword arguments (n samples, recipe, clip length) and the batched op taking them
_SAMPLERS: dict[str, Callable[[int, AudioRecipe, int], dict[str, Any]]] = {
    "time_stretch": lambda n, r, length: {"rate": _uniform(n, *r.stretch), "n_fft": r.n_fft},
    "pitch_shift": lambda n, r, length: {"semitones": _uniform(n, *r.pitch_semitones), "n_fft": r.n_fft},
    "time_shift": lambda n, r, length: {"shift": _uniform(n, -r.shift_max, r.shift_max)},
    "time_mask": _mask,
    "fade_in": _fade("fade_in"),
    "fade_out": _fade("fade_out"),
    "noise": lambda n, r, length: {"snr_db": _uniform(n, *r.snr_db), "noise": torch.randn(n, length)},
}
_OPS: dict[str, Callable[..., torch.Tensor]] = {
    "time_stretch": A.time_stretch,
    "pitch_shift": A.pitch_shift,
    "time_shift": A.time_shift,
    "time_mask": A.time_mask,
    "fade_in": A.fade,
    "fade_out": A.fade,
    "noise": A.add_noise,
}


class AudioAugment(nn.Module):
    """Descriptor-conditioned two-view augmentation for waveform batches (B, 1, length)."""

    def __init__(self, space: InvarianceSpace, length: int | Sequence[int], recipe: str | AudioRecipe = "clar") -> None:
        super().__init__()
        self.space = space
        self.length = int(length[-1]) if isinstance(length, Sequence) else int(length)
        self.recipe = pick_recipe(recipe, AUDIO_RECIPES, "audio")
        check_space_ops(space, AUDIO_OPS, "audio")

    def active_ops(self, descriptor: torch.Tensor | Sequence[float]) -> tuple[str, ...]:
        """The op names switched on by a binary descriptor, in application order."""
        return active_ops(self.space, descriptor, AUDIO_OPS)

    def sample(self, n: int, descriptor: torch.Tensor | Sequence[float]) -> dict[str, dict[str, Any]]:
        """Per-sample parameters (CPU tensors (n,); the noise (n, length)) of every active op, as its keyword arguments."""
        return {op: _SAMPLERS[op](n, self.recipe, self.length) for op in self.active_ops(descriptor)}

    def apply(self, waves: torch.Tensor, params: dict[str, dict[str, Any]]) -> torch.Tensor:
        """The view of ``waves`` (B, 1, L) for sampled ``params``: (B, 1, length)."""
        x = self.eval_input(waves)[:, 0]
        for op in (o for o in AUDIO_OPS if o in params):
            x = _OPS[op](x, **params[op])
        return x[:, None]

    def eval_input(self, waves: torch.Tensor) -> torch.Tensor:
        """Deterministic model input: the centred ``length`` window of each clip, float (B, 1, length)."""
        return self.center(waves, self.length)

    @staticmethod
    def center(waves: torch.Tensor, length: int) -> torch.Tensor:
        """The centred ``length`` window of each clip (cropped or zero-padded), float (B, 1, length)."""
        x = check_waveforms(waves)
        if x.shape[-1] == length:
            return x
        lengths = torch.full((len(x),), x.shape[-1])
        return A.fit_length(x[:, 0], lengths, length)[:, None]

    def view(self, waves: torch.Tensor, descriptor: torch.Tensor | Sequence[float]) -> torch.Tensor:
        """One randomly augmented view (B, 1, length) for a binary descriptor."""
        return self.apply(waves, self.sample(len(waves), descriptor))

    def forward(
        self, waves: torch.Tensor, descriptor: torch.Tensor | Sequence[float]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independent views of ``waves`` (B, 1, L) for ``descriptor`` (K,)."""
        return self.view(waves, descriptor), self.view(waves, descriptor)
