"""BatchNorm statistics recomputed at a descriptor on a task's (unlabelled) training images.

During pre-training every BatchNorm's running mean and variance average over all the
descriptors drawn, so at any one descriptor they are slightly off. Downstream, the statistics
can be recomputed at the descriptor in use from the task's training images (labels are not
used; the test split is never touched), exactly as for a plain encoder. ``recompute_bn_stats``
returns the new buffers without changing the encoder; ``using_bn_stats`` swaps them in for a
block of code and restores the previous ones after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from amortinv.encoders.base import Encoder
from amortinv.transfer.data import prepare_batch

__all__ = ["bn_buffers", "recompute_bn_stats", "using_bn_stats", "has_batchnorm"]


def _bns(encoder: nn.Module) -> list[tuple[str, nn.modules.batchnorm._BatchNorm]]:
    return [
        (n, m)
        for n, m in encoder.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]


def has_batchnorm(encoder: nn.Module) -> bool:
    return bool(_bns(encoder))


def bn_buffers(encoder: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every BatchNorm's running mean and variance, by module name."""
    out = {}
    for name, m in _bns(encoder):
        out[f"{name}.running_mean"], out[f"{name}.running_var"] = m.running_mean.clone(), m.running_var.clone()
    return out


def _load(encoder: nn.Module, buffers: dict[str, torch.Tensor]) -> None:
    for name, m in _bns(encoder):
        m.running_mean.copy_(buffers[f"{name}.running_mean"])
        m.running_var.copy_(buffers[f"{name}.running_var"])


@contextmanager
def using_bn_stats(encoder: nn.Module, buffers: dict[str, torch.Tensor] | None) -> Iterator[None]:
    """Run a block with ``buffers`` as the BatchNorm statistics (None: leave them), then restore the previous ones."""
    if buffers is None:
        yield
        return
    saved = bn_buffers(encoder)
    with torch.no_grad():
        _load(encoder, buffers)
    try:
        yield
    finally:
        with torch.no_grad():
            _load(encoder, saved)


@torch.no_grad()
def recompute_bn_stats(
    encoder: Encoder,
    images: torch.Tensor,
    i: torch.Tensor | None,
    *,
    size: tuple[int, int],
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> dict[str, torch.Tensor]:
    """BatchNorm statistics of ``encoder`` at descriptor ``i`` over raw inputs ``images`` (uint8 images (N, 3, H, W) or waveforms (N, 1, L)), as buffers.

    The exact average over all the images (cumulative, not a moving average); the encoder's own
    buffers and mode are left as they were.
    """
    device = torch.device(device)
    saved, modes = bn_buffers(encoder), {m: m.training for _, m in _bns(encoder)}
    momenta = {m: m.momentum for _, m in _bns(encoder)}
    for _, m in _bns(encoder):
        m.reset_running_stats()
        m.momentum = None
        m.train()
    i_dev = (
        None
        if i is None or not encoder.conditioned
        else torch.as_tensor(i, dtype=next(encoder.parameters()).dtype, device=device)
    )
    try:
        for start in range(0, len(images), batch_size):
            encoder(prepare_batch(encoder, images[start : start + batch_size], size, device), i_dev)
        return bn_buffers(encoder)
    finally:
        _load(encoder, saved)
        for m, mode in modes.items():
            m.train(mode)
            m.momentum = momenta[m]
