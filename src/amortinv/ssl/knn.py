"""Weighted k-nearest-neighbour accuracy of frozen features (the usual SSL monitor)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from amortinv.encoders.base import Encoder
from amortinv.features import frozen_features

__all__ = ["extract_features", "knn_predict", "knn_accuracy"]


def extract_features(
    encoder: Encoder,
    dataset: Dataset,
    augment: nn.Module,
    descriptor: Any,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised features (N, D) of the un-augmented inputs (``augment.eval_input``) and their labels (N,)."""
    labels: list[torch.Tensor] = []

    def inputs() -> Iterator[torch.Tensor]:
        for images, y in DataLoader(dataset, batch_size=batch_size):
            labels.append(torch.as_tensor(y))
            yield images

    feats = frozen_features(encoder, inputs(), descriptor, device=device, prepare=augment.eval_input, normalise=True)
    return feats, torch.cat(labels)


def knn_predict(
    queries: torch.Tensor,
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    num_classes: int,
    k: int = 200,
    temperature: float = 0.1,
    chunk: int = 1024,
) -> torch.Tensor:
    """Class predictions (N,) by similarity-weighted voting of the k nearest bank features.

    Args:
        queries: normalised (N, D); bank: normalised (M, D); bank_labels: (M,) integers.
    """
    k = min(k, len(bank))
    preds = []
    for start in range(0, len(queries), chunk):
        sim = queries[start : start + chunk] @ bank.T
        top_sim, top_idx = sim.topk(k, dim=1)
        weights = (top_sim / temperature).exp()
        votes = torch.zeros(len(sim), num_classes).scatter_add_(1, bank_labels[top_idx], weights)
        preds.append(votes.argmax(1))
    return torch.cat(preds)


def knn_accuracy(
    encoder: Encoder,
    train: Dataset,
    test: Dataset,
    augment: nn.Module,
    descriptor: Any,
    k: int = 200,
    temperature: float = 0.1,
    device: str | torch.device = "cpu",
    batch_size: int = 512,
) -> float:
    """Top-1 accuracy (in [0, 1]) of weighted kNN on ``test`` with ``train`` as the memory bank."""
    bank, bank_labels = extract_features(encoder, train, augment, descriptor, batch_size, device)
    queries, labels = extract_features(encoder, test, augment, descriptor, batch_size, device)
    num_classes = int(max(bank_labels.max(), labels.max())) + 1
    preds = knn_predict(queries, bank, bank_labels, num_classes, k, temperature)
    return float((preds == labels).float().mean())
