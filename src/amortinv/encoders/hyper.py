"""Hyper-convolution: a conv layer whose kernel is generated from an embedding of the descriptor.

The paper's design (Appendix A.1.1, SPEC section 3): each residual block embeds the descriptor,
``z = Linear(K, 16, bias=False)(i)``; each conv of the block has its own hypernetwork
``Linear(16, 32) -> ReLU -> Linear(32, O*I*k*k)`` whose output, reshaped to (O, I, k, k), is used
with ``F.conv2d`` and no bias. A generated kernel is thus ``W(i) = B + sum_j h_j(i) A_j``: a
descriptor-dependent mix of ``hidden_dim`` basis kernels ``A_j`` plus a bias kernel ``B``, with
``33*N + 544`` parameters for a kernel of N weights at the default sizes.

Initialisation (ours, not the reference's). The reference initialises the output layer like any
linear layer, so every generated kernel starts almost exactly at its bias U(+-0.177), nearly
independent of ``i`` and far from a conv's fan-in scale. We instead give the generated kernel
the variance of a Kaiming-normal conv, ``v = 2 / fan_in``, split between the two parts:

- block embedding ``E``: N(0, 1/K), so ``E[z_j^2] = |i|^2 / K``, at most 1 on binary descriptors;
- first hyper layer: Kaiming-normal (ReLU gain), zero bias, so ``E[h_j^2] ~ E[z_j^2]``;
- bias kernel ``B``: N(0, v/2); basis kernels ``A_j``: N(0, v / (2 * hidden_dim)).

Then ``Var(W) ~ v/2 * (1 + |i|^2/K)``: the fan-in scale, with half of it depending on ``i``
from the first step (kernels at [1,0] and [0,1] differ by about as much as two random convs
of half the variance). Every conv is followed by BatchNorm, so the remaining scale variation
across descriptors is harmless.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HyperConv2d", "PlainConv2d", "BlockEmbedding"]


class BlockEmbedding(nn.Linear):
    """``z = E i``: a residual block's linear embedding of the descriptor, (K,) -> (embed_dim,)."""

    def __init__(self, invariance_dim: int, embed_dim: int = 16) -> None:
        super().__init__(invariance_dim, embed_dim, bias=False)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, std=1.0 / math.sqrt(self.in_features))


class PlainConv2d(nn.Conv2d):
    """``nn.Conv2d`` (no bias) that accepts and ignores the block embedding, for plain ResNets."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:  # noqa: ARG002
        return super().forward(x)


class HyperConv2d(nn.Module):
    """A bias-free conv whose (O, I, k, k) kernel a small MLP generates from a block embedding z.

    Args:
        in_channels, out_channels, kernel_size, stride, padding: as for ``nn.Conv2d``.
        embed_dim: size of the block embedding z (16 in the paper).
        hidden_dim: hidden width of the hypernetwork (32 in the paper; smaller is cheaper).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        embed_dim: int = 16,
        hidden_dim: int = 32,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding = stride, padding
        self.shape = (out_channels, in_channels, kernel_size, kernel_size)
        numel = out_channels * in_channels * kernel_size * kernel_size
        self.hidden = nn.Linear(embed_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, numel)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Fan-in-scaled, descriptor-dependent kernels from the start (see the module docstring)."""
        fan_in = self.in_channels * self.kernel_size**2
        var = 2.0 / fan_in
        nn.init.kaiming_normal_(self.hidden.weight, nonlinearity="relu")
        nn.init.zeros_(self.hidden.bias)
        nn.init.normal_(self.out.weight, std=math.sqrt(var / (2 * self.out.in_features)))
        nn.init.normal_(self.out.bias, std=math.sqrt(var / 2))

    def weight(self, z: torch.Tensor) -> torch.Tensor:
        """The generated kernel (O, I, k, k) for one block embedding z of shape (embed_dim,)."""
        return self.out(F.relu(self.hidden(z))).view(self.shape)

    def kernel_step_gain(self, zs: torch.Tensor) -> float:
        """``1 / (1 + mean ||h(z)||_1)`` over block embeddings zs (n, embed_dim).

        Under Adam every entry of ``B`` and of each basis kernel ``A_j`` moves by about the
        learning rate per step, so the generated kernel ``W = B + sum_j h_j A_j`` moves by up to
        ``lr * (1 + sum_j |h_j|)``: this gain scales the output layer's learning rate so that
        ``W`` takes a plain conv's step.
        """
        with torch.no_grad():
            h = F.relu(self.hidden(zs))
        return float(1.0 / (1.0 + h.abs().sum(dim=1).mean()))

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Convolve x (B, I, H, W) with the kernel generated from z (embed_dim,)."""
        if z is None:
            raise ValueError("HyperConv2d needs the block embedding of an invariance descriptor")
        return F.conv2d(x, self.weight(z), stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
