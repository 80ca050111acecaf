"""The transfer protocol: every method selected on validation, scored once on test, with its cost.

Methods (names used in ``result.json``):

- ``ai``: the learned ``i`` (``amortinv.transfer.learn``: start at the best candidate descriptor,
  descend the ridge leave-one-out error, select on validation) with a convex probe at it,
  backprop gradient; ``ai_forward``: the same with the forward-mode gradient (less memory).
  Each also reports, for b in ``quantise_bits``, the probe at ``Q(i*; b)`` (rounding, paper
  Table 9) and at the best b-bit descriptor among the grid points around ``i*`` by validation
  (rounding a coordinate near a midpoint is arbitrary).
- ``probe[<descriptor>]``: convex linear probe (``amortinv.transfer.probe``) on cached features
  at a fixed descriptor (``InvarianceSpace.candidate_descriptors``: all ones and each training
  descriptor, a fixed sample of them in spaces with many); ``probe[plain]`` when the
  encoder itself is plain; and ``probe[plain:<name>]`` for each extra plain encoder.
- ``fusion``: the probe on the concatenated features of all the probed descriptors/encoders.
- ``finetune_<n>`` / ``finetune_all``: fine-tuning the last n stages or all; with
  ``budget="ai"`` limited to the invariance learner's wall time (the paper's FT-*).

Every probe's regularisation is chosen on validation from ``lams``. With ``recalibrate_bn``, the
features of every encoder at every descriptor (plain encoders included) use BatchNorm
statistics recomputed there on the task's training images (``amortinv.transfer.batchnorm``);
the descriptor search descends with the statistics of its start. For every method: the
selection, the test metrics, the wall time, the peak memory (``MemoryMeter``) and the trainable
parameters.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch

from amortinv.encoders.base import Encoder
from amortinv.features import frozen_features
from amortinv.results import MemoryMeter
from amortinv.spaces import InvarianceSpace, quantise
from amortinv.transfer.batchnorm import has_batchnorm, recompute_bn_stats, using_bn_stats
from amortinv.transfer.data import TaskData
from amortinv.transfer.finetuning import finetune
from amortinv.transfer.learn import search_invariance
from amortinv.transfer.probe import ProbeFit, fit_probe, predict, score_outputs
from amortinv.transfer.settings import TransferSettings

__all__ = ["FeatureBank", "TransferSettings", "run_transfer", "quantised_neighbours"]

SPLITS = {"train": 0, "val": 1, "test": 2}


def quantised_neighbours(i: torch.Tensor, bits: int, max_points: int = 16) -> list[torch.Tensor]:
    """The b-bit grid points around ``i`` (floor or ceil per coordinate), at most ``max_points``
    (the nearest ones); ``Q(i; b)`` (rounding) is always among them."""
    levels = 2**bits - 1
    lo, hi = (i * levels).floor() / levels, (i * levels).ceil() / levels
    points = {
        tuple(torch.where(torch.tensor(c, dtype=torch.bool), hi, lo).tolist())
        for c in itertools.product((0, 1), repeat=len(i))
    }
    ranked = sorted(points, key=lambda p: float((torch.tensor(p) - i).norm()))[:max_points]
    rounded = tuple(quantise(i, bits).tolist())
    return [torch.tensor(p) for p in ([rounded] + [p for p in ranked if p != rounded])[:max_points]]


def _record(fit: ProbeFit, test_metrics: dict, seconds: float, memory: float, params: int) -> dict:
    return {
        "test": test_metrics,
        "val_score": round(fit.val_score, 6),
        "selected": {"lam": fit.lam},
        "time_s": round(seconds, 2),
        "peak_memory_mb": round(memory, 1),
        "trainable_params": params,
    }


class FeatureBank:
    """Frozen features of a task's splits, computed once per (encoder, descriptor, split), and the
    convex probes on them. ``encoders``: key ('self', 'plain:<name>') -> encoder. With
    ``settings.recalibrate_bn`` each (encoder, descriptor) uses BatchNorm statistics recomputed
    there on the training inputs."""

    def __init__(
        self, encoders: dict[str, Encoder], data: TaskData, settings: TransferSettings, device: torch.device
    ) -> None:
        self.encoders, self.data, self.s, self.device = encoders, data, settings, device
        self.size = tuple(
            data.train[0].shape[-2:]
        )  # (H, W) of images, (1, L) of waveforms: what Modality.eval_input takes
        self._features: dict[tuple[str, str], torch.Tensor] = {}
        self._bn: dict[str, dict] = {}

    @staticmethod
    def _key(key: str, i: torch.Tensor | None) -> str:
        return f"{key}@{None if i is None else [round(v, 6) for v in i.tolist()]}"

    def bn_stats(self, key: str, i: torch.Tensor | None) -> dict | None:
        """BatchNorm statistics of an encoder at ``i`` on the training inputs (None: keep the pre-trained ones)."""
        if not self.s.recalibrate_bn or not has_batchnorm(self.encoders[key]):
            return None
        if self._key(key, i) not in self._bn:
            self._bn[self._key(key, i)] = recompute_bn_stats(
                self.encoders[key],
                self.data.train[0],
                i,
                size=self.size,
                batch_size=self.s.batch_size,
                device=self.device,
            )
        return self._bn[self._key(key, i)]

    def features(self, key: str, split: str, i: torch.Tensor | None = None) -> torch.Tensor:
        """Features (N, D) of one split ('train', 'val', 'test') for encoder ``key`` at descriptor ``i``."""
        ckey = (self._key(key, i), split)
        if ckey not in self._features:
            with using_bn_stats(self.encoders[key], self.bn_stats(key, i)):
                self._features[ckey] = frozen_features(
                    self.encoders[key],
                    getattr(self.data, split)[0],
                    i,
                    size=self.size,
                    batch_size=self.s.batch_size,
                    device=self.device,
                )
        return self._features[ckey]

    def probe(self, key: str, i: torch.Tensor | None) -> ProbeFit:
        """The convex probe at ``i``, its regularisation chosen on validation."""
        return fit_probe(self.features(key, "train", i), self.features(key, "val", i), self.data, self.s.lams)

    def test(self, fit: ProbeFit, key: str, i: torch.Tensor | None) -> dict:
        """Test metrics of a fitted probe (the test split is read here only)."""
        return score_outputs(predict(fit.head, self.features(key, "test", i), self.data), self.data.test[1], self.data)


def run_transfer(
    encoder: Encoder,
    data: TaskData,
    space: InvarianceSpace | None,
    methods: Sequence[str],
    settings: TransferSettings,
    plain_encoders: dict[str, Encoder] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, dict]:
    """Run ``methods`` (see the module docstring) on one task; returns ``{method: record}``.

    ``space`` names the descriptor's factors; it may be None only for a plain encoder.
    """
    if encoder.conditioned and space is None:
        raise ValueError("a conditioned encoder needs its invariance space")
    task = _TransferRun(encoder, data, space, settings, plain_encoders or {}, log)
    for method in methods:
        task.run(method)
    return task.results


class _TransferRun:
    """One task's methods on one encoder, sharing its cached features (``FeatureBank``)."""

    def __init__(
        self,
        encoder: Encoder,
        data: TaskData,
        space: InvarianceSpace | None,
        settings: TransferSettings,
        plain_encoders: dict[str, Encoder],
        log: Callable[[str], None],
    ) -> None:
        self.encoder, self.data, self.space, self.s, self.plain, self.log = (
            encoder, data, space, settings, plain_encoders, log
        )  # fmt: skip
        self.dev = torch.device(settings.resolved_device())
        self.results: dict[str, dict] = {}
        self.encoders = {"self": encoder, **{f"plain:{n}": e for n, e in plain_encoders.items()}}
        self.bank = FeatureBank(self.encoders, data, settings, self.dev)
        self.candidates = {space.label(d): d for d in space.candidate_descriptors()} if encoder.conditioned else {}

    def head_params(self, dim: int) -> int:
        return dim * self.data.num_outputs + self.data.num_outputs

    def run(self, method: str) -> None:
        plain = self.plain
        if method in ("ai", "ai_forward"):
            self.timed(method, lambda: self.learn("backprop" if method == "ai" else "forward"))
        elif method == "probe":
            if not self.encoder.conditioned:
                self.timed("probe[plain]", self.fixed("self", None))
            for label, d in self.candidates.items():
                self.timed(f"probe[{label}]", self.fixed("self", d))
            for name in plain:
                self.timed(f"probe[plain:{name}]", self.fixed(f"plain:{name}", None))
        elif method == "fusion":
            own = [("self", d) for d in self.candidates.values()] or [("self", None)]
            parts = (self.data, self.s, own, [f"plain:{n}" for n in plain], self.bank.features, self.head_params)
            self.timed("fusion", lambda: _fusion(*parts))
        elif method == "finetune":
            _finetunes(self.encoder, self.data, self.s, self.results, self.timed, self.bank.size, self.dev,
                       self.head_params)  # fmt: skip
        else:
            raise ValueError(f"unknown transfer method '{method}'; choose from ai, ai_forward, probe, fusion, finetune")

    def timed(self, name: str, body: Callable[[], tuple[ProbeFit, dict, int, dict]]) -> None:
        """Run one method, recording its scores, time, peak memory and trainable parameters."""
        self.log(f"[{self.data.name}] {name} ...")
        start = time.perf_counter()
        with MemoryMeter(self.dev) as meter:
            fit, metrics, params, extra = body()
        self.results[name] = {**_record(fit, metrics, time.perf_counter() - start, meter.peak_mb, params), **extra}
        main = "top1" if "top1" in metrics else "r2"  # the result; result.json also holds the other metrics
        kept = f"; the search kept its start {extra['start']}" if extra.get("selected_step") == 0 else ""
        self.log(f"[{self.data.name}] {name}: test {main} {metrics[main]:.4f} ({self.results[name]['time_s']} s){kept}")

    def learn(self, gradient: str) -> tuple[ProbeFit, dict, int, dict]:
        """The learned ``i``: from the best candidate (or ``init`` everywhere), the search, its quantised versions."""
        s, bank, space = self.s, self.bank, self.space
        fits = {label: bank.probe("self", d) for label, d in self.candidates.items()}
        if s.init == "best":
            label = max(fits, key=lambda k: fits[k].val_score)
            start, start_fit = self.candidates[label], fits[label]
        else:
            label, start, start_fit = f"{s.init} everywhere", torch.full((space.dim,), float(s.init)), None
        with using_bn_stats(self.encoder, bank.bn_stats("self", start)):
            found = search_invariance(
                self.encoder,
                self.data,
                start,
                lambda i: bank.probe("self", i),
                settings=replace(s.search, gradient=gradient),
                device=self.dev,
                seed=s.seed,
                start_probe=start_fit,
                lams=s.lams,
            )
        extra = {
            "i": space.describe(found.i),
            "start": label,
            "selected_step": found.selected_step,
            "path": found.path,
            "candidates_val": {k: round(f.val_score, 6) for k, f in fits.items()},
            "quantised": {f"{b}bit": self.quantised_rows(found.i, b) for b in s.quantise_bits},
        }
        params = self.head_params(self.encoder.feature_dim) + space.dim
        return found.probe, bank.test(found.probe, "self", found.i), params, extra

    def quantised_rows(self, i: torch.Tensor, bits: int) -> dict:
        """The ``bits``-bit grid point nearest ``i`` and the best one around it by validation score."""
        points = quantised_neighbours(i, bits)
        fits = [self.bank.probe("self", q) for q in points]
        best = max(range(len(points)), key=lambda k: fits[k].val_score)

        def row(k: int) -> dict:
            test = self.bank.test(fits[k], "self", points[k])
            return {"i": self.space.describe(points[k]), "val_score": round(fits[k].val_score, 6), "test": test}

        return {"rounded": row(0), "best_on_val": row(best)}

    def fixed(self, key: str, i: torch.Tensor | None) -> Callable[[], tuple[ProbeFit, dict, int, dict]]:
        """A linear probe on encoder ``key``'s features at ``i``."""

        def probe() -> tuple[ProbeFit, dict, int, dict]:
            fit = self.bank.probe(key, i)
            return fit, self.bank.test(fit, key, i), self.head_params(self.encoders[key].feature_dim), {}

        return probe


def _fusion(
    data: TaskData, s: TransferSettings, own: list, plains: list[str], features: Callable, head_params: Callable
) -> tuple:
    parts = own + [(key, None) for key in plains]
    if len(parts) < 2:
        raise ValueError("fusion needs at least two feature sets (descriptors or encoders)")
    fused = {split: torch.cat([features(key, split, i) for key, i in parts], dim=1) for split in SPLITS}
    fit = fit_probe(fused["train"], fused["val"], data, s.lams)
    return (
        fit,
        score_outputs(predict(fit.head, fused["test"], data), data.test[1], data),
        head_params(fused["train"].shape[1]),
        {},
    )


def _finetunes(
    encoder: Encoder,
    data: TaskData,
    s: TransferSettings,
    results: dict,
    timed: Callable,
    size: tuple,
    dev: torch.device,
    head_params: Callable,
) -> None:
    budget = None
    if s.finetune_budget == "ai":
        budget = next((results[m]["time_s"] for m in ("ai", "ai_forward") if m in results), None)
    for n in s.finetune_stages:

        def body(n: int = n) -> tuple:
            fit, model = None, None
            for lr, wd in itertools.product(s.lrs, s.weight_decays):  # keep only the best model in memory
                run = finetune(
                    encoder,
                    data,
                    stages=n,
                    lr=lr,
                    weight_decay=wd,
                    epochs=s.epochs,
                    batch_size=s.batch_size,
                    loss=s.loss,
                    time_budget_s=budget,
                    device=dev,
                    seed=s.seed,
                )
                if fit is None or run[0].val_score > fit.val_score:
                    fit, model = run
            feats = frozen_features(
                model,
                data.test[0],
                torch.ones(max(1, model.invariance_dim)),
                size=size,
                batch_size=s.batch_size,
                device=dev,
            )
            trainable = sum(p.numel() for p in model.parameters() if p.requires_grad) + head_params(model.feature_dim)
            record = ProbeFit(fit.head, 0.0, fit.val_score)
            extra = {"selected": {"lr": fit.lr, "weight_decay": fit.weight_decay, "epoch": fit.best_epoch}}
            return record, score_outputs(predict(fit.head, feats, data), data.test[1], data), trainable, extra

        timed(f"finetune_{'all' if n == 0 else n}" + ("_budget" if budget else ""), body)
