"""Contrastive losses as pure functions (SPEC section 4).

All take projections of shape (N, D) that need not be normalised; they L2-normalise them.
Negatives are gathered from every rank with ``gather`` (identity in a single process).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from amortinv.ssl.distributed import gather, rank

__all__ = [
    "nt_xent",
    "info_nce_queue",
    "moco_v3_contrastive",
    "moco_v3_loss",
    "augself_targets",
    "augself_loss",
    "leave_one_out_loss",
]


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


def moco_v3_loss(
    q1: torch.Tensor, q2: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor, temperature: float = 0.2
) -> torch.Tensor:
    """MoCo-v3's symmetric loss ``ctr(q1, k2) + ctr(q2, k1)``."""
    return moco_v3_contrastive(q1, k2, temperature) + moco_v3_contrastive(q2, k1, temperature)


def augself_targets(
    w1: torch.Tensor, w2: torch.Tensor, jitter: tuple[float, float, float, float]
) -> dict[str, torch.Tensor]:
    """AugSelf's regression targets: how view 1's augmentation differs from view 2's.

    Args:
        w1, w2: the views' parameters (B, 16), columns ``amortinv.augment.params.PARAM_NAMES``.
        jitter: the recipe's jitter strengths (brightness, contrast, saturation, hue).

    Returns:
        ``crop`` (B, 4): the difference of the crops' centres (row, column; the column mirrored for a
        flipped view) and of their heights and widths, as fractions of the image; ``colour`` (B, 4): the
        difference of the jitter factors, each divided by the width of its range (2 x strength).
    """

    def centre(w: torch.Tensor) -> torch.Tensor:
        row, col = w[:, 0] + w[:, 2] / 2, w[:, 1] + w[:, 3] / 2
        return torch.stack([row, torch.where(w[:, 4] > 0, 1 - col, col)], dim=1)

    crop = torch.cat([centre(w1) - centre(w2), w1[:, 2:4] - w2[:, 2:4]], dim=1)
    width = torch.tensor([2 * max(v, 1e-8) for v in jitter], dtype=w1.dtype, device=w1.device)
    return {"crop": crop, "colour": (w1[:, 5:9] - w2[:, 5:9]) / width}


def augself_loss(predictions: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """AugSelf's auxiliary loss: the sum over the predicted groups of ``MSE(tanh(prediction), target)``."""
    return sum(F.mse_loss(torch.tanh(predictions[k]), targets[k]) for k in predictions)


def leave_one_out_loss(z: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """LooC's loss summed over its embedding spaces, with the other images' keys as negatives.

    Args:
        z: embeddings (S, V, N, D) in S = 1 + F spaces of V = 2 + F views of N images: view 0 is the
            query, view 1 a key with every augmentation drawn anew, view 1 + f a key that shares factor
            f's augmentation with the query. Space 0 is invariant to every factor: each key is a
            positive of the query (the mean of one InfoNCE term per key). Space f varies with factor f:
            only key 1 + f is the query's positive; the image's other keys, which differ from the query
            in factor f, are negatives too.
        temperature: softmax temperature.
    """
    spaces, views, n, _ = z.shape
    if spaces + 1 != views:
        raise ValueError(f"leave_one_out_loss needs S spaces and S + 1 views, got {tuple(z.shape)}")
    z = F.normalize(z, dim=-1)
    labels = torch.arange(n, device=z.device) + rank() * n
    total = z.new_zeros(())
    for s in range(spaces):
        q = z[s, 0]
        if s == 0:
            terms = [F.cross_entropy(q @ gather(z[0, v]).T / temperature, labels) for v in range(1, views)]
            total = total + sum(terms) / len(terms)
            continue
        positives = q @ gather(z[s, 1 + s]).T  # (N, W N): the other images' key 1 + s are negatives
        others = torch.stack([(q * z[s, v]).sum(-1) for v in range(1, views) if v != 1 + s], dim=1)  # (N, V - 2)
        total = total + F.cross_entropy(torch.cat([positives, others], dim=1) / temperature, labels)
    return total
