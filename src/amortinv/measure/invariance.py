"""Invariance measurement (BMVC 2022 protocol, SPEC section 7).

For each transform and parameter, compare the features of a clean and a transformed image:
cosine similarity (1 = invariant) and Mahalanobis distance (0 = invariant) with the feature
mean and covariance estimated on a reference set of images at the same descriptor. The
covariance is shrunk towards a scaled identity (Ledoit-Wolf), which keeps it invertible even
when the reference set is smaller than the feature dimension (reported in ``notes``).
Per image, scores are averaged over the transform's non-identity parameters; the table holds
the mean and standard error over images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from amortinv.encoders.base import Encoder, check_descriptor
from amortinv.features import frozen_features
from amortinv.modality import modality_of

__all__ = ["ledoit_wolf", "mahalanobis", "measure_invariance", "invariance_path", "invariance_grid"]


def ledoit_wolf(x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Ledoit-Wolf shrunk covariance (D, D) of samples x (N, D), and the shrinkage in [0, 1]."""
    x = x.double()
    n, p = x.shape
    xc = x - x.mean(0)
    emp = xc.T @ xc / n
    mu = torch.trace(emp) / p
    x2 = xc**2
    beta_ = (x2.T @ x2).sum()
    delta_ = ((xc.T @ xc) ** 2).sum() / n**2
    beta = (beta_ / n - delta_) / (p * n)
    delta = (delta_ - 2 * mu * torch.trace(emp) + p * mu**2) / p
    shrink = 0.0 if delta <= 0 else float(torch.clamp(beta / delta, 0.0, 1.0))
    return (1 - shrink) * emp + shrink * mu * torch.eye(p, dtype=x.dtype), shrink


def mahalanobis(a: torch.Tensor, b: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
    """sqrt((a-b)^T P (a-b)) per row, for a, b (N, D) and a precision matrix P (D, D)."""
    d = (a - b).double()
    return torch.einsum("nd,de,ne->n", d, precision.double(), d).clamp_min(0).sqrt()


def _prepare(images: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    return modality_of(images).base(images, size or tuple(images.shape[-2:]))


def _check_descriptor(encoder: Encoder, d: Any) -> torch.Tensor | None:
    if d is None:
        if encoder.conditioned:
            raise ValueError("a conditioned encoder needs descriptors to measure")
        return None
    return check_descriptor(d, encoder.invariance_dim) if encoder.conditioned else None


def measure_invariance(
    encoder: Encoder,
    images: torch.Tensor,
    descriptors: Sequence[Any],
    transforms: Sequence[str],
    reference: torch.Tensor,
    *,
    labels: Sequence[str] | None = None,
    size: tuple[int, int] | None = None,
    include_identity: bool = False,
    batch_size: int = 256,
    progress: bool = False,
) -> dict[str, Any]:
    """Invariance of ``encoder`` at each descriptor (None for a plain encoder) to each transform.

    Args:
        images: uint8 or float images (N, 3, H, W) to transform.
        reference: images (M, 3, H, W) for the feature mean and covariance.
        labels: a name per descriptor (default: the values).
        progress: show a progress bar over (descriptor, transform) pairs.
    Returns:
        ``{"results": {label: {transform: {cosine, cosine_se, mahalanobis, mahalanobis_se, per_parameter}}},
        "notes": [...], "images": N, "reference_images": M}``.
    """
    x, ref = _prepare(images, size), _prepare(reference, size)
    measured = modality_of(x).measurement()
    labels = (
        list(labels)
        if labels is not None
        else [str(None if d is None else [float(v) for v in torch.as_tensor(d)]) for d in descriptors]
    )
    if len(labels) != len(descriptors):
        raise ValueError("need one label per descriptor")
    notes: list[str] = []
    results: dict[str, dict] = {}
    bar = tqdm(
        total=len(descriptors) * len(transforms), desc="measuring invariance", unit="transform", disable=not progress
    )
    for label, d in zip(labels, descriptors):
        i = _check_descriptor(encoder, d)
        clean = frozen_features(encoder, x, i, batch_size=batch_size)
        ref_feats = frozen_features(encoder, ref, i, batch_size=batch_size)
        if len(ref_feats) <= ref_feats.shape[1]:
            notes.append(
                f"{label}: {len(ref_feats)} reference images for {ref_feats.shape[1]} feature dimensions; "
                "the covariance relies on shrinkage"
            )
        cov, shrink = ledoit_wolf(ref_feats)
        precision = torch.linalg.pinv(cov)
        per_transform = {}
        for name in transforms:
            cos, dist, per_param = [], [], {}
            for p in measured.params(name, include_identity):
                f = frozen_features(encoder, measured.apply(name, x, p), i, batch_size=batch_size)
                c = F.cosine_similarity(clean, f, dim=1)
                cos.append(c)
                dist.append(mahalanobis(clean, f, precision).float())
                per_param[f"{p:g}"] = round(float(c.mean()), 5)
            bar.update()
            cos_img, dist_img = torch.stack(cos).mean(0), torch.stack(dist).mean(0)  # per image
            n = len(cos_img)
            per_transform[name] = {
                "cosine": round(float(cos_img.mean()), 5),
                "cosine_se": round(float(cos_img.std(unbiased=True) / n**0.5) if n > 1 else 0.0, 5),
                "mahalanobis": round(float(dist_img.mean()), 5),
                "mahalanobis_se": round(float(dist_img.std(unbiased=True) / n**0.5) if n > 1 else 0.0, 5),
                "per_parameter": per_param,
            }
        results[label] = {"shrinkage": round(shrink, 5), "transforms": per_transform}
    bar.close()
    return {
        "results": results,
        "notes": notes,
        "images": len(x),
        "reference_images": len(ref),
        "identity_included": include_identity,
    }


def _mean_cosine(encoder: Encoder, x: torch.Tensor, i: torch.Tensor, transform: str, batch_size: int) -> float:
    clean = frozen_features(encoder, x, i, batch_size=batch_size)
    measured = modality_of(x).measurement()
    cosines = [
        F.cosine_similarity(clean, frozen_features(encoder, measured.apply(transform, x, p), i, batch_size=batch_size))
        for p in measured.params(transform)
    ]
    return float(torch.stack(cosines).mean())


def invariance_path(
    encoder: Encoder,
    images: torch.Tensor,
    transform: str,
    start: Sequence[float],
    end: Sequence[float],
    steps: int = 11,
    *,
    size: tuple[int, int] | None = None,
    batch_size: int = 256,
) -> list[dict[str, Any]]:
    """Mean cosine invariance to ``transform`` along the straight line from descriptor ``start`` to ``end``."""
    if steps < 2:
        raise ValueError("an interpolation path needs at least 2 steps")
    a, b = _check_descriptor(encoder, start), _check_descriptor(encoder, end)
    x = _prepare(images, size)
    out = []
    for t in torch.linspace(0, 1, steps):
        i = (1 - t) * a + t * b
        out.append(
            {
                "t": round(float(t), 4),
                "i": [round(float(v), 4) for v in i],
                "cosine": round(_mean_cosine(encoder, x, i, transform, batch_size), 5),
            }
        )
    return out


def invariance_grid(
    encoder: Encoder,
    images: torch.Tensor,
    transform: str,
    steps: int = 6,
    *,
    size: tuple[int, int] | None = None,
    batch_size: int = 256,
) -> torch.Tensor:
    """Mean cosine invariance over a steps x steps grid of 2-factor descriptors; entry [r, c] is i = (r, c) / (steps - 1)."""
    if encoder.invariance_dim != 2:
        raise ValueError(f"the 2-D invariance grid needs K = 2 factors, this encoder has K = {encoder.invariance_dim}")
    x = _prepare(images, size)
    values = torch.linspace(0, 1, steps)
    grid = torch.zeros(steps, steps)
    for r, a in enumerate(values):
        for c, b in enumerate(values):
            grid[r, c] = _mean_cosine(encoder, x, torch.stack([a, b]), transform, batch_size)
    return grid
