"""Generalisation bounds for downstream learning (paper Section 5, Theorem 5.1; SPEC section 8).

For a 1-Lipschitz loss with values in [0, M], a linear head with ||phi|| <= B on features with
||f(x)|| <= X, c classes and n training examples, with probability at least 1 - delta:

- amortised invariance (i chosen from a discrete set I):
  ``risk <= empirical + 2 sqrt(2c) X B / sqrt(n) + 3 M sqrt(ln(|I| / delta) / (2n))``
- linear readout (fixed features): the same with ``ln(2 / delta)`` for ``ln(|I| / delta)``.

After b-bit quantisation of a K-dimensional descriptor, ``|I| = 2^(bK)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from amortinv.checks import at_least, finite

__all__ = [
    "generalisation_bound", "linear_readout_bound", "descriptor_count", "BoundTerms", "bounds_for_run", "both_bounds"
]  # fmt: skip


@dataclass
class BoundTerms:
    """The bound and its three terms."""

    empirical: float
    complexity: float
    confidence: float

    @property
    def bound(self) -> float:
        return self.empirical + self.complexity + self.confidence

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "bound": self.bound}


def _check(empirical: float, n: int, c: int, x_norm: float, b_norm: float, m: float, delta: float) -> None:
    """Every input a finite number in its range (``ValueError`` naming the argument otherwise)."""
    at_least("n", n, 1)
    at_least("c", c, 1)
    finite("m", m, above=0.0)
    finite("empirical", empirical, low=0.0, high=m)
    finite("x_norm", x_norm, low=0.0)
    finite("b_norm", b_norm, low=0.0)
    finite("delta", delta, above=0.0, below=1.0)


def descriptor_count(k: int, bits: int = 1) -> int:
    """|I| = 2^(bits * K): the number of b-bit quantised K-dimensional descriptors."""
    if k < 1 or bits < 1:
        raise ValueError("K and bits must be >= 1")
    return 2 ** (bits * k)


def generalisation_bound(
    empirical: float,
    n: int,
    c: int,
    x_norm: float,
    b_norm: float,
    num_descriptors: int,
    m: float = 1.0,
    delta: float = 0.05,
) -> BoundTerms:
    """Theorem 5.1: the bound for a linear head plus a descriptor chosen from ``num_descriptors``."""
    _check(empirical, n, c, x_norm, b_norm, m, delta)
    at_least("num_descriptors", num_descriptors, 1)
    return BoundTerms(
        empirical,
        2 * math.sqrt(2 * c) * x_norm * b_norm / math.sqrt(n),
        3 * m * math.sqrt(math.log(num_descriptors / delta) / (2 * n)),
    )


def linear_readout_bound(
    empirical: float, n: int, c: int, x_norm: float, b_norm: float, m: float = 1.0, delta: float = 0.05
) -> BoundTerms:
    """The linear-readout bound: Theorem 5.1 with ln(2/delta) in place of ln(|I|/delta)."""
    _check(empirical, n, c, x_norm, b_norm, m, delta)
    return BoundTerms(
        empirical,
        2 * math.sqrt(2 * c) * x_norm * b_norm / math.sqrt(n),
        3 * m * math.sqrt(math.log(2 / delta) / (2 * n)),
    )


def bounds_for_run(
    features: torch.Tensor,
    head_weight: torch.Tensor,
    empirical_error: float,
    num_classes: int,
    k: int,
    bits: int = 1,
    m: float = 1.0,
    delta: float = 0.05,
) -> dict[str, Any]:
    """Instantiate both bounds for a trained head (paper Table 4).

    Args:
        features: training features (n, D) at the learned (quantised) descriptor: X = max row norm.
        head_weight: the linear head's weight (c, D): B = its Frobenius norm.
        empirical_error: the training error (a loss in [0, M], e.g. the 0-1 error with M = 1).
        k, bits: the descriptor length and quantisation, giving |I| = 2^(bits K).
    """
    x_norm, b_norm = float(features.norm(dim=1).max()), float(head_weight.norm())
    return both_bounds(empirical_error, len(features), num_classes, x_norm, b_norm, k, bits, m, delta)


def both_bounds(
    empirical: float, n: int, c: int, x_norm: float, b_norm: float, k: int, bits: int = 1, m: float = 1.0,
    delta: float = 0.05,
) -> dict[str, Any]:  # fmt: skip
    """Theorem 5.1's amortised bound and the linear-readout bound with their inputs, as one record."""
    count = descriptor_count(k, bits)
    return {
        "n": n, "c": c, "X": x_norm, "B": b_norm, "M": m, "delta": delta, "num_descriptors": count,
        "amortised": generalisation_bound(empirical, n, c, x_norm, b_norm, count, m, delta).as_dict(),
        "linear_readout": linear_readout_bound(empirical, n, c, x_norm, b_norm, m, delta).as_dict(),
    }  # fmt: skip
