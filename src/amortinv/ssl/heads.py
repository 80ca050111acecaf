"""Projection and prediction heads, shared or one per training descriptor."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["mlp", "DescriptorHeads"]


def mlp(in_dim: int, hidden_dim: int, out_dim: int, layers: int = 2, last_bn: bool = False) -> nn.Sequential:
    """``layers`` Linear layers with BatchNorm + ReLU between them (SimCLR / MoCo heads).

    MoCo-v3 uses ``last_bn=True`` (an affine-free BatchNorm on the output).
    """
    if layers < 1:
        raise ValueError("a head needs at least one layer")
    mods: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(dim, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)]
        dim = hidden_dim
    mods.append(nn.Linear(dim, out_dim, bias=not last_bn))
    if last_bn:
        mods.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*mods)


class DescriptorHeads(nn.Module):
    """A head shared by all descriptors (``per_descriptor=False``) or one per training descriptor.

    The reference keeps one head per descriptor; we default to a shared head (the descriptor
    already conditions the encoder, and a shared head sees every step's gradient).
    """

    def __init__(self, make: Callable[[], nn.Module], num_descriptors: int, per_descriptor: bool = False) -> None:
        super().__init__()
        self.per_descriptor = per_descriptor
        self.heads = nn.ModuleList(make() for _ in range(num_descriptors if per_descriptor else 1))

    def forward(self, x: torch.Tensor, index: int) -> torch.Tensor:
        return self.heads[index if self.per_descriptor else 0](x)
