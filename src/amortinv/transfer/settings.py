"""Options of transfer and of the descriptor search, with their defaults (one place; no torch import)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from amortinv.checks import at_least, choice, finite, finite_list
from amortinv.devices import check_device_name, resolve_device

__all__ = ["LAMBDAS", "VAL_FRACTION", "SearchSettings", "TransferSettings"]

LAMBDAS: tuple[float, ...] = (10.0, 3.0, 1.0, 0.3, 0.1, 0.03, 0.01, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)
"""The one regularisation grid (per-sample scale, see ``amortinv.transfer.probe``), half-decades from 10 to 1e-5,
that every estimator choosing a ``lam`` searches: the many-shot probes (on validation), the descriptor search's ridge
objective and low-shot regression (leave-one-out), the few-shot ridge head (on the support set). It spans both
regimes: thousands of standardised examples select 1e-5 to 1e-2, a few dozen examples 1e-3 to 10 (``benchmarks/lambda_grid.py``)."""

VAL_FRACTION = 0.1
"""The share of a task's training data held out to select the probe's lambda, the descriptor and the fine-tuning
settings (transfer, the suite, measurement's probe; the demo's budget sets its own in ``DemoProfile``)."""


@dataclass(frozen=True)
class SearchSettings:
    """Options of the descriptor search (see ``amortinv.transfer.learn``)."""

    steps: int = 30
    lr_i: float = 0.05
    batch_size: int = 512
    eval_every: int = 10
    gradient: str = "forward"
    chunk_size: int = 64

    def __post_init__(self) -> None:
        at_least("--i-steps", self.steps, 0)
        finite("--lr-i", self.lr_i, above=0.0)
        at_least("--i-batch-size", self.batch_size, 2)
        at_least("--eval-every", self.eval_every, 1)
        choice("gradient", self.gradient, ("forward", "backprop"))
        at_least("chunk_size", self.chunk_size, 1)


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
    device: str = "auto"
    seed: int = 0

    def resolved_device(self) -> str:
        """The device to compute on: ``auto`` resolved (a GPU when one is visible); a missing GPU raises here."""
        return resolve_device(self.device)

    def __post_init__(self) -> None:
        """Check every setting once, here (``ValueError`` naming the option and the value)."""
        check_device_name(self.device)
        finite_list("--lams", self.lams, above=0.0)
        finite_list("--lrs", self.lrs, above=0.0)
        finite_list("--weight-decays", self.weight_decays, low=0.0)
        at_least("--epochs", self.epochs, 1)
        at_least("--batch-size", self.batch_size, 1)
        choice("--loss", self.loss, ("mse", "l1"))
        if self.init != "best":
            try:
                finite("--init", float(self.init), low=0.0, high=1.0)
            except ValueError:
                raise ValueError(f"--init must be 'best' or a number in [0, 1], got '{self.init}'") from None
        for stage in self.finetune_stages:
            if stage not in (0, 1, 2, 3, 4):
                raise ValueError(f"--finetune-stages takes stage numbers 1-4 and/or 'all', got {stage}")
        if self.finetune_budget not in (None, "ai"):
            raise ValueError(f"--finetune-budget must be 'ai' (or omitted), got '{self.finetune_budget}'")
