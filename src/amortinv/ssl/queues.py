"""One negative-key queue per training descriptor (MoCo-v2 with amortised invariances)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DescriptorQueues"]


class DescriptorQueues(nn.Module):
    """``num_queues`` FIFO queues of ``size`` L2-normalised keys of dimension ``dim``.

    Stored as buffers, so they are saved in checkpoints and moved with the module.
    """

    def __init__(self, num_queues: int, dim: int, size: int = 65536) -> None:
        super().__init__()
        if num_queues < 1 or size < 1:
            raise ValueError("need at least one queue of at least one entry")
        self.register_buffer("keys", F.normalize(torch.randn(num_queues, size, dim), dim=2))
        self.register_buffer("ptr", torch.zeros(num_queues, dtype=torch.long))

    @property
    def size(self) -> int:
        return self.keys.shape[1]

    def get(self, index: int) -> torch.Tensor:
        """Queue ``index`` as (size, dim)."""
        return self.keys[index]

    @torch.no_grad()
    def enqueue(self, index: int, keys: torch.Tensor) -> None:
        """Replace the oldest entries of queue ``index`` by ``keys`` (N, dim), wrapping around."""
        n = keys.shape[0]
        if n > self.size:
            keys, n = keys[-self.size :], self.size
        start = int(self.ptr[index])
        positions = (torch.arange(n, device=keys.device) + start) % self.size
        self.keys[index, positions] = F.normalize(keys.detach().to(self.keys.dtype), dim=1)
        self.ptr[index] = (start + n) % self.size
