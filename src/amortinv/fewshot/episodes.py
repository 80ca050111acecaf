"""Seeded few-shot episodes and low-shot regression splits.

An episode is a pure function of ``(seed, index)``: the same on any device, with any batch size
and in any order. N classes are drawn from the usable ones (those with at least K + Q
examples), then K support and Q query examples per class, disjoint. Labels inside an episode
are 0..N-1 in the order the classes were drawn.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

__all__ = ["Episode", "EpisodeSampler", "low_shot_split"]

_STRIDE = 1_000_003


@dataclass(frozen=True)
class Episode:
    """Indices into the dataset and episode labels (0..N-1): support (N*K,), queries (N*Q,)."""

    index: int
    classes: torch.Tensor
    support: torch.Tensor
    support_labels: torch.Tensor
    query: torch.Tensor
    query_labels: torch.Tensor


def _generator(seed: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) * _STRIDE + int(index))


class EpisodeSampler:
    """N-way K-shot episodes with Q queries per class from integer labels (M,).

    Raises:
        ValueError: for non-positive ways/shots/queries, float (regression) targets, or more
            ways than classes with at least K + Q examples.
    """

    def __init__(self, labels: torch.Tensor, ways: int, shots: int, queries: int, seed: int = 0) -> None:
        if ways < 2 or shots < 1 or queries < 1:
            raise ValueError(
                f"episodes need ways >= 2, shots >= 1 and queries >= 1, got {ways}-way {shots}-shot {queries} queries"
            )
        labels = torch.as_tensor(labels)
        if torch.is_floating_point(labels) or labels.ndim != 1:
            raise ValueError(
                f"few-shot classification needs integer class labels (M,), got {labels.dtype} {tuple(labels.shape)}: "
                "a regression dataset? use --task regression"
            )
        self.ways, self.shots, self.queries, self.seed = ways, shots, queries, seed
        classes, counts = labels.unique(return_counts=True)
        small = classes[counts < shots + queries]
        if len(small):
            warnings.warn(
                f"skipping {len(small)} classes with fewer than {shots + queries} examples: {small.tolist()}",
                stacklevel=2,
            )
        self.classes = classes[counts >= shots + queries]
        if len(self.classes) < ways:
            raise ValueError(
                f"{ways}-way episodes need {ways} classes with at least {shots + queries} examples each; "
                f"the data has {len(self.classes)}"
            )
        self.members = {int(c): (labels == c).nonzero().flatten() for c in self.classes}

    def __call__(self, index: int) -> Episode:
        """The episode ``index`` (a pure function of the seed and the index)."""
        g = _generator(self.seed, index)
        chosen = self.classes[torch.randperm(len(self.classes), generator=g)[: self.ways]]
        support, query = [], []
        for c in chosen.tolist():
            members = self.members[c]
            picked = members[torch.randperm(len(members), generator=g)[: self.shots + self.queries]]
            support.append(picked[: self.shots])
            query.append(picked[self.shots :])
        episode_labels = torch.arange(self.ways)
        return Episode(
            index,
            chosen,
            torch.cat(support),
            episode_labels.repeat_interleave(self.shots),
            torch.cat(query),
            episode_labels.repeat_interleave(self.queries),
        )


def low_shot_split(n: int, fraction: float, seed: int, repeat: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random (train, test) split of ``range(n)`` with ``fraction`` of it for training (at least 2)."""
    if not 0 < fraction < 1:
        raise ValueError(f"train fractions must lie in (0, 1), got {fraction}")
    n_train = max(2, int(round(n * fraction)))
    if n_train >= n:
        raise ValueError(f"a train fraction of {fraction} of {n} examples leaves no test examples")
    perm = torch.randperm(n, generator=_generator(seed, repeat))
    return perm[:n_train].sort().values, perm[n_train:].sort().values
