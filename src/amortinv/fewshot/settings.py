"""Options of few-shot evaluation and the per-episode search, with their defaults (one place; no torch import)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from amortinv.checks import at_least, choice, finite, finite_list
from amortinv.devices import check_device_name, resolve_device
from amortinv.transfer.settings import LAMBDAS

__all__ = ["EpisodeSearch", "FewShotSettings"]


@dataclass(frozen=True)
class EpisodeSearch:
    """Options of the per-episode descriptor search (see ``amortinv.fewshot.invariance``)."""

    steps: int = 20
    lr_i: float = 0.1

    def __post_init__(self) -> None:
        at_least("--steps", self.steps, 0)
        finite("--lr-i", self.lr_i, above=0.0)


@dataclass(frozen=True)
class FewShotSettings:
    """Episodes (ways, shots, queries, count), heads, the ridge grid, the per-episode search, batch and device."""

    ways: int = 5
    shots: Sequence[int] = (1, 5)
    queries: int = 15
    episodes: int = 2000
    heads: Sequence[str] = ("ridge", "prototype", "logistic")
    lams: Sequence[float] = LAMBDAS
    search: EpisodeSearch = field(default_factory=EpisodeSearch)
    one_shot: str = "ones"
    fractions: Sequence[float] = (0.05, 0.1, 0.2)
    repeats: int = 100
    batch_size: int = 128
    device: str = "auto"
    seed: int = 0

    def resolved_device(self) -> str:
        """The device to compute on: ``auto`` resolved (a GPU when one is visible); a missing GPU raises here."""
        return resolve_device(self.device)

    def __post_init__(self) -> None:
        """Check every setting once, here (``ValueError`` naming the option and the value)."""
        check_device_name(self.device)
        for name, value, low in (
            ("--ways", self.ways, 2),
            ("--queries", self.queries, 1),
            ("--episodes", self.episodes, 1),
            ("--repeats", self.repeats, 1),
            ("--batch-size", self.batch_size, 1),
        ):
            at_least(name, value, low)
        if not self.shots:
            raise ValueError("--shots needs at least one value")
        for shot in self.shots:
            at_least("--shots", shot, 1)
        finite_list("--fractions", self.fractions, above=0.0, below=1.0)
        finite_list("--lams", self.lams, above=0.0)
        choice("--one-shot", self.one_shot, ("ones", "gcv"))
