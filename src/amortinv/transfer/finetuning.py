"""Fine-tuning baselines: train the last n stages (or all) of the encoder with a linear head.

The descriptor stays fixed (all ones by default, the default recipe's invariances). The head
is a linear layer behind a parameter-free BatchNorm (feature standardisation); encoder and head
each have an Adam with cosine decay; after every epoch the model is scored on validation and the
best epoch is kept. With ``time_budget_s`` training stops once that much wall-clock time has
passed (the paper's time-constrained FT-* baselines use the invariance learner's time).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from amortinv.encoders.base import Encoder
from amortinv.features import frozen_features
from amortinv.transfer.data import TaskData, prepare_batch
from amortinv.transfer.metrics import primary_score
from amortinv.transfer.probe import LinearHead, predict, score_outputs

__all__ = ["finetune", "trainable_modules", "FinetuneFit"]


@dataclass
class FinetuneFit:
    """The selected epoch's head (as a ``LinearHead``), its validation score and hyper-parameters."""

    head: LinearHead
    best_epoch: int
    val_score: float
    lr: float
    weight_decay: float


def trainable_modules(encoder: Encoder, stages: int) -> list[nn.Module]:
    """The last ``stages`` stages of the encoder (0 = the whole encoder)."""
    if stages == 0:
        return [encoder]
    all_stages = list(encoder.stages())
    if not 1 <= stages <= len(all_stages):
        raise ValueError(f"stages must be 0 (all) or 1..{len(all_stages)}, got {stages}")
    return all_stages[-stages:]


def _task_loss(out: torch.Tensor, y: torch.Tensor, data: TaskData, loss: str) -> torch.Tensor:
    """Cross-entropy for classification; MSE or L1 on standardised targets for regression."""
    if data.task == "classification":
        return F.cross_entropy(out, y)
    target = data.standardiser.forward(y)
    return F.mse_loss(out, target) if loss == "mse" else F.l1_loss(out, target)


def _as_linear_head(head: nn.Sequential) -> LinearHead:
    """The BatchNorm(affine=False) + Linear head in eval mode, as a ``LinearHead``."""
    bn, linear = head[0], head[1]
    return LinearHead(
        bn.running_mean.detach().cpu().double(),
        (bn.running_var + bn.eps).sqrt().detach().cpu().double(),
        linear.weight.detach().cpu().double().T.contiguous(),
        linear.bias.detach().cpu().double(),
    )


def _cosine_adam(params: list, lr: float, weight_decay: float, total: int) -> tuple:
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    decay = lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, total))))  # noqa: E731
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, decay)


def _train(
    n: int,
    groups: list[tuple[list, float, float]],
    batch_step: Callable[[torch.Tensor], None],
    on_epoch: Callable[[int], None],
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    time_budget_s: float | None,
) -> None:
    """Epochs of shuffled minibatch steps over ``n`` examples, ``on_epoch`` after each; stops at the budget."""
    steps_per_epoch = max(1, n // batch_size)
    opts = [_cosine_adam(p, lr, wd, epochs * steps_per_epoch) for p, lr, wd in groups]
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for s in range(steps_per_epoch):
            for o, _ in opts:
                o.zero_grad(set_to_none=True)
            batch_step(perm[s * batch_size : (s + 1) * batch_size])
            for o, sched in opts:
                o.step()
                sched.step()
            if time_budget_s is not None and time.perf_counter() - start > time_budget_s:
                break
        on_epoch(epoch)
        if time_budget_s is not None and time.perf_counter() - start > time_budget_s:
            return


def finetune(
    encoder: Encoder,
    data: TaskData,
    *,
    stages: int = 0,
    i: torch.Tensor | None = None,
    lr: float = 1e-3,
    encoder_lr: float | None = None,
    weight_decay: float = 1e-4,
    epochs: int = 10,
    batch_size: int = 256,
    loss: str = "mse",
    time_budget_s: float | None = None,
    size: tuple[int, int] | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> tuple[FinetuneFit, Encoder]:
    """Fine-tune a copy of ``encoder``'s last ``stages`` stages (0 = all) with a linear head.

    Returns:
        The best-on-validation head and the matching fine-tuned encoder copy (eval mode).
    """
    if epochs < 1:
        raise ValueError(f"fine-tuning needs epochs >= 1, got {epochs}")
    device = torch.device(device)
    model = copy.deepcopy(encoder).to(device).eval().requires_grad_(False)
    parts = trainable_modules(model, stages)
    params = [p for part in parts for p in part.parameters()]
    for p in params:
        p.requires_grad_(True)
    if i is None and model.conditioned:
        i = torch.ones(model.invariance_dim)
    i_dev = None if i is None or not model.conditioned else torch.as_tensor(i, dtype=torch.float32, device=device)
    size = size or tuple(data.train[0].shape[-2:])
    x_train, y_train = data.train
    torch.manual_seed(seed)
    head = nn.Sequential(
        nn.BatchNorm1d(model.feature_dim, affine=False), nn.Linear(model.feature_dim, data.num_outputs)
    ).to(device)

    def batch_step(idx: torch.Tensor) -> None:
        for part in parts:
            part.train()
        head.train()
        x = prepare_batch(model, x_train[idx], size, device)
        _task_loss(head(model(x, i_dev)), y_train[idx].to(device), data, loss).backward()

    best = FinetuneFit(_as_linear_head(head), -1, -math.inf, lr, weight_decay)
    best_state: dict[str, torch.Tensor] = {}

    def on_epoch(epoch: int) -> None:
        model.eval()
        linear = _as_linear_head(head.eval())
        feats = frozen_features(model, data.val[0], i_dev, size=size, batch_size=batch_size, device=device)
        score = primary_score(score_outputs(predict(linear, feats, data), data.val[1], data))
        if score > best.val_score:
            best.head, best.best_epoch, best.val_score = linear, epoch, score
            best_state.clear()
            best_state.update({k: v.detach().clone() for k, v in model.state_dict().items()})

    groups = [(list(head.parameters()), lr, weight_decay), (params, encoder_lr or lr, weight_decay)]
    _train(
        len(x_train),
        groups,
        batch_step,
        on_epoch,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        time_budget_s=time_budget_s,
    )
    if best_state:
        model.load_state_dict(best_state)
    return best, model.eval()
