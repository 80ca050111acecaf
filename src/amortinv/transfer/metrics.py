"""Downstream metrics over a whole test set (never averaged per batch), via torchmetrics."""

from __future__ import annotations

import torch
from torchmetrics.functional.classification import multiclass_accuracy
from torchmetrics.functional.regression import r2_score

__all__ = ["classification_metrics", "regression_metrics", "r2_uniform", "r2_pooled", "primary_score"]


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Top-1 accuracy and mean per-class accuracy, each over the whole set. logits (N, C), labels (N,)."""
    preds = logits.argmax(dim=1)
    return {
        "top1": float(multiclass_accuracy(preds, labels, num_classes=num_classes, average="micro")),
        "mean_per_class": float(multiclass_accuracy(preds, labels, num_classes=num_classes, average="macro")),
    }


def r2_uniform(pred: torch.Tensor, target: torch.Tensor) -> float:
    """R^2 per output dimension, averaged uniformly (sklearn's default). pred, target (N, D)."""
    pred, target = pred.reshape(len(pred), -1).double(), target.reshape(len(target), -1).double()
    if target.shape[1] == 1:
        return float(r2_score(pred[:, 0], target[:, 0]))
    return float(r2_score(pred, target, multioutput="uniform_average"))


def r2_pooled(pred: torch.Tensor, target: torch.Tensor) -> float:
    """The paper code's variant: one R^2 over all coordinates pooled together (inflates scores)."""
    return float(r2_score(pred.double().flatten(), target.double().flatten()))


def regression_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """``r2`` (uniform average over outputs) and ``r2_pooled_reference`` (labelled as the reference's)."""
    return {"r2": r2_uniform(pred, target), "r2_pooled_reference": r2_pooled(pred, target)}


def primary_score(metrics: dict[str, float]) -> float:
    """The score that selection maximises: top-1 accuracy or uniform R^2."""
    return metrics["top1"] if "top1" in metrics else metrics["r2"]
