"""Linear probes that reach the optimum of their convex problem, on cached features.

A probe is fitted on features standardised with the training split's mean and std (so one
regularisation grid fits every encoder and descriptor, whatever their feature scale):

- classification: multinomial logistic regression, ``mean CE + lam/2 * ||W||^2`` (bias not
  penalised), solved to tolerance with L-BFGS (strong Wolfe line search) in float64. It is the
  problem scikit-learn's ``LogisticRegression(C)`` solves, with ``C = 1 / (lam * n)``.
- regression: ridge, ``mean ||y - X W - b||^2 + lam * ||W||^2`` on standardised targets, in closed
  form (scikit-learn's ``Ridge(alpha = lam * n)``).

``fit_probe`` fits one probe per ``lam`` of a grid, from the strongest regularisation down (each
solve warm-starts the next), and keeps the one with the best validation score (ties: the more
regularised). ``ridge_loo_loss`` is the differentiable closed-form leave-one-out error of ridge
that the invariance search descends (and that few-shot episodes can use on their support set).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from amortinv.transfer.data import TaskData
from amortinv.transfer.metrics import classification_metrics, primary_score, regression_metrics
from amortinv.transfer.settings import LAMBDAS

__all__ = [
    "LAMBDAS",
    "LinearHead",
    "ProbeFit",
    "fit_linear",
    "fit_probe",
    "ridge_fit",
    "ridge_loo_loss",
    "ridge_gcv_loss",
    "predict",
    "score_outputs",
    "best_ridge_lambda",
]


@dataclass
class LinearHead:
    """``((feats - mean) / std) @ weight + bias``: logits, or regression outputs on the standardised scale.

    mean, std: (D,); weight: (D, O); bias: (O,). Stored in float64 on the CPU.
    """

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        """Outputs (N, O) for features (N, D), in float32."""
        x = (feats.detach().cpu().double() - self.mean) / self.std
        return (x @ self.weight + self.bias).float()

    @property
    def num_params(self) -> int:
        return self.weight.numel() + self.bias.numel()


@dataclass
class ProbeFit:
    """The selected probe: head, its ``lam`` and validation score, and the score of every ``lam`` tried."""

    head: LinearHead
    lam: float
    val_score: float
    val_scores: dict[float, float] = field(default_factory=dict)


def _standardise(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = feats.detach().cpu().double()
    mean, std = x.mean(dim=0), x.std(dim=0, unbiased=False)
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    return (x - mean) / std, mean, std


def ridge_fit(x: torch.Tensor, y: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge with an unpenalised intercept, ``mean ||y - x W - b||^2 + lam ||W||^2``, in closed form.

    x (N, D), y (N, O); returns weight (D, O) and bias (O,). Differentiable; solves the D x D
    (primal) or, when N < D, the N x N (dual, Woodbury) system.
    """
    n, d = x.shape
    xm, ym = x.mean(dim=0), y.mean(dim=0)
    xc, yc = x - xm, y - ym
    if n >= d:
        weight = torch.linalg.solve(xc.T @ xc + n * lam * torch.eye(d, dtype=x.dtype, device=x.device), xc.T @ yc)
    else:
        weight = xc.T @ torch.linalg.solve(xc @ xc.T + n * lam * torch.eye(n, dtype=x.dtype, device=x.device), yc)
    return weight, ym - xm @ weight


def _logistic(
    x: torch.Tensor, y: torch.Tensor, lam: float, num_classes: int, init: tuple | None, max_iter: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression by full-batch L-BFGS: weight (D, C), bias (C,)."""
    d = x.shape[1]
    w = (init[0].clone() if init else torch.zeros(d, num_classes, dtype=x.dtype)).requires_grad_(True)
    b = (init[1].clone() if init else torch.zeros(num_classes, dtype=x.dtype)).requires_grad_(True)
    opt = torch.optim.LBFGS(
        [w, b],
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        tolerance_grad=1e-6,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + 0.5 * lam * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def fit_linear(
    feats: torch.Tensor,
    targets: torch.Tensor,
    task: str,
    lam: float,
    num_outputs: int,
    *,
    init: LinearHead | None = None,
    max_iter: int = 300,
) -> LinearHead:
    """Solve the probe's convex problem (see the module docstring) on features (N, D).

    ``targets``: int labels (N,) for classification, standardised targets (N, O) for regression.
    """
    if lam <= 0:
        raise ValueError(f"the regularisation lam must be > 0, got {lam}")
    x, mean, std = _standardise(feats)
    if task == "classification":
        start = (init.weight, init.bias) if init is not None else None
        with torch.enable_grad():
            weight, bias = _logistic(x, targets.long().cpu(), lam, num_outputs, start, max_iter)
    else:
        weight, bias = ridge_fit(x, targets.detach().cpu().double().reshape(len(x), -1), lam)
    return LinearHead(mean, std, weight, bias)


def predict(head: LinearHead, feats: torch.Tensor, data: TaskData) -> torch.Tensor:
    """Head outputs on the task's scale: logits, or de-standardised regression predictions (N, O)."""
    out = head(feats)
    return out if data.task == "classification" else data.standardiser.inverse(out)


def score_outputs(out: torch.Tensor, y: torch.Tensor, data: TaskData) -> dict[str, float]:
    """The task's metrics over a whole split."""
    if data.task == "classification":
        return classification_metrics(out, y, data.num_classes)
    return regression_metrics(out, y)


def _train_targets(data: TaskData) -> torch.Tensor:
    y = data.train[1]
    return y if data.task == "classification" else data.standardiser.forward(y)


def fit_probe(
    train_feats: torch.Tensor, val_feats: torch.Tensor, data: TaskData, lams: Sequence[float] = LAMBDAS
) -> ProbeFit:
    """A probe per ``lam`` on train features (N, D); the best on validation features (M, D) is kept."""
    if len(train_feats) != len(data.train[1]) or len(val_feats) != len(data.val[1]):
        raise ValueError("cached features do not match the task's train / val splits")
    if not lams:
        raise ValueError("the regularisation grid is empty")
    y = _train_targets(data)
    best: ProbeFit | None = None
    scores: dict[float, float] = {}
    head = None
    for lam in sorted(lams, reverse=True):
        head = fit_linear(train_feats, y, data.task, lam, data.num_outputs, init=head)
        scores[lam] = primary_score(score_outputs(predict(head, val_feats, data), data.val[1], data))
        if best is None or scores[lam] > best.val_score:
            best = ProbeFit(head, lam, scores[lam])
    best.val_scores = scores
    return best


def _batch_standardise(feats: torch.Tensor) -> torch.Tensor:
    x = feats - feats.mean(dim=0)
    return x / (x.pow(2).mean(dim=0) + 1e-12).sqrt()


def _ridge_residuals(x: torch.Tensor, y: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """In-sample residuals (N, O) of ``ridge_fit`` and the leverages (N,) (intercept included)."""
    n, d = x.shape
    xc, yc = x - x.mean(dim=0), y - y.mean(dim=0)
    if n >= d:
        inv_xt = torch.linalg.solve(xc.T @ xc + n * lam * torch.eye(d, dtype=x.dtype, device=x.device), xc.T)  # (D, N)
        hat_y, leverage = xc @ (inv_xt @ yc), (xc * inv_xt.T).sum(dim=1)
    else:
        gram = xc @ xc.T
        smoother = torch.linalg.solve(
            gram + n * lam * torch.eye(n, dtype=x.dtype, device=x.device), gram
        )  # symmetric hat
        hat_y, leverage = smoother @ yc, smoother.diagonal()
    return yc - hat_y, leverage + 1.0 / n


def ridge_loo_loss(feats: torch.Tensor, targets: torch.Tensor, lam: float, standardise: bool = True) -> torch.Tensor:
    """Mean squared leave-one-out error of ``ridge_fit``, in closed form.

    feats (N, D) may carry gradients (the error is differentiable w.r.t. them), standardised over
    the batch unless ``standardise`` is False; targets (N, O), e.g. one-hot labels or standardised
    regression targets. The left-out residual of sample n is ``e_n / (1 - h_n)``, with ``h_n``
    its leverage (the intercept's ``1/N`` included).
    """
    x = _batch_standardise(feats) if standardise else feats
    resid, leverage = _ridge_residuals(x, targets, lam)
    return (resid / (1 - leverage).clamp_min(1e-6)[:, None]).pow(2).mean()


def ridge_gcv_loss(feats: torch.Tensor, targets: torch.Tensor, lam: float, standardise: bool = True) -> torch.Tensor:
    """Generalised cross-validation (Golub, Heath and Wahba 1979): the leave-one-out error with every
    leverage replaced by the mean leverage, ``mean(e^2) / (1 - mean(h))^2``. Unlike leave-one-out it
    stays informative with one example per class (leaving out a class's only example leaves
    nothing to predict it from)."""
    x = _batch_standardise(feats) if standardise else feats
    resid, leverage = _ridge_residuals(x, targets, lam)
    return resid.pow(2).mean() / (1 - leverage.mean()).clamp_min(1e-6) ** 2


def best_ridge_lambda(
    feats: torch.Tensor,
    targets: torch.Tensor,
    lams: Sequence[float] = LAMBDAS,
    objective: Callable = ridge_loo_loss,
    **kwargs: Any,
) -> float:
    """The ``lam`` of the grid with the smallest ``objective`` (leave-one-out error by default) on (feats, targets)."""
    with torch.no_grad():
        errors = {lam: float(objective(feats.double(), targets.double(), lam, **kwargs)) for lam in lams}
    return min(errors, key=errors.get)
