"""Frozen features at a fixed descriptor: the one path by which transfer, few-shot, kNN and measurement encode inputs.

``frozen_features`` runs the encoder without gradients and in eval mode for the call (BatchNorm
uses its running statistics, so a feature never depends on the rest of its batch), restores every
submodule's mode afterwards, and ignores ``i`` for a plain encoder. Passes that need gradients or
training mode (fine-tuning, the descriptor's tangent pass, BatchNorm recalibration) are not
frozen features and live with their methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from amortinv.encoders.base import Encoder
from amortinv.modality import modality_of

__all__ = ["frozen_features", "evaluating"]


@contextmanager
def evaluating(module: torch.nn.Module) -> Iterator[None]:
    """Run a block with ``module`` in eval mode, then restore the modes of all its submodules."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.train(mode)


@torch.no_grad()
def frozen_features(
    encoder: Encoder,
    inputs: torch.Tensor | Iterable[torch.Tensor],
    i: torch.Tensor | Sequence[float] | None = None,
    *,
    size: tuple[int, ...] | None = None,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
    normalise: bool = False,
) -> torch.Tensor:
    """Features (N, D), float32 on the CPU, of raw inputs at descriptor ``i``.

    Args:
        encoder: any amortinv encoder (a plain one ignores ``i``).
        inputs: a raw batch (N, ...) taken ``batch_size`` at a time: uint8 or [0, 1] float images (N, 3, H, W), or
            waveforms (N, 1, L); or an iterable of such batches (e.g. a data loader's inputs).
        i: the descriptor (K,).
        size: the encoder's input size (default: each batch's own); ``prepare`` replaces the modality's
            deterministic preparation (``Modality.eval_input``: resize, centre crop and normalisation for images,
            the centred window for waveforms) when the caller has its own (an augmentation engine's ``eval_input``).
        device: where to run (default: the encoder's device; the encoder must already be there).
        normalise: L2-normalise each feature (for kNN).
    """
    params = next(encoder.parameters())
    device = torch.device(device) if device is not None else params.device
    i_t = None if i is None or not encoder.conditioned else torch.as_tensor(i, dtype=params.dtype, device=device)
    batches = (
        (inputs[s : s + batch_size] for s in range(0, len(inputs), batch_size))
        if isinstance(inputs, torch.Tensor)
        else inputs
    )
    out = []
    with evaluating(encoder):
        for raw in batches:
            raw = raw.to(device)
            x = prepare(raw) if prepare is not None else modality_of(raw).eval_input(raw, size or tuple(raw.shape[-2:]))
            f = encoder(x.to(params.dtype), i_t).float()
            out.append((F.normalize(f, dim=1) if normalise else f).cpu())
    return torch.cat(out)
