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

from collections.abc import Sequence
from dataclasses import dataclass

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

    def sample(self, n: int, descriptor: torch.Tensor | Sequence[float]) -> dict[str, tuple[torch.Tensor, ...]]:
        """Per-sample parameters (CPU tensors (n,)) of every active op."""
        r, p = self.recipe, {}
        for op in self.active_ops(descriptor):
            if op == "pitch_shift":
                p[op] = (_uniform(n, *r.pitch_semitones),)
            elif op in ("fade_in", "fade_out"):
                p[op] = (_uniform(n, 0, r.fade_in_max if op == "fade_in" else r.fade_out_max), torch.randint(0, 3, (n,)))
            elif op == "noise":
                p[op] = (_uniform(n, *r.snr_db),)
            elif op == "time_mask":
                width = _uniform(n, 0, r.mask_max)
                p[op] = (torch.rand(n) * (1 - width), width)
            elif op == "time_shift":
                p[op] = (_uniform(n, -r.shift_max, r.shift_max),)
            elif op == "time_stretch":
                p[op] = (_uniform(n, *r.stretch),)
        return p

    def apply(self, waves: torch.Tensor, params: dict[str, tuple[torch.Tensor, ...]]) -> torch.Tensor:
        """The view of ``waves`` (B, 1, L) for sampled ``params``: (B, 1, length)."""
        x = self.eval_input(waves)[:, 0]
        zero = torch.zeros(len(x))
        for op in (o for o in AUDIO_OPS if o in params):
            args = params[op]
            if op == "time_stretch":
                x = A.time_stretch(x, args[0], self.recipe.n_fft)
            elif op == "pitch_shift":
                x = A.pitch_shift(x, args[0], self.recipe.n_fft)
            elif op == "time_shift":
                x = A.time_shift(x, args[0])
            elif op == "time_mask":
                x = A.time_mask(x, *args)
            elif op == "fade_in":
                x = A.fade(x, args[0], zero, args[1])
            elif op == "fade_out":
                x = A.fade(x, zero, args[0], args[1])
            elif op == "noise":
                noise = torch.randn(x.shape).to(x.device, non_blocking=True)
                x = A.add_noise(x, args[0], noise)
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

    def forward(self, waves: torch.Tensor, descriptor: torch.Tensor | Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independent views of ``waves`` (B, 1, L) for ``descriptor`` (K,)."""
        return self.view(waves, descriptor), self.view(waves, descriptor)
