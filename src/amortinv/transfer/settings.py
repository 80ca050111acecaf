"""Options of transfer and of the descriptor search, with their defaults (one place; no torch import)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["LAMBDAS", "SearchSettings", "TransferSettings"]

LAMBDAS: tuple[float, ...] = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 1e-5)
"""The probes' regularisation grid (per-sample scale, see ``amortinv.transfer.probe``)."""


@dataclass(frozen=True)
class SearchSettings:
    """Options of the descriptor search (see ``amortinv.transfer.learn``)."""

    steps: int = 30
    lr_i: float = 0.05
    batch_size: int = 512
    eval_every: int = 10
    gradient: str = "forward"
    chunk_size: int = 64


@dataclass
class TransferSettings:
    """Options of the protocol: probe grid, descriptor search, fine-tuning grid (all selected on validation)."""

    lams: Sequence[float] = LAMBDAS
    search: SearchSettings = field(default_factory=SearchSettings)
    init: str = "best"
    recalibrate_bn: bool = False
    lrs: Sequence[float] = (1e-3, 1e-2)
    weight_decays: Sequence[float] = (0.0, 1e-4)
    epochs: int = 10
    batch_size: int = 256
    loss: str = "mse"
    finetune_stages: Sequence[int] = ()
    finetune_budget: str | None = None
    quantise_bits: Sequence[int] = (1, 2, 3)
    device: str = "cpu"
    seed: int = 0
