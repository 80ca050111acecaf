"""Few-shot heads with one interface: ``head.fit(support_feats, support_labels, ways)`` returns a
predictor ``query_feats (Q, D) -> logits (Q, ways)``.

- ``RidgeHead``: closed-form ridge regression onto one-hot targets (the paper's few-shot head,
  Appendix A.2), on L2-normalised features with an intercept; the dual (Woodbury) form is used
  when N*K < D. ``lam="auto"`` chooses it from ``lams`` (the one grid, ``amortinv.transfer.settings.LAMBDAS``)
  per episode on the support set alone: by the closed-form leave-one-out error for K >= 2, by generalised
  cross-validation for 1-shot (see ``support_objective``). Differentiable, so ``i`` can be learned through it.
- ``PrototypeHead``: nearest class centroid by cosine similarity.
- ``LogisticHead``: multinomial logistic regression on standardised frozen features (the usual
  SSL few-shot baseline), L-BFGS to the optimum, ``lam = 1 / (C * N * K)`` with scikit-learn's
  default ``C = 1``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from amortinv.transfer.probe import fit_linear, ridge_fit, ridge_gcv_loss, ridge_loo_loss
from amortinv.transfer.settings import LAMBDAS

__all__ = ["RidgeHead", "PrototypeHead", "LogisticHead", "HEADS", "support_objective"]

Predictor = Callable[[torch.Tensor], torch.Tensor]


def _l2(feats: torch.Tensor) -> torch.Tensor:
    return F.normalize(feats.double(), dim=1)


def support_objective(shots: int) -> Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]:
    """The support-only objective of ridge on L2-normalised features (lower is better).

    K >= 2: the closed-form leave-one-out error. 1-shot: leaving out a class's only example leaves
    nothing to predict it from, so every descriptor scores alike; generalised cross-validation
    (leave-one-out with the mean leverage) is the objective offered instead: it rewards
    descriptors whose support features a ridge fit of a given smoothness explains with few
    effective parameters, i.e. that spread the support images apart. Measured on the demo (4-way,
    300 episodes) that is harmful: with one image per class, features sensitive to a nuisance
    (colour) spread any support set apart, so the search moved to appearance sensitivity in 99%
    of episodes and scored 0.254 vs 0.317 at all ones. So 1-shot episodes keep the default
    descriptor unless asked (``FewShotSettings.one_shot = "gcv"``); GCV still chooses ``lam``.
    """
    base = ridge_loo_loss if shots >= 2 else ridge_gcv_loss
    return lambda feats, onehot, lam: base(_l2(feats), onehot, lam, standardise=False)


@dataclass(frozen=True)
class RidgeHead:
    """Ridge onto one-hot targets; ``lam`` a number or ``"auto"`` (chosen on the support set)."""

    lam: float | str = "auto"
    lams: Sequence[float] = LAMBDAS
    name: str = "ridge"

    def choose_lam(self, feats: torch.Tensor, onehot: torch.Tensor, shots: int) -> float:
        if self.lam != "auto":
            return float(self.lam)
        objective = support_objective(shots)
        with torch.no_grad():
            errors = {lam: float(objective(feats, onehot, lam)) for lam in self.lams}
        return min(errors, key=errors.get)

    def fit(self, feats: torch.Tensor, labels: torch.Tensor, ways: int) -> Predictor:
        onehot = F.one_hot(labels, ways).double()
        shots = len(labels) // ways
        weight, bias = ridge_fit(_l2(feats), onehot, self.choose_lam(feats, onehot, shots))
        return lambda q: _l2(q) @ weight + bias


@dataclass(frozen=True)
class PrototypeHead:
    """Cosine similarity to each class's mean L2-normalised support feature."""

    name: str = "prototype"

    def fit(self, feats: torch.Tensor, labels: torch.Tensor, ways: int) -> Predictor:
        centroids = torch.stack([_l2(feats)[labels == c].mean(dim=0) for c in range(ways)])
        return lambda q: _l2(q) @ F.normalize(centroids, dim=1).T


@dataclass(frozen=True)
class LogisticHead:
    """Multinomial logistic regression on support-standardised features, ``C`` as in scikit-learn."""

    c: float = 1.0
    name: str = "logistic"

    def fit(self, feats: torch.Tensor, labels: torch.Tensor, ways: int) -> Predictor:
        head = fit_linear(feats, labels, "classification", 1.0 / (self.c * len(labels)), ways)
        return lambda q: head(q)


HEADS: dict[str, Callable[[Sequence[float]], object]] = {
    "ridge": lambda lams: RidgeHead(lams=tuple(lams)),
    "prototype": lambda lams: PrototypeHead(),
    "logistic": lambda lams: LogisticHead(),
}
"""Each head built from the regularisation grid (only the ridge head searches one)."""
