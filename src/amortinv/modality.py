"""Modalities: what the rest of the code is handed instead of branching on images vs audio.

A ``Modality`` knows its raw batches (vision: uint8 images (N, 3, H, W); audio: float waveforms
(N, 1, L)), checks them, builds its augmentation engine for an invariance space, and maps a raw
batch to the encoder's deterministic input (vision: resize + centre crop + ImageNet
normalisation; audio: the centred window), and hands out the transforms invariance is measured to. Sizes are a raw batch's last two dimensions: (H, W) of
images, (1, L) of waveforms. ``modality_of(batch)`` recognises a raw batch by its
rank; ``MODALITIES`` maps names (an encoder's ``modality``, a dataset's) to the objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from amortinv.spaces import InvarianceSpace

if TYPE_CHECKING:
    from amortinv.measure.transform_set import TransformSet

__all__ = ["Modality", "VISION", "AUDIO", "MODALITIES", "modality_of"]


class Modality:
    """The interface; see the two implementations below."""

    name = ""
    raw = ""  # what a raw batch is, for messages
    default_space = ""  # the invariance space a run on this modality's data uses unless told otherwise

    def check(self, x: torch.Tensor, what: str = "inputs") -> None:
        """Raise ValueError naming ``what`` if ``x`` is not a raw batch of this modality."""
        raise NotImplementedError

    def view_size(self, example: torch.Tensor, requested: int | None) -> Any:
        """The size of the training views for a dataset whose first input is ``example``."""
        raise NotImplementedError

    def encoder_options(self, dataset: Any) -> dict[str, Any]:
        """Encoder options this modality needs for ``dataset`` (e.g. audio's front end)."""
        return {}

    def augment(self, space: InvarianceSpace, size: Any, recipe: str = "simclr") -> nn.Module:
        """The augmentation engine: ``engine(x, i) -> (view1, view2)`` and ``engine.eval_input(x)``."""
        raise NotImplementedError

    def base(self, x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
        """A raw batch as deterministic float data at ``size``, before normalisation (what measured transforms act on)."""
        raise NotImplementedError

    def eval_input(self, x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
        """A raw batch as the encoder's deterministic float input at ``size`` (on ``x``'s device)."""
        raise NotImplementedError

    def measurement(self) -> TransformSet:
        """The transforms invariance is measured to, with their grids and groups (``amortinv.measure``)."""
        raise NotImplementedError

    def preview(
        self, x: torch.Tensor, augment: nn.Module, dataset: Any, out: Path, title: str, wavs: bool = False
    ) -> Path:
        """Write a PNG of what the engine's descriptors do to the raw batch ``x`` (and, for audio, WAVs if ``wavs``)."""
        raise NotImplementedError


class _Vision(Modality):
    name, raw, default_space = "vision", "uint8 images (N, 3, H, W)", "groups2"

    def check(self, x: torch.Tensor, what: str = "inputs") -> None:
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{what} must be {self.raw}, got {x.dtype} {tuple(x.shape)}")

    def view_size(self, example: torch.Tensor, requested: int | None) -> Any:
        height, width = (int(v) for v in example.shape[-2:])
        if requested is None and height != width:
            raise ValueError(f"the images are {height}x{width}, not square: pass --image-size (views are square crops)")
        return requested or width

    def augment(self, space: InvarianceSpace, size: Any, recipe: str = "simclr") -> nn.Module:
        from amortinv.augment import VisionAugment

        return VisionAugment(space, size, recipe=recipe)

    def base(self, x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
        from amortinv.augment import resize_center

        return resize_center(x, (int(size[-2]), int(size[-1])))

    def eval_input(self, x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
        from amortinv.augment import normalise

        return normalise(self.base(x, size))

    def preview(
        self, x: torch.Tensor, augment: nn.Module, dataset: Any, out: Path, title: str, wavs: bool = False
    ) -> Path:
        from amortinv.viz.preview import preview_grid

        return preview_grid(x, augment, out, title=title)

    def measurement(self) -> TransformSet:
        from amortinv.measure.transforms import VISION_SET

        return VISION_SET


class _Audio(Modality):
    name, raw, default_space = "audio", "float waveforms (N, 1, L)", "audio7"

    def check(self, x: torch.Tensor, what: str = "inputs") -> None:
        if not torch.is_floating_point(x) or x.ndim != 3 or x.shape[1] != 1:
            raise ValueError(f"{what} must be {self.raw}, got {x.dtype} {tuple(x.shape)}")

    def view_size(self, example: torch.Tensor, requested: int | None) -> Any:
        return int(example.shape[-1])

    def encoder_options(self, dataset: Any) -> dict[str, Any]:
        from amortinv.encoders.frontend import default_frontend

        return {"in_channels": 1, "frontend": default_frontend(dataset.sample_rate)}

    def augment(self, space: InvarianceSpace, size: Any, recipe: str = "simclr") -> nn.Module:
        from amortinv.augment.audio import AudioAugment

        return AudioAugment(space, size, recipe=recipe)

    def base(self, x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
        from amortinv.augment.audio import AudioAugment

        return AudioAugment.center(x, int(size[-1]))

    def eval_input(self, x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
        return self.base(x, size)

    def preview(
        self, x: torch.Tensor, augment: nn.Module, dataset: Any, out: Path, title: str, wavs: bool = False
    ) -> Path:
        from amortinv.viz.preview_audio import audio_preview_grid

        wav_dir = out.with_name(out.stem + "_wavs") if wavs else None
        return audio_preview_grid(x, augment, dataset.sample_rate, out, title=title, wav_dir=wav_dir)

    def measurement(self) -> TransformSet:
        from amortinv.measure.audio_transforms import AUDIO_SET

        return AUDIO_SET


VISION, AUDIO = _Vision(), _Audio()
MODALITIES: dict[str, Modality] = {m.name: m for m in (VISION, AUDIO)}


def modality_of(x: torch.Tensor) -> Modality:
    """The modality of a raw batch: 4-D images or 3-D waveforms."""
    if isinstance(x, torch.Tensor) and x.ndim == 3:
        return AUDIO
    return VISION
