"""Learning a task's invariance descriptor ``i`` on a frozen conditioned encoder (SPEC 5).

The encoder stays in eval mode with frozen weights. The search has three parts:

1. **Start** at the best of the candidate descriptors (all ones and each training descriptor)
   by the validation score of their convex probes (``amortinv.transfer.probe``), or at a given
   point (the paper starts at 0.5 in every coordinate).
2. **Descend** by projected gradient (Adam on ``i``, clamped to [0, 1] after each step) a
   training-only objective: the closed-form leave-one-out error of ridge regression on the
   features at ``i`` of a training minibatch (one-hot targets for classification, standardised
   targets for regression). The head is re-solved at every step, so the gradient is that of the
   best head at ``i``; a head trained jointly with ``i`` is tuned to the current features and
   anchors ``i`` at its start. Its ``lam`` is the leave-one-out choice at the start. (At a corner
   where the encoder has removed a factor's information completely, the gain of restoring a
   little of it is second order and the gradient vanishes; trained encoders keep residual
   information, and the selection below guards against a search that does not move.)
3. **Select** on validation: a convex probe is fitted at points along the path (every
   ``eval_every`` steps and the last); the best of the start and those points is kept, so the
   learned ``i`` never scores below the start (hence the best candidate) on validation.

Two exact ways to get the gradient for ``i``:

- ``backprop``: ordinary reverse mode through the backbone (stores all activations).
- ``forward``: forward-mode differentiation w.r.t. the K-dim ``i``: K dual-number passes give
  the features and their K tangents without storing activations; the objective's gradient
  w.r.t. the features (cheap) then gives ``dL/di_k = <dL/dF, dF/di_k>``. Same gradient, far
  less memory; passes run in chunks of ``chunk_size`` images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from amortinv.encoders.base import Encoder
from amortinv.features import evaluating
from amortinv.transfer.data import TaskData, prepare_batch
from amortinv.transfer.probe import ProbeFit, best_ridge_lambda, ridge_loo_loss
from amortinv.transfer.settings import LAMBDAS, SearchSettings

__all__ = [
    "InvarianceFit",
    "DescriptorParameter",
    "search_invariance",
    "features_and_tangents",
    "encode_with_tangents",
    "objective_targets",
    "descriptor_gradient",
]


@dataclass
class InvarianceFit:
    """The selected descriptor and its probe, the start, and the path with its scores."""

    i: torch.Tensor
    probe: ProbeFit
    start: torch.Tensor
    selected_step: int
    path: list[dict] = field(default_factory=list)


class DescriptorParameter:
    """A descriptor in [0, 1]^K learned by Adam, projected (clamped) onto the box after each step."""

    def __init__(self, start: torch.Tensor, lr: float) -> None:
        self.value = start.detach().clone().clamp(0, 1).requires_grad_(True)
        self.opt = torch.optim.Adam([self.value], lr=lr)

    def step(self, grad: torch.Tensor) -> None:
        """One Adam step along ``-grad`` (K,), then the projection."""
        self.opt.zero_grad(set_to_none=True)
        self.value.grad = grad.to(self.value)
        self.opt.step()
        with torch.no_grad():
            self.value.clamp_(0.0, 1.0)

    def current(self) -> torch.Tensor:
        return self.value.detach().clone()


def features_and_tangents(encoder: Encoder, x: torch.Tensor, i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Features F (B, D) at ``i`` and their derivatives dF/di_k (K, B, D), by K forward-mode passes."""
    tangents = []
    primal = None
    # the math attention kernel is the one with forward-mode derivatives (Prompt-ViT)
    with torch.no_grad(), sdpa_kernel([SDPBackend.MATH]):
        for j in range(i.numel()):
            direction = torch.zeros_like(i)
            direction[j] = 1.0
            with fwAD.dual_level():
                primal, tangent = fwAD.unpack_dual(encoder(x, fwAD.make_dual(i, direction)))
            tangents.append(tangent)
    return primal, torch.stack(tangents)


def encode_with_tangents(
    encoder: Encoder,
    images: torch.Tensor,
    i: torch.Tensor,
    *,
    size: tuple[int, int],
    batch_size: int = 128,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, D) of raw inputs (images or waveforms) at ``i`` and their Jacobian dF/di (K, N, D), on the CPU in float32."""
    device = torch.device(device)
    feats, tangents = [], []
    with evaluating(encoder):
        for s in range(0, len(images), batch_size):
            f, t = features_and_tangents(
                encoder, prepare_batch(encoder, images[s : s + batch_size], size, device), i.to(device)
            )
            feats.append(f.float().cpu())
            tangents.append(t.float().cpu())
    return torch.cat(feats), torch.cat(tangents, dim=1)


def objective_targets(data: TaskData, y: torch.Tensor) -> torch.Tensor:
    """Targets of the ridge objective: one-hot labels (N, C) or standardised regression targets (N, O)."""
    if data.task == "classification":
        return F.one_hot(y.long(), data.num_classes).double()
    return data.standardiser.forward(y).double()


def descriptor_gradient(
    encoder: Encoder,
    x: torch.Tensor,
    i: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
    gradient: str = "forward",
    chunk_size: int = 64,
) -> tuple[float, torch.Tensor]:
    """``objective(features(x, i))`` and its gradient w.r.t. ``i`` (K,), by backprop or forward mode."""
    if gradient == "backprop":
        i_var = i.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            value = objective(encoder(x, i_var).double())
            (grad,) = torch.autograd.grad(value, i_var)
        return float(value.detach()), grad
    parts = [features_and_tangents(encoder, x[c : c + chunk_size], i.detach()) for c in range(0, len(x), chunk_size)]
    feats = torch.cat([f for f, _ in parts]).double().requires_grad_(True)
    tangents = torch.cat([t for _, t in parts], dim=1).double()
    with torch.enable_grad():
        value = objective(feats)
        (dfeats,) = torch.autograd.grad(value, feats)
    return float(value.detach()), torch.einsum("bd,kbd->k", dfeats, tangents).to(i.dtype)


def search_invariance(
    encoder: Encoder,
    data: TaskData,
    start: torch.Tensor,
    probe_at: Callable[[torch.Tensor], ProbeFit],
    *,
    settings: SearchSettings = SearchSettings(),
    device: str | torch.device = "cpu",
    seed: int = 0,
    start_probe: ProbeFit | None = None,
    lams: Sequence[float] = LAMBDAS,
) -> InvarianceFit:
    """Descend the ridge leave-one-out error from ``start`` and select on validation (module docstring).

    Args:
        encoder: a frozen conditioned encoder (Hyper-ResNet or Prompt-ViT), in eval mode.
        data: the task; only its training split drives the gradient.
        start: the starting descriptor (K,).
        probe_at: fits the convex probe at a descriptor on train features, scored on validation.
        start_probe: ``probe_at(start)`` when already known (saves one feature pass).
        lams: the grid the ridge objective's ``lam`` is chosen from (leave-one-out, on the first minibatch).
    """
    if not encoder.conditioned:
        raise ValueError(
            "learning i needs a conditioned encoder (hyper_resnet*, prompt_vit_*); use a probe for plain ones"
        )
    device = torch.device(device)
    encoder = encoder.to(device).eval().requires_grad_(False)
    size = tuple(data.train[0].shape[-2:])
    dtype = next(encoder.parameters()).dtype
    param = DescriptorParameter(start.to(device, dtype), settings.lr_i)
    i = param.value
    gen = torch.Generator().manual_seed(seed)
    x_all, y_all = data.train
    n = len(x_all)

    def minibatch() -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randperm(n, generator=gen)[: settings.batch_size]
        return prepare_batch(encoder, x_all[idx], size, device), objective_targets(data, y_all[idx]).to(device)

    best = start_probe or probe_at(i.detach())
    fit = InvarianceFit(i.detach().clone().cpu(), best, start.detach().clone().cpu(), 0)
    fit.path.append({"step": 0, "i": [round(v, 4) for v in i.tolist()], "val_score": round(best.val_score, 6)})
    lam = None
    for step in range(1, settings.steps + 1):
        x, targets = minibatch()
        if lam is None:
            with torch.no_grad():
                lam = best_ridge_lambda(encoder(x, i.detach()), targets, lams)
        value, grad = descriptor_gradient(
            encoder, x, i, lambda f: ridge_loo_loss(f, targets, lam), settings.gradient, settings.chunk_size
        )
        param.step(grad)
        point = {"step": step, "i": [round(v, 4) for v in i.tolist()], "loo": round(value, 6)}
        if step % settings.eval_every == 0 or step == settings.steps:
            probe = probe_at(i.detach())
            point["val_score"] = round(probe.val_score, 6)
            if probe.val_score > fit.probe.val_score:
                fit.i, fit.probe, fit.selected_step = i.detach().clone().cpu(), probe, step
        fit.path.append(point)
    return fit
