"""Invariance measurement: deterministic transforms and cosine / Mahalanobis invariance (pure PyTorch)."""

from amortinv._lazy import lazy_exports

_EXPORTS = {
    "measure_invariance": "amortinv.measure.invariance",
    "invariance_path": "amortinv.measure.invariance",
    "invariance_grid": "amortinv.measure.invariance",
    "ledoit_wolf": "amortinv.measure.invariance",
    "mahalanobis": "amortinv.measure.invariance",
    "TRANSFORMS": "amortinv.measure.transforms",
    "GRIDS": "amortinv.measure.transforms",
    "IDENTITY": "amortinv.measure.transforms",
    "SPATIAL": "amortinv.measure.transforms",
    "APPEARANCE": "amortinv.measure.transforms",
    "VISION_SET": "amortinv.measure.transforms",
    "AUDIO_SET": "amortinv.measure.audio_transforms",
    "TransformSet": "amortinv.measure.transform_set",
    "apply_transform": "amortinv.measure.transforms",
    "resolve_transforms": "amortinv.measure.transforms",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
