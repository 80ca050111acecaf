"""One modality's measured transforms as one object: functions, parameter grids, identities and named groups.

``Modality.measurement()`` hands out its modality's set (vision: ``amortinv.measure.transforms``; audio:
``amortinv.measure.audio_transforms``), so measurement never asks which modality it is measuring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["TransformSet"]


@dataclass(frozen=True)
class TransformSet:
    """``transforms[name](x, param)`` maps a float batch to one of the same shape; ``grids[name]`` are the parameters
    measured (identity included), ``identity[name]`` the one that changes nothing; ``groups`` name subsets
    (``all`` among them); ``clamp`` keeps outputs in [0, 1] (images)."""

    modality: str
    transforms: dict[str, Callable[[torch.Tensor, float], torch.Tensor]]
    grids: dict[str, tuple[float, ...]]
    identity: dict[str, float]
    groups: dict[str, tuple[str, ...]]
    clamp: bool = False

    def apply(self, name: str, x: torch.Tensor, param: float) -> torch.Tensor:
        """Transform ``name`` at ``param`` on the batch ``x``; an unknown name raises ValueError naming the choices."""
        if name not in self.transforms:
            raise ValueError(f"unknown {self.modality} transform '{name}'; choose from {sorted(self.transforms)}")
        out = self.transforms[name](x, float(param))
        return out.clamp(0, 1) if self.clamp else out

    def params(self, name: str, include_identity: bool = False) -> list[float]:
        """The grid of ``name``, without its identity unless ``include_identity``."""
        return [p for p in self.grids[name] if include_identity or p != self.identity[name]]

    def resolve(self, spec: str) -> tuple[str, ...]:
        """A group name or a comma-separated list of this modality's transform names."""
        if spec in self.groups:
            return self.groups[spec]
        names = tuple(n.strip() for n in spec.split(",") if n.strip())
        unknown = [n for n in names if n not in self.groups["all"]]
        if unknown or not names:
            raise ValueError(
                f"unknown {self.modality} transforms {unknown or spec!r}; "
                f"choose from {', '.join(self.groups)} or {sorted(self.groups['all'])}"
            )
        return names
