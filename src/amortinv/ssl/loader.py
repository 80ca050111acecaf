"""A data loader that resumes in the middle of an epoch exactly where an interrupted run stopped.

The sampler is a seeded ``DistributedSampler`` (the same permutation for the same epoch on every
launch). The loader counts the batches it has handed out in the current epoch and reports them
in ``state_dict``; Lightning stores that in its checkpoints (any object with ``state_dict`` /
``load_state_dict`` is resumable to it). After ``load_state_dict`` the next epoch's iteration
skips those batches at the sampler, without loading them, so a run preempted mid-epoch and
resumed sees the very batches the uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader, Dataset, DistributedSampler

__all__ = ["ResumableSampler", "ResumableLoader"]


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` of (index, epoch) pairs whose next iteration starts ``skip`` indices
    into its permutation (once). The epoch lets a dataset seed per-item randomness (``InputsOnly``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.skip = 0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(super().__iter__())
        start, self.skip = self.skip, 0
        return iter([(k, self.epoch) for k in indices[start:]])


class ResumableLoader(DataLoader):
    """A ``DataLoader`` over a ``ResumableSampler`` (drop_last) that can resume mid-epoch."""

    def __init__(self, dataset: Dataset, sampler: ResumableSampler, **kwargs: Any) -> None:
        super().__init__(dataset, sampler=sampler, drop_last=True, **kwargs)
        self._done = 0
        self._resumed = 0

    def __iter__(self) -> Iterator[Any]:
        self._done, self._resumed = self._resumed, 0
        for batch in super().__iter__():
            self._done += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """Batches of the current epoch already handed out."""
        return {"batches_done": self._done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Skip the batches an interrupted epoch already used (none when that epoch had ended)."""
        done = int(state.get("batches_done", 0))
        if 0 < done < len(self):
            self._resumed = done
            self.sampler.skip = done * self.batch_size
