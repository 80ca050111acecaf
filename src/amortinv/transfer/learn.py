"""Learning a linear head and the task's invariance descriptor ``i`` on a frozen encoder (SPEC 5).

The encoder stays in eval mode with frozen weights. ``i`` starts at ``init`` (0.5) in every
coordinate, is a raw parameter with its own Adam (lr 0.01, no weight decay) and is clamped to
[0, 1] after every step; the head has its own Adam with weight decay; both follow a cosine
decay. After every epoch the model is scored on the validation split and the best epoch's head
and ``i`` are kept (we keep the selected model rather than refitting on train + val).

Two exact ways to get the gradient for ``i``:

- ``backprop``: ordinary reverse mode through the backbone (stores all activations).
- ``forward``: forward-mode differentiation w.r.t. the K-dim ``i``: K dual-number passes give
  the features and their K tangents without storing activations; the head's gradient w.r.t.
  the features (cheap) then gives ``dL/di_k = <dL/dF, dF/di_k>``. Same gradient, far less memory.

A linear probe at a fixed ``i`` trains the same head on cached features (``fit_probe``).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from amortinv.encoders.base import Encoder
from amortinv.transfer.data import TaskData, encode, prepare_batch
from amortinv.transfer.metrics import classification_metrics, primary_score, regression_metrics

__all__ = [
    "FitResult", "learn_invariance", "fit_probe", "features_and_tangents", "task_loss", "score_outputs", "predict",
    "train_loop", "new_head",
]


@dataclass
class FitResult:
    """The selected model: head, descriptor (None for plain probes), epoch and validation score."""

    head: nn.Sequential
    i: torch.Tensor | None
    best_epoch: int
    val_score: float
    lr: float = 0.0
    weight_decay: float = 0.0
    history: list[dict] = field(default_factory=list)


def task_loss(out: torch.Tensor, y: torch.Tensor, data: TaskData, loss: str = "mse") -> torch.Tensor:
    """Cross-entropy for classification; MSE or L1 on standardised targets for regression."""
    if data.task == "classification":
        return F.cross_entropy(out, y)
    target = data.standardiser.forward(y)
    return F.mse_loss(out, target) if loss == "mse" else F.l1_loss(out, target)


def predict(head: nn.Sequential, feats: torch.Tensor, data: TaskData) -> torch.Tensor:
    """Head outputs on the task's scale: logits, or de-standardised regression predictions."""
    was_training = head.training
    linear = head[-1]
    with torch.no_grad():
        out = head.eval()(feats.to(linear.weight.device, linear.weight.dtype)).float().cpu()
    head.train(was_training)
    return out if data.task == "classification" else data.standardiser.inverse(out)


def score_outputs(out: torch.Tensor, y: torch.Tensor, data: TaskData) -> dict[str, float]:
    """The task's metrics over a whole split."""
    if data.task == "classification":
        return classification_metrics(out, y, data.num_classes)
    return regression_metrics(out, y)


def features_and_tangents(encoder: Encoder, x: torch.Tensor, i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Features F (B, D) at ``i`` and their derivatives dF/di_k (K, B, D), by K forward-mode passes."""
    k = i.numel()
    tangents = []
    primal = None
    # the math attention kernel is the one with forward-mode derivatives (Prompt-ViT)
    with torch.no_grad(), sdpa_kernel([SDPBackend.MATH]):
        for j in range(k):
            direction = torch.zeros_like(i)
            direction[j] = 1.0
            with fwAD.dual_level():
                out = encoder(x, fwAD.make_dual(i, direction))
                primal, tangent = fwAD.unpack_dual(out)
            tangents.append(tangent)
    return primal, torch.stack(tangents)


def _cosine(step: int, total: int) -> float:
    return 0.5 * (1 + math.cos(math.pi * min(1.0, step / max(1, total))))


def _frozen(encoder: Encoder) -> Encoder:
    encoder.eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder


def _adam_cosine(params: list, lr: float, weight_decay: float, total: int) -> tuple:
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _cosine(s, total))


def train_loop(
    data: TaskData, head: nn.Sequential, param_groups: list[tuple[list, float, float]], batch_step: Callable,
    val_scores: Callable, *, epochs: int, batch_size: int, seed: int, i: torch.Tensor | None = None,
    on_best: Callable[[], None] | None = None, time_budget_s: float | None = None,
) -> FitResult:
    """The shared epoch loop: one Adam + cosine decay per ``(params, lr, weight_decay)`` group,
    ``i`` clamped to [0, 1] after each step, best-on-validation selection after each epoch, and
    an optional wall-clock budget (checked after every step)."""
    n = len(data.train[0])
    steps_per_epoch = max(1, n // batch_size)
    total = epochs * steps_per_epoch
    opts = [_adam_cosine(p, lr, wd, total) for p, lr, wd in param_groups]
    gen = torch.Generator().manual_seed(seed)
    best = FitResult(copy.deepcopy(head), None if i is None else i.detach().clone(), -1, -math.inf,
                     param_groups[0][1], param_groups[0][2])
    start = time.perf_counter()
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen)
        losses = []
        for s in range(steps_per_epoch):
            for o, _ in opts:
                o.zero_grad(set_to_none=True)
            losses.append(batch_step(head, perm[s * batch_size : (s + 1) * batch_size]))
            for o, sched in opts:
                o.step()
                sched.step()
            if i is not None:
                with torch.no_grad():
                    i.clamp_(0.0, 1.0)
            if time_budget_s is not None and time.perf_counter() - start > time_budget_s:
                break
        score = val_scores(head)
        best.history.append({"epoch": epoch, "train_loss": sum(losses) / len(losses), "val_score": score,
                             **({"i": [round(v, 4) for v in i.tolist()]} if i is not None else {})})
        if score > best.val_score:
            best.head, best.best_epoch, best.val_score = copy.deepcopy(head), epoch, score
            best.i = None if i is None else i.detach().clone()
            if on_best is not None:
                on_best()
        if time_budget_s is not None and time.perf_counter() - start > time_budget_s:
            break
    return best


def new_head(feat_dim: int, data: TaskData, device: torch.device, seed: int) -> nn.Sequential:
    """A linear head behind a parameter-free BatchNorm (feature standardisation, as in MoCo-v3's
    linear probe): features of different encoders and descriptors differ in scale by orders of
    magnitude, and one learning-rate grid should fit them all. It adds no trainable parameter."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.BatchNorm1d(feat_dim, affine=False), nn.Linear(feat_dim, data.num_outputs)).to(device)


def learn_invariance(
    encoder: Encoder, data: TaskData, *, lr: float = 1e-3, weight_decay: float = 1e-4, lr_i: float = 0.01,
    epochs: int = 10, batch_size: int = 256, gradient: str = "backprop", init: float = 0.5, loss: str = "mse",
    size: tuple[int, int] | None = None, device: str | torch.device = "cpu", seed: int = 0, chunk_size: int = 64,
    warm_start_epochs: int = 0,
) -> FitResult:
    """Jointly learn a linear head and ``i`` on a frozen conditioned encoder; see the module docstring.

    Args:
        encoder: a conditioned encoder (Hyper-ResNet or Prompt-ViT).
        data: the task (uint8 images and targets, train / val / test).
        gradient: ``backprop`` or ``forward`` (forward-mode, no stored activations).
        warm_start_epochs: first fit the head alone for this many epochs on cached features at the
            initial ``i`` (cheap: one feature pass), then learn head and ``i`` jointly.
        chunk_size: with ``forward``, the dual passes run on chunks of this many images; only the
            chunks' features and tangents are kept, so the gradient is the same for any chunk size
            and the peak memory follows the chunk, not the batch.
        size: input side fed to the encoder (default: the images' own).
    Returns:
        The best epoch's head and ``i`` by validation score.
    """
    if not encoder.conditioned:
        raise ValueError("learning i needs a conditioned encoder (hyper_resnet*, prompt_vit_*); use fit_probe for plain ones")
    if gradient not in ("backprop", "forward"):
        raise ValueError(f"gradient must be 'backprop' or 'forward', got '{gradient}'")
    if not 0 <= init <= 1:
        raise ValueError(f"initial descriptor value must lie in [0, 1], got {init}")
    device = torch.device(device)
    encoder = _frozen(encoder.to(device))
    size = size or tuple(data.train[0].shape[-2:])
    x_train, y_train = data.train
    dtype = next(encoder.parameters()).dtype
    i = torch.full((encoder.invariance_dim,), float(init), device=device, dtype=dtype, requires_grad=True)

    def batch_step(head: nn.Sequential, idx: torch.Tensor) -> float:
        x = prepare_batch(encoder, x_train[idx], size, device)
        y = y_train[idx].to(device)
        if gradient == "backprop":
            loss_value = task_loss(head(encoder(x, i)), y, data, loss)
            loss_value.backward()
        else:
            parts = [features_and_tangents(encoder, x[c : c + chunk_size], i.detach()) for c in range(0, len(x), chunk_size)]
            feats = torch.cat([f for f, _ in parts])
            tangents = torch.cat([t for _, t in parts], dim=1)
            feats.requires_grad_(True)
            loss_value = task_loss(head(feats), y, data, loss)
            loss_value.backward()
            i.grad = torch.einsum("bd,kbd->k", feats.grad, tangents)
        return float(loss_value.detach())

    def val_scores(head: nn.Sequential) -> float:
        feats = encode(encoder, data.val[0], i.detach(), size=size, batch_size=batch_size, device=device)
        return primary_score(score_outputs(predict(head, feats, data), data.val[1], data))

    head = new_head(encoder.feature_dim, data, device, seed)
    if warm_start_epochs > 0:
        cached = [encode(encoder, split[0], i.detach(), size=size, batch_size=batch_size, device=device) for split in (data.train, data.val)]
        head = fit_probe(*cached, data, lr=lr, weight_decay=weight_decay, epochs=warm_start_epochs, batch_size=batch_size,
                         loss=loss, device=device, seed=seed).head.train()
    groups = [(list(head.parameters()), lr, weight_decay), ([i], lr_i, 0.0)]
    return train_loop(data, head, groups, batch_step, val_scores, epochs=epochs, batch_size=batch_size, seed=seed, i=i)


def fit_probe(
    train_feats: torch.Tensor, val_feats: torch.Tensor, data: TaskData, *, lr: float = 1e-3, weight_decay: float = 1e-4,
    epochs: int = 30, batch_size: int = 256, loss: str = "mse", device: str | torch.device = "cpu", seed: int = 0,
) -> FitResult:
    """A linear head on cached features (N, D) of the train and val splits (a fixed-``i`` probe)."""
    device = torch.device(device)
    y_train = data.train[1]
    if len(train_feats) != len(y_train) or len(val_feats) != len(data.val[1]):
        raise ValueError("cached features do not match the task's train / val splits")
    train_feats = train_feats.to(device)

    def batch_step(head: nn.Sequential, idx: torch.Tensor) -> float:
        loss_value = task_loss(head(train_feats[idx]), y_train[idx].to(device), data, loss)
        loss_value.backward()
        return float(loss_value.detach())

    def val_scores(head: nn.Sequential) -> float:
        return primary_score(score_outputs(predict(head, val_feats, data), data.val[1], data))

    head = new_head(train_feats.shape[1], data, device, seed)
    return train_loop(data, head, [(list(head.parameters()), lr, weight_decay)], batch_step, val_scores,
                      epochs=epochs, batch_size=batch_size, seed=seed)
