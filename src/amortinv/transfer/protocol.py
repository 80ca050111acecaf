"""The transfer protocol: every method selected on validation, scored once on test, with its cost.

Methods (names used in ``result.json``):

- ``ai``: learned ``i`` + linear head, backprop gradient; ``ai_forward``: the same with the
  forward-mode gradient (cheaper memory). Each also reports its quantised ``Q(i*; b)`` for
  b in {1, 2, 3}: a linear probe refit at the quantised descriptor (paper Table 9).
- ``probe[<descriptor>]``: linear probe on cached features at a fixed descriptor (all ones and
  each training descriptor); ``probe[plain]`` when the encoder itself is plain; and
  ``probe[plain:<name>]`` for each extra plain encoder.
- ``fusion``: linear probe on the concatenated features of all the probed descriptors/encoders.
- ``finetune_<n>`` / ``finetune_all``: fine-tuning the last n stages or all; with
  ``budget="ai"`` limited to the invariance learner's wall time (the paper's FT-*).

For every method: the selected hyper-parameters and epoch, the test metrics, the wall time
(grid search included), the peak memory (``MemoryMeter``) and the trainable parameters.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from amortinv.encoders.base import Encoder
from amortinv.results import MemoryMeter
from amortinv.spaces import InvarianceSpace, quantise
from amortinv.transfer.data import TaskData, encode
from amortinv.transfer.finetune import finetune
from amortinv.transfer.learn import FitResult, fit_probe, learn_invariance, predict, score_outputs

__all__ = ["TransferSettings", "run_transfer"]


@dataclass
class TransferSettings:
    """Options of the protocol (grids are searched on the validation split)."""

    lrs: Sequence[float] = (1e-3, 1e-2)
    weight_decays: Sequence[float] = (0.0, 1e-4)
    lr_i: float = 0.01
    epochs: int = 10
    probe_epochs: int = 30
    batch_size: int = 256
    loss: str = "mse"
    init: float = 0.5
    forward_chunk: int = 64
    warm_start_epochs: int = 10
    finetune_stages: Sequence[int] = ()
    finetune_budget: str | None = None
    quantise_bits: Sequence[int] = (1, 2, 3)
    device: str = "cpu"
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _select(fit: Callable[[float, float], FitResult], s: TransferSettings) -> FitResult:
    best = None
    for lr, wd in itertools.product(s.lrs, s.weight_decays):
        result = fit(lr, wd)
        if best is None or result.val_score > best.val_score:
            best = result
    return best


def _record(result: FitResult, test_metrics: dict, seconds: float, memory: float, params: int, space: InvarianceSpace | None) -> dict:
    out = {
        "test": test_metrics,
        "val_score": round(result.val_score, 6),
        "selected": {"lr": result.lr, "weight_decay": result.weight_decay, "epoch": result.best_epoch},
        "time_s": round(seconds, 2),
        "peak_memory_mb": round(memory, 1),
        "trainable_params": params,
    }
    if result.i is not None and space is not None:
        out["i"] = space.describe(result.i.cpu())
    return out


def run_transfer(
    encoder: Encoder, data: TaskData, space: InvarianceSpace | None, methods: Sequence[str], settings: TransferSettings,
    plain_encoders: dict[str, Encoder] | None = None, log: Callable[[str], None] = print,
) -> dict[str, dict]:
    """Run ``methods`` (see the module docstring) on one task; returns ``{method: record}``.

    ``space`` names the descriptor's factors; it may be None only for a plain encoder.
    """
    if encoder.conditioned and space is None:
        raise ValueError("a conditioned encoder needs its invariance space")
    s, dev = settings, torch.device(settings.device)
    size = tuple(data.train[0].shape[-2:])
    head_params = lambda dim: dim * data.num_outputs + data.num_outputs  # noqa: E731
    results: dict[str, dict] = {}
    cache: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def features(key: str, enc: Encoder, i: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if key not in cache:
            cache[key] = tuple(encode(enc, x, i, size=size, batch_size=s.batch_size, device=dev) for x in (data.train[0], data.val[0], data.test[0]))
        return cache[key]

    def probe(key: str, feats: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> tuple[FitResult, dict]:
        fit = _select(lambda lr, wd: fit_probe(feats[0], feats[1], data, lr=lr, weight_decay=wd, epochs=s.probe_epochs,
                                               batch_size=s.batch_size, loss=s.loss, device=dev, seed=s.seed), s)
        return fit, score_outputs(predict(fit.head, feats[2], data), data.test[1], data)

    def timed(name: str, body: Callable[[], tuple[FitResult, dict, int]]) -> None:
        log(f"[{data.name}] {name} ...")
        start = time.perf_counter()
        with MemoryMeter(dev) as meter:
            fit, metrics, params = body()
        results[name] = _record(fit, metrics, time.perf_counter() - start, meter.peak_mb, params, space)
        log(f"[{data.name}] {name}: test {metrics} ({results[name]['time_s']} s)")

    descriptors = {space.label(d): d for d in [torch.ones(space.dim), *space.training_descriptors()]} if encoder.conditioned else {}
    for method in methods:
        if method in ("ai", "ai_forward"):
            def body(gradient: str = "backprop" if method == "ai" else "forward") -> tuple[FitResult, dict, int]:
                fit = _select(lambda lr, wd: learn_invariance(
                    encoder, data, lr=lr, weight_decay=wd, lr_i=s.lr_i, epochs=s.epochs, batch_size=s.batch_size,
                    gradient=gradient, init=s.init, loss=s.loss, device=dev, seed=s.seed, chunk_size=s.forward_chunk,
                    warm_start_epochs=s.warm_start_epochs), s)
                feats = encode(encoder, data.test[0], fit.i, size=size, batch_size=s.batch_size, device=dev)
                return fit, score_outputs(predict(fit.head, feats, data), data.test[1], data), head_params(encoder.feature_dim) + space.dim

            timed(method, body)
            learned = torch.tensor(list(results[method]["i"].values()))
            results[method]["quantised"] = {}
            for bits in s.quantise_bits:
                q = quantise(learned, bits)
                fit, metrics = probe(f"q:{q.tolist()}", features(f"i:{q.tolist()}", encoder, q))
                results[method]["quantised"][f"{bits}bit"] = {"i": space.describe(q), "test": metrics}
        elif method == "probe":
            if not encoder.conditioned:
                timed("probe[plain]", lambda: (*probe("plain", features("self", encoder, None)), head_params(encoder.feature_dim)))
            for label, d in descriptors.items():
                timed(f"probe[{label}]", lambda d=d, label=label: (*probe(label, features(f"i:{d.tolist()}", encoder, d)), head_params(encoder.feature_dim)))
            for name, enc in (plain_encoders or {}).items():
                timed(f"probe[plain:{name}]", lambda enc=enc, name=name: (*probe(name, features(f"plain:{name}", enc, None)), head_params(enc.feature_dim)))
        elif method == "fusion":
            def fusion_body() -> tuple[FitResult, dict, int]:
                parts = [features(f"i:{d.tolist()}", encoder, d) for d in descriptors.values()] if encoder.conditioned else [features("self", encoder, None)]
                parts += [features(f"plain:{n}", e, None) for n, e in (plain_encoders or {}).items()]
                if len(parts) < 2:
                    raise ValueError("fusion needs at least two feature sets (descriptors or encoders)")
                fused = tuple(torch.cat([p[k] for p in parts], dim=1) for k in range(3))
                fit, metrics = probe("fusion", fused)
                return fit, metrics, head_params(fused[0].shape[1])

            timed("fusion", fusion_body)
        elif method == "finetune":
            budget = None
            if s.finetune_budget == "ai":
                budget = next((results[m]["time_s"] for m in ("ai", "ai_forward") if m in results), None)
            for n in s.finetune_stages:
                name = f"finetune_{'all' if n == 0 else n}" + ("_budget" if budget else "")

                def ft_body(n: int = n) -> tuple[FitResult, dict, int]:
                    best_model = {}

                    def fit_one(lr: float, wd: float) -> FitResult:
                        fit, model = finetune(encoder, data, stages=n, lr=lr, weight_decay=wd, epochs=s.epochs,
                                              batch_size=s.batch_size, loss=s.loss, time_budget_s=budget, device=dev, seed=s.seed)
                        best_model[id(fit)] = model
                        return fit

                    fit = _select(fit_one, s)
                    model = best_model[id(fit)]
                    feats = encode(model, data.test[0], fit.i, size=size, batch_size=s.batch_size, device=dev)
                    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad) + head_params(model.feature_dim)
                    return fit, score_outputs(predict(fit.head, feats, data), data.test[1], data), trainable

                timed(name, ft_body)
        else:
            raise ValueError(f"unknown transfer method '{method}'; choose from ai, ai_forward, probe, fusion, finetune")
    return results
