"""Cross-rank gathering that back-propagates, and is the identity without a process group."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn

__all__ = ["gather", "gather_no_grad", "world_size", "rank"]


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` (N, ...) from every rank in rank order -> (W*N, ...), with gradients.

    The backward pass sums, on each rank, the gradients that every rank's loss sends to that
    rank's slice, so a loss averaged over ranks (as DDP does) gets exactly the gradient of the
    same loss computed in one process on the concatenated batch.
    """
    if world_size() == 1:
        return x
    return torch.cat(dist_fn.all_gather(x), dim=0)


@torch.no_grad()
def gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """Like ``gather`` without autograd (for keys entering a queue)."""
    if world_size() == 1:
        return x
    out = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out, dim=0)
