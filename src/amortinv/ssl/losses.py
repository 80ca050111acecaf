"""Contrastive losses as pure functions (SPEC section 4).

All take projections of shape (N, D) that need not be normalised; they L2-normalise them.
Negatives are gathered from every rank with ``gather`` (identity in a single process).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from amortinv.ssl.distributed import gather, rank

__all__ = ["nt_xent", "info_nce_queue", "moco_v3_contrastive", "moco_v3_loss"]


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's NT-Xent loss over the 2N views of N images.

    Each view's positive is the other view of its image; the other 2N-2 views of the global
    batch (every rank's) are its negatives. Returns the mean over this rank's 2N anchors.

    Args:
        z1, z2: projections of view 1 and view 2 (N, D) on this rank.
        temperature: softmax temperature tau.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"nt_xent needs two (N, D) tensors of one shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    n = z1.shape[0]
    local = F.normalize(torch.cat([z1, z2]), dim=1)  # (2N, D): anchors of this rank
    all1, all2 = gather(F.normalize(z1, dim=1)), gather(F.normalize(z2, dim=1))
    everything = torch.cat([all1, all2])  # (2WN, D): view-1 block of all ranks, then view-2 block
    total = all1.shape[0]
    logits = local @ everything.T / temperature
    offset = rank() * n
    own = torch.cat([torch.arange(n), torch.arange(n) + total]) + offset  # each anchor's own column
    positive = torch.cat([torch.arange(n) + total, torch.arange(n)]) + offset
    own, positive = own.to(logits.device), positive.to(logits.device)
    logits = logits.masked_fill(F.one_hot(own, everything.shape[0]).bool(), float("-inf"))
    return F.cross_entropy(logits, positive)


def info_nce_queue(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """MoCo-v2's InfoNCE: each query against its key (positive) and every queue entry (negatives).

    Args:
        q: queries (N, D); k: keys (N, D), no gradient needed; queue: negatives (Q, D).
    """
    q, k, queue = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(queue, dim=1)
    pos = (q * k).sum(dim=1, keepdim=True)
    neg = q @ queue.T
    logits = torch.cat([pos, neg], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


def moco_v3_contrastive(q: torch.Tensor, k: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """``2T * CE(q k^T / T)`` with q, k L2-normalised and keys gathered from every rank."""
    q, k = F.normalize(q, dim=1), F.normalize(gather(k), dim=1)
    logits = q @ k.T / temperature
    labels = torch.arange(len(q), device=q.device) + rank() * len(q)
    return 2 * temperature * F.cross_entropy(logits, labels)


def moco_v3_loss(q1: torch.Tensor, q2: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """MoCo-v3's symmetric loss ``ctr(q1, k2) + ctr(q2, k1)``."""
    return moco_v3_contrastive(q1, k2, temperature) + moco_v3_contrastive(q2, k1, temperature)
