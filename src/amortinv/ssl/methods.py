"""Pre-training LightningModules: AI-SimCLR, AI-MoCo-v2 and AI-MoCo-v3 (one class per method).

Each wraps its method's maths, a plain PyTorch module of ``amortinv.ssl.objectives`` (``self.objective``:
encoder, heads, momentum copies, queues -> loss), with what a training run adds. Each step draws ONE descriptor from the space as a pure function of ``(seed, global_step)``,
so every DDP rank uses the same one and a resumed run continues the same sequence (SPEC 1);
it makes the two views of that descriptor on the training device and computes the method's
loss. With ``fixed_descriptor`` the same code trains the plain baselines (default recipe,
S-, A-). The augmentation randomness of a step is seeded from ``(seed, epoch, batch, rank)``,
so resuming from a checkpoint (even one saved mid-epoch) reproduces an uninterrupted run.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from amortinv.encoders.base import Encoder
from amortinv.modality import MODALITIES
from amortinv.spaces import InvarianceSpace
from amortinv.ssl.competitors import competitor_objective
from amortinv.ssl.config import METHOD_DEFAULTS
from amortinv.ssl.config import PretrainConfig as _C
from amortinv.ssl.objectives import OBJECTIVES
from amortinv.ssl.optim import build_optimizer, momentum_schedule, warmup_cosine

__all__ = ["ContrastivePretrainer", "SimCLR", "MoCoV2", "MoCoV3", "METHODS", "step_seed"]

_MIX = 1_000_003


def step_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (seed, epoch, batch, rank)."""
    h = 0
    for p in parts:
        h = (h * _MIX + int(p) + 1) % (2**63 - 1)
    return h


class ContrastivePretrainer(L.LightningModule):
    """Shared base: descriptor sampling, augmentation on device, optimiser and schedule.

    Defaults come from ``PretrainConfig`` and, where it says None, from ``METHOD_DEFAULTS``.

    Args:
        encoder: the backbone (conditioned, or plain with ``fixed_descriptor``).
        space: the invariance space; its ops drive the augmentation.
        image_size: size of the augmented views (an image side; a clip length in samples for audio).
        modality: ``vision`` or ``audio`` (``amortinv.modality``): whose augmentation engine makes the views.
        fixed_descriptor: train at this one descriptor only (the baselines); else sample per step.
        recipe: augmentation recipe (``simclr``, ``moco``, ``reference``; default: the method's).
        optimizer, lr, weight_decay: optimisation (lr already scaled to the batch size).
        warmup_epochs: linear warm-up length before the cosine decay.
        temperature: contrastive temperature (default: the method's).
        proj_hidden, proj_dim, proj_layers: projection head sizes.
        per_descriptor_heads: one head (and predictor) per training descriptor instead of a shared one.
        hyper_lr: learning-rate gain of the generated kernels' output layers: a number, or "auto"
            (``Encoder.kernel_step_gains``: each generated kernel takes a plain conv's step).
        ones_share: share of the steps drawn at the all-ones descriptor (None: uniform).
        seed: seeds descriptor sampling and augmentation.
        competitor: train a competitor's objective instead (``amortinv.ssl.competitors``: augself, cassle,
            looc; images only, with ``fixed_descriptor``).
        augself_weight: AugSelf's loss weight.
        schedule: (total optimiser steps, steps per epoch) of the run, for the learning-rate and momentum
            schedules (default: Lightning's estimate, which sets up the data loader before a checkpoint is
            restored and so cannot resume a data loader mid-epoch).
    """

    def __init__(
        self,
        encoder: Encoder,
        space: InvarianceSpace,
        image_size: int = 32,
        modality: str = "vision",
        fixed_descriptor: list[float] | None = None,
        recipe: str | None = None,
        optimizer: str = _C.optimizer,
        lr: float = _C.lr,
        weight_decay: float = _C.weight_decay,
        warmup_epochs: float = _C.warmup_epochs,
        temperature: float | None = None,
        proj_hidden: int = _C.proj_hidden,
        proj_dim: int = _C.proj_dim,
        proj_layers: int | None = None,
        per_descriptor_heads: bool = _C.per_descriptor_heads,
        hyper_lr: float | str = _C.hyper_lr,
        ones_share: float | None = _C.ones_share,
        seed: int = _C.seed,
        competitor: str | None = _C.competitor,
        augself_weight: float = _C.augself_weight,
        schedule: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        defaults = METHOD_DEFAULTS[self.method]  # None means the method's own (one table, in amortinv.ssl.config)
        recipe = defaults["recipe"] if recipe is None else recipe
        temperature = defaults["temperature"] if temperature is None else temperature
        proj_layers = defaults["proj_layers"] if proj_layers is None else proj_layers
        self.save_hyperparameters(ignore=["encoder", "space"])
        self.space = space
        self.augment = MODALITIES[modality].augment(space, image_size, recipe=recipe)
        if fixed_descriptor is not None:
            self.register_buffer("fixed", space.validate(fixed_descriptor, binary=True), persistent=False)
        else:
            if not encoder.conditioned:
                raise ValueError("a plain encoder needs a fixed_descriptor (it cannot be conditioned on i)")
            self.fixed = None
        self.register_buffer("descriptors", space.training_descriptors(), persistent=False)
        self._host_descriptors = (self.descriptors if self.fixed is None else self.fixed[None]).clone()
        self.sampling_weights = space.sampling_weights(ones_share) if fixed_descriptor is None else None
        if not (hyper_lr == "auto" or (isinstance(hyper_lr, (int, float)) and hyper_lr > 0)):
            raise ValueError(f"hyper_lr must be a positive number or 'auto', got {hyper_lr!r}")
        self.num_heads = 1 if fixed_descriptor is not None else len(self.descriptors)
        self.objective = self.objective_class()(
            encoder,
            num_heads=self.num_heads,
            per_head=per_descriptor_heads,
            proj_hidden=proj_hidden,
            proj_dim=proj_dim,
            proj_layers=proj_layers,
            temperature=temperature,
            **self.objective_options(),
            **self.competitor_options(),
        )

    @classmethod
    def from_config(cls, cfg: _C, encoder: Encoder, space: InvarianceSpace, **run: Any) -> ContrastivePretrainer:
        """The method built from a ``PretrainConfig`` (None there: the method's default) and what the run
        decided (``run``: image_size, modality, fixed_descriptor, the scaled lr, schedule)."""
        common = {
            k: getattr(cfg, k)
            for k in (
                "recipe",
                "optimizer",
                "weight_decay",
                "warmup_epochs",
                "temperature",
                "proj_hidden",
                "proj_dim",
                "proj_layers",
                "per_descriptor_heads",
                "hyper_lr",
                "ones_share",
                "seed",
                "competitor",
                "augself_weight",
            )
        }
        return cls(encoder, space, **run, **common, **cls.config_options(cfg))

    @classmethod
    def config_options(cls, cfg: _C) -> dict[str, Any]:
        """The method's own constructor options taken from the config (a subclass adds its own)."""
        return {}

    def objective_class(self) -> type:
        """The method's objective, or the competitor's on this method."""
        competitor = self.hparams.competitor
        if competitor is None:
            return OBJECTIVES[self.method]
        if not hasattr(self.augment, "views_with_params"):  # the engine that hands out its views' parameters
            raise ValueError(
                f"--competitor {competitor} needs the augmentation parameters of each view, which the "
                f"{self.hparams.modality} engine does not hand out: it trains on images"
            )
        if self.fixed is None:
            raise ValueError(f"--competitor {competitor} trains a plain encoder at one --fixed-descriptor (e.g. 1,1)")
        return competitor_objective(competitor, self.method)

    def objective_options(self) -> dict[str, Any]:
        """The method's own objective options (queue size, predictor width)."""
        return {}

    def competitor_options(self) -> dict[str, Any]:
        """The competitor's options: AugSelf's weight and the recipe's jitter, LooC's factors."""
        competitor = self.hparams.competitor
        if competitor == "augself":
            return {"augself_weight": self.hparams.augself_weight, "jitter": self.augment.recipe.jitter}
        if competitor == "looc":
            return {"factors": tuple(f for f, v in zip(self.space.factors, self.fixed.tolist()) if v == 1)}
        return {}

    @property
    def encoder(self) -> Encoder:
        return self.objective.encoder

    # ---------------------------------------------------------------- descriptors
    def descriptor_index(self, step: int) -> int:
        """Index of the training descriptor of global ``step`` (0 for a fixed descriptor)."""
        return 0 if self.fixed is not None else self.space.sample_index(step, self.hparams.seed, self.sampling_weights)

    def descriptor(self) -> tuple[int, torch.Tensor]:
        """(index, descriptor (K,)) for the current global step."""
        idx = self.descriptor_index(self.global_step)
        return idx, (self.fixed if self.fixed is not None else self.descriptors[idx])

    def encoder_input(self, d: torch.Tensor) -> torch.Tensor | None:
        return d if self.encoder.conditioned else None

    def views(self, images: torch.Tensor, idx: int, batch_idx: int) -> tuple[torch.Tensor, ...]:
        """The objective's inputs (two augmented views, and what a competitor adds) for training descriptor ``idx``, with randomness seeded by (seed,
        epoch, batch, rank) (a resumed epoch continues its batch count, so a resume reproduces them).
        The augmentation draws its parameters on the CPU from a CPU copy of the descriptor, so the
        step never waits for the device."""
        d = self._host_descriptors[idx]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(step_seed(self.hparams.seed, self.current_epoch, batch_idx, self.global_rank))
            return self.objective.make_inputs(self.augment, images, d)

    # ---------------------------------------------------------------- training
    def loss(self, inputs: tuple[torch.Tensor, ...], idx: int, d: torch.Tensor) -> torch.Tensor:
        """The objective's loss of its inputs (``views``) at training descriptor ``idx`` (= ``d``)."""
        return self.objective(*inputs, head=idx, i=self.encoder_input(d))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        idx, d = self.descriptor()
        loss = self.loss(self.views(images, idx, batch_idx), idx, d)
        if not torch.isfinite(loss):
            if torch.is_floating_point(images) and not torch.isfinite(images).all():
                raise ValueError(
                    f"non-finite loss at step {self.global_step}: the batch itself holds non-finite inputs (NaN or inf); "
                    "check the data (the readers refuse such files; a custom dataset may not)"
                )
            raise FloatingPointError(
                f"non-finite loss at step {self.global_step} (descriptor {d.tolist()}) from finite inputs: "
                "the run diverged; lower --lr (or raise --temperature)"
            )
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True)
        self.log("train/descriptor", float(idx), on_step=True, on_epoch=False)
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, on_epoch=False)
        return loss

    def online_modules(self) -> nn.ModuleList:
        """The modules the optimiser trains."""
        return self.objective.online()

    def schedule_lengths(self) -> tuple[int, int]:
        """(total optimiser steps, optimiser steps per epoch)."""
        if self.hparams.schedule is not None:
            return max(1, int(self.hparams.schedule[0])), max(1, int(self.hparams.schedule[1]))
        per_epoch = int(self.trainer.num_training_batches) // self.trainer.accumulate_grad_batches
        return max(1, int(self.trainer.estimated_stepping_batches)), max(1, per_epoch)

    def kernel_lr_gains(self) -> list[tuple[nn.Parameter, float]]:
        """Per-parameter learning-rate gains of the generated kernels (see ``hyper_lr``)."""
        h = self.hparams
        if h.hyper_lr == "auto":
            return self.encoder.kernel_step_gains(self.descriptors if self.fixed is None else self.fixed[None])
        return (
            [(p, float(h.hyper_lr)) for p, _ in self.encoder.kernel_step_gains(self.descriptors)]
            if h.hyper_lr != 1
            else []
        )

    def configure_optimizers(self) -> dict:
        h = self.hparams
        opt = build_optimizer(h.optimizer, self.online_modules(), h.lr, h.weight_decay, self.kernel_lr_gains())
        total, per_epoch = self.schedule_lengths()
        warmup = min(total - 1, int(h.warmup_epochs * per_epoch))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, total, warmup))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class SimCLR(ContrastivePretrainer):
    """AI-SimCLR: NT-Xent over both views of the global batch (negatives gathered across ranks)."""

    method = "simclr"


class _Momentum(ContrastivePretrainer):
    """Updates the objective's momentum (key) copies before each loss."""

    def __init__(self, *args: Any, momentum: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hparams["momentum"] = METHOD_DEFAULTS[self.method]["momentum"] if momentum is None else momentum

    @classmethod
    def config_options(cls, cfg: _C) -> dict[str, Any]:
        return {"momentum": cfg.momentum}

    def current_momentum(self) -> float:
        return self.hparams.momentum

    def loss(self, inputs: tuple[torch.Tensor, ...], idx: int, d: torch.Tensor) -> torch.Tensor:
        m = self.current_momentum()
        self.objective.update_keys(m)
        self.log("train/momentum", m, on_step=True, on_epoch=False)
        return super().loss(inputs, idx, d)


class MoCoV2(_Momentum):
    """AI-MoCo-v2: InfoNCE against one queue per training descriptor; keys gathered before enqueue."""

    method = "mocov2"

    def __init__(self, *args: Any, queue_size: int = _C.queue_size, **kwargs: Any) -> None:
        self._queue_size = queue_size
        super().__init__(*args, **kwargs)
        self.hparams["queue_size"] = queue_size

    @classmethod
    def config_options(cls, cfg: _C) -> dict[str, Any]:
        return {**super().config_options(cfg), "queue_size": cfg.queue_size}

    def objective_options(self) -> dict[str, Any]:
        return {"queue_size": self._queue_size}


class MoCoV3(_Momentum):
    """AI-MoCo-v3: symmetric loss with a predictor, no queue, momentum cosine-scheduled to 1."""

    method = "mocov3"

    def __init__(self, *args: Any, pred_hidden: int = _C.pred_hidden, **kwargs: Any) -> None:
        self._pred_hidden = pred_hidden
        super().__init__(*args, **kwargs)
        self.hparams["pred_hidden"] = pred_hidden

    @classmethod
    def config_options(cls, cfg: _C) -> dict[str, Any]:
        return {**super().config_options(cfg), "pred_hidden": cfg.pred_hidden}

    def objective_options(self) -> dict[str, Any]:
        return {"pred_hidden": self._pred_hidden}

    def current_momentum(self) -> float:
        total, _ = self.schedule_lengths()
        return momentum_schedule(self.global_step, total, self.hparams.momentum)


METHODS: dict[str, type[ContrastivePretrainer]] = {"simclr": SimCLR, "mocov2": MoCoV2, "mocov3": MoCoV3}
