"""Options of few-shot evaluation and the per-episode search, with their defaults (one place; no torch import)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["EpisodeSearch", "FewShotSettings"]


@dataclass(frozen=True)
class EpisodeSearch:
    """Options of the per-episode descriptor search (see ``amortinv.fewshot.invariance``)."""

    steps: int = 20
    lr_i: float = 0.1


@dataclass(frozen=True)
class FewShotSettings:
    """Episodes (ways, shots, queries, count), heads, the per-episode search, batch and device."""

    ways: int = 5
    shots: Sequence[int] = (1, 5)
    queries: int = 15
    episodes: int = 2000
    heads: Sequence[str] = ("ridge", "prototype", "logistic")
    search: EpisodeSearch = field(default_factory=EpisodeSearch)
    one_shot: str = "ones"
    fractions: Sequence[float] = (0.05, 0.1, 0.2)
    repeats: int = 100
    batch_size: int = 128
    device: str = "cpu"
    seed: int = 0
