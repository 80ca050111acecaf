"""Fine-tuning baselines: train the last n stages (or all) of the encoder with a linear head.

The descriptor stays fixed (all ones by default, the default recipe's invariances). With
``time_budget_s`` training stops once that much wall-clock time has passed (the paper's
time-constrained FT-* baselines use the invariance learner's time).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from amortinv.encoders.base import Encoder
from amortinv.transfer.data import TaskData, encode, prepare_batch
from amortinv.transfer.learn import FitResult, new_head, predict, score_outputs, task_loss, train_loop
from amortinv.transfer.metrics import primary_score

__all__ = ["finetune", "trainable_modules"]


def trainable_modules(encoder: Encoder, stages: int) -> list[nn.Module]:
    """The last ``stages`` stages of the encoder (0 = the whole encoder)."""
    if stages == 0:
        return [encoder]
    all_stages = list(encoder.stages())
    if not 1 <= stages <= len(all_stages):
        raise ValueError(f"stages must be 0 (all) or 1..{len(all_stages)}, got {stages}")
    return all_stages[-stages:]


def finetune(
    encoder: Encoder, data: TaskData, *, stages: int = 0, i: torch.Tensor | None = None, lr: float = 1e-3,
    encoder_lr: float | None = None, weight_decay: float = 1e-4, epochs: int = 10, batch_size: int = 256,
    loss: str = "mse", time_budget_s: float | None = None, size: tuple[int, int] | None = None,
    device: str | torch.device = "cpu", seed: int = 0,
) -> tuple[FitResult, Encoder]:
    """Fine-tune a copy of ``encoder``'s last ``stages`` stages (0 = all) with a linear head.

    Returns:
        The best-on-validation head (``FitResult``) and the matching fine-tuned encoder copy.
    """
    device = torch.device(device)
    model = copy.deepcopy(encoder).to(device)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    parts = trainable_modules(model, stages)
    params = []
    for part in parts:
        part.train()
        for p in part.parameters():
            p.requires_grad_(True)
            params.append(p)
    if i is None and model.conditioned:
        i = torch.ones(model.invariance_dim)
    i_dev = None if i is None or not model.conditioned else torch.as_tensor(i, dtype=torch.float32, device=device)
    size = size or tuple(data.train[0].shape[-2:])
    x_train, y_train = data.train

    def batch_step(head: nn.Sequential, idx: torch.Tensor) -> float:
        x = prepare_batch(model, x_train[idx], size, device)
        loss_value = task_loss(head(model(x, i_dev)), y_train[idx].to(device), data, loss)
        loss_value.backward()
        return float(loss_value.detach())

    def val_scores(head: nn.Sequential) -> float:
        model.eval()
        feats = encode(model, data.val[0], i_dev, size=size, batch_size=batch_size, device=device)
        for part in parts:
            part.train()
        return primary_score(score_outputs(predict(head, feats, data), data.val[1], data))

    best_state: dict[str, torch.Tensor] = {}

    def keep_encoder() -> None:
        best_state.clear()
        best_state.update({k: v.detach().clone() for k, v in model.state_dict().items()})

    head = new_head(model.feature_dim, data, device, seed)
    groups = [(list(head.parameters()), lr, weight_decay), (params, encoder_lr or lr, weight_decay)]
    result = train_loop(data, head, groups, batch_step, val_scores, epochs=epochs, batch_size=batch_size, seed=seed,
                        on_best=keep_encoder, time_budget_s=time_budget_s)
    if best_state:
        model.load_state_dict(best_state)
    result.i = None if i_dev is None else i_dev.detach().cpu()
    return result, model.eval()
