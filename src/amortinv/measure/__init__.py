"""Invariance measurement: deterministic transforms and cosine / Mahalanobis invariance (pure PyTorch)."""

from amortinv.measure.invariance import (
    features_of, invariance_grid, invariance_path, ledoit_wolf, mahalanobis, measure_invariance,
)
from amortinv.measure.transforms import APPEARANCE, GRIDS, IDENTITY, SPATIAL, TRANSFORMS, apply_transform, resolve_transforms

__all__ = [
    "measure_invariance", "invariance_path", "invariance_grid", "ledoit_wolf", "mahalanobis", "features_of",
    "TRANSFORMS", "GRIDS", "IDENTITY", "SPATIAL", "APPEARANCE", "apply_transform", "resolve_transforms",
]
