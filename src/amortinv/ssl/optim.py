"""Optimisers (AdamW, SGD, LARS), warm-up + cosine schedules and momentum (EMA) updates."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["LARS", "build_optimizer", "warmup_cosine", "momentum_schedule", "momentum_update", "param_groups"]


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise trust ratios (You et al. 2017), as used by SimCLR / MoCo-v3.

    Parameter groups with ``lars_exclude=True`` (biases, norms) get neither weight decay nor
    adaptation.
    """

    def __init__(
        self, params: Iterable, lr: float, weight_decay: float = 0.0, momentum: float = 0.9, eta: float = 0.001
    ) -> None:
        super().__init__(
            params, {"lr": lr, "weight_decay": weight_decay, "momentum": momentum, "eta": eta, "lars_exclude": False}
        )

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if not group["lars_exclude"]:
                    d = d.add(p, alpha=group["weight_decay"])
                    p_norm, d_norm = p.norm(), d.norm()
                    trust = torch.where(
                        (p_norm > 0) & (d_norm > 0), group["eta"] * p_norm / d_norm, torch.ones_like(p_norm)
                    )
                    d = d.mul(trust)
                state = self.state[p]
                buf = state.get("mu")
                if buf is None:
                    buf = state["mu"] = torch.zeros_like(p)
                buf.mul_(group["momentum"]).add_(d)
                p.add_(buf, alpha=-group["lr"])
        return loss


def param_groups(
    model: nn.Module, weight_decay: float, lr_gains: list[tuple[nn.Parameter, float]] | None = None
) -> list[dict]:
    """Weights with decay and biases / norm parameters (1-D) without it; a parameter given a
    gain in ``lr_gains`` goes into a group of its own whose ``lr_gain`` scales the learning rate."""
    gain_of = {id(p): g for p, g in (lr_gains or [])}
    groups: dict[tuple[bool, float], list] = {}
    for _, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault((p.ndim <= 1, gain_of.get(id(p), 1.0)), []).append(p)
    return [
        {"params": ps, "weight_decay": 0.0 if flat else weight_decay, "lars_exclude": flat, "lr_gain": gain}
        for (flat, gain), ps in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[0][1]))
    ]


def build_optimizer(
    name: str,
    model: nn.Module,
    lr: float,
    weight_decay: float,
    lr_gains: list[tuple[nn.Parameter, float]] | None = None,
) -> torch.optim.Optimizer:
    """``adamw`` (decoupled weight decay, fused when supported), ``sgd`` (momentum 0.9) or ``lars``;
    each group's learning rate is ``lr * lr_gain`` (see ``param_groups``)."""
    groups = param_groups(model, weight_decay, lr_gains)
    for g in groups:
        g["lr"] = lr * g["lr_gain"]
    if name in ("adamw", "sgd"):
        for g in groups:
            g.pop("lars_exclude", None)
    if name == "adamw":
        fused = all(p.device.type in ("cpu", "cuda") for g in groups for p in g["params"])
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, fused=fused)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if name == "lars":
        return LARS(groups, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer '{name}'; choose from adamw, sgd, lars")


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, final_ratio: float = 0.0) -> float:
    """Learning-rate multiplier: linear warm-up from 0 to 1, then cosine decay to ``final_ratio``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def momentum_schedule(step: int, total_steps: int, base: float) -> float:
    """MoCo-v3's momentum: cosine from ``base`` at step 0 to 1 at the last step."""
    return 1 - (1 - base) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / max(1, total_steps))))


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, m: float) -> None:
    """``target = m * target + (1 - m) * online`` for parameters; buffers are copied."""
    for po, pt in zip(online.parameters(), target.parameters()):
        pt.mul_(m).add_(po.detach(), alpha=1 - m)
    for bo, bt in zip(online.buffers(), target.buffers()):
        bt.copy_(bo)
