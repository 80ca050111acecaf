"""The options of a pre-training run, with their defaults (one place; no torch or Lightning import)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from amortinv.checks import at_least, choice, finite, flag, human_size

__all__ = [
    "PretrainConfig",
    "RESUME_MAY_CHANGE",
    "METHOD_DEFAULTS",
    "ENCODER_DEFAULTS",
    "COMPETITOR_METHODS",
    "MAX_QUEUE_BYTES",
]

METHOD_DEFAULTS: dict[str, dict[str, Any]] = {  # what each method uses where PretrainConfig says None
    "simclr": {"temperature": 0.5, "recipe": "simclr", "proj_layers": 2},
    "mocov2": {"temperature": 0.2, "recipe": "moco", "proj_layers": 2, "momentum": 0.99},
    "mocov3": {"temperature": 0.2, "recipe": "moco", "proj_layers": 3, "momentum": 0.99},
}


ENCODER_DEFAULTS: dict[str, dict[str, Any]] = {  # architecture options a run's encoder_options are merged over
    "resnet": {"cifar_stem": True, "width": 0.25},
    "vit": {},
}

COMPETITOR_METHODS: dict[str, tuple[str, ...]] = {
    "augself": ("simclr", "mocov2"),
    "cassle": ("simclr", "mocov2"),
    "looc": ("simclr",),
}
"""The competitors (``amortinv.ssl.competitors``) and the methods each runs on."""

MAX_QUEUE_BYTES = 16 * 2**30
"""The largest MoCo-v2 queue (per descriptor) a run may ask for; the paper's 65,536 x 128 floats is 32 MiB."""

OPTIMIZERS = ("adamw", "sgd", "lars")

RESUME_MAY_CHANGE = frozenset(
    {
        "resume",
        "overwrite",
        "progress",
        "num_workers",
        "logger",
        "knn_every",
        "knn_eval",
        "knn_bank",
        "accelerator",
        "keep_optimizer",
    }
)
"""Options a resumed run may change: they do not change what is trained (output, monitoring, hardware kind)."""


@dataclass
class PretrainConfig:
    """Pre-train an invariance-conditioned encoder (or a fixed-descriptor baseline) with SimCLR or MoCo.

    Args:
        method: simclr, mocov2 or mocov3.
        encoder: hyper_resnet18|34|50, prompt_vit_tiny|small|base, or a plain resnet*/vit_* with fixed_descriptor.
        encoder_options: architecture options, merged over the family's defaults (ResNets: {cifar_stem: true, width: 0.25}),
            so {width: 0.5} keeps the CIFAR stem; give cifar_stem: false for the ImageNet stem.
        space: invariance space: groups2, individual5, audio7, or a YAML file defining one (default: groups2 for images, audio7 for audio).
        fixed_descriptor: train a baseline at one descriptor, e.g. "1,1" (default recipe), "1,0" (S-), "0,1" (A-).
        data: dataset name (default: the built-in shapes; see amortinv preview --help).
        data_root: local folder (or .npz file) of the dataset.
        image_size: side of the training views (default: the images' own size).
        sample_rate: audio: resample the clips to this rate in Hz (default: their own).
        clip_seconds: audio: length of the training windows in seconds (default 1).
        recipe: augmentation recipe: simclr, moco or reference (default: the method's).
        batch_size: images per device per step.
        epochs: training epochs.
        max_steps: stop after this many optimiser steps (-1: run all epochs).
        optimizer: adamw, sgd or lars.
        lr: learning rate (before lr_scale).
        lr_scale: scale lr by the global batch / 256: none, linear or sqrt.
        weight_decay: weight decay (not on biases and norms).
        warmup_epochs: linear warm-up epochs before the cosine decay.
        temperature: contrastive temperature (default: 0.5 SimCLR, 0.2 MoCo).
        proj_hidden: projection head hidden width.
        proj_dim: projection output size.
        proj_layers: projection head layers (default: 2, MoCo-v3 3).
        per_descriptor_heads: one projection head (and MoCo-v2 queue) per training descriptor instead of shared heads.
        hyper_lr: learning-rate gain of the hypernetworks' output layers: a number, or auto (each generated kernel takes a plain conv's step).
        ones_share: share of the steps at the all-ones descriptor, the rest uniform over the others (null: uniform over all; 0.5 won the pre-training ablation on groups2, docs/research_log/fidelity.md).
        momentum: momentum of the key encoder (default 0.99; MoCo-v3 schedules it to 1).
        queue_size: MoCo-v2 queue length per descriptor.
        pred_hidden: MoCo-v3 predictor hidden width.
        competitor: train one of the paper's competitors instead of amortised invariance, on a plain encoder at
            --fixed-descriptor (images): augself (SimCLR or MoCo-v2), cassle (SimCLR) or looc (SimCLR); see docs/competitors.md.
        augself_weight: weight of AugSelf's auxiliary loss (its authors: 1.0 at CIFAR/STL-10 scale, 0.5 on ImageNet-100).
        accelerator: cpu, gpu or auto.
        devices: devices per node.
        num_nodes: nodes (multi-node through torchrun or SLURM).
        strategy: auto, ddp, ddp_spawn, ...
        sync_batchnorm: convert BatchNorms to SyncBatchNorm under DDP.
        precision: 32-true, 16-mixed or bf16-mixed.
        accumulate: gradient accumulation steps.
        num_workers: data loader workers.
        out: run folder.
        seed: seed of descriptor sampling, augmentation, data order and initialisation.
        resume: a checkpoint to resume from, "last" for the run folder's last.ckpt (the run's settings must be unchanged), or
            "auto": "last" if the folder holds a last.ckpt, else a fresh run (one command for a job's first and requeued launches).
        overwrite: replace a non-empty output folder (otherwise a non-empty --out is refused unless resuming).
        logger: csv, or tensorboard (CSV is always written).
        knn_every: log kNN accuracy on the test split every n epochs (0: never).
        knn_eval: after training, kNN top-1 on the test split at each training descriptor.
        knn_bank: training images in the kNN memory bank (>= 1; all of them when the split is smaller).
        progress: show the progress bar.
        keep_optimizer: keep the optimiser state in checkpoints/last.ckpt once the run has finished (by default it is
            dropped then: a finished run is not resumed, and the state is twice the model's size with AdamW).
    """

    method: str = "simclr"
    encoder: str = "hyper_resnet18"
    encoder_options: dict[str, Any] = field(default_factory=dict)
    space: str | None = None
    fixed_descriptor: str | None = None
    data: str = "shapes"
    data_root: str | None = None
    image_size: int | None = None
    sample_rate: int | None = None
    clip_seconds: float | None = None
    recipe: str | None = None
    batch_size: int = 256
    epochs: int = 10
    max_steps: int = -1
    optimizer: str = "adamw"
    lr: float = 1e-3
    lr_scale: str = "none"
    weight_decay: float = 1e-6
    warmup_epochs: float = 0.0
    temperature: float | None = None
    proj_hidden: int = 512
    proj_dim: int = 128
    proj_layers: int | None = None
    per_descriptor_heads: bool = False
    hyper_lr: float | str = 1.0
    ones_share: float | None = 0.5
    momentum: float | None = None
    queue_size: int = 4096
    pred_hidden: int = 512
    competitor: str | None = None
    augself_weight: float = 1.0
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    sync_batchnorm: bool = False
    precision: str = "32-true"
    accumulate: int = 1
    num_workers: int = 0
    out: str = "runs/pretrain"
    seed: int = 0
    resume: str | None = None
    overwrite: bool = False
    logger: str = "csv"
    knn_every: int = 0
    knn_eval: bool = True
    knn_bank: int = 10000
    progress: bool = True
    keep_optimizer: bool = False

    def __post_init__(self) -> None:
        """Merge ``encoder_options`` over the family's defaults, and check every setting once, here.

        Raises:
            ValueError: naming the option (as on the command line) and the value it got.
        """
        if not isinstance(self.encoder_options, dict):
            raise ValueError(
                f"--encoder-options must be a mapping such as {{width: 0.5}}, got {self.encoder_options!r}"
            )
        family = "vit" if "vit" in self.encoder else "resnet"
        self.encoder_options = {**ENCODER_DEFAULTS[family], **self.encoder_options}
        choice("--method", self.method, tuple(METHOD_DEFAULTS))
        choice("--optimizer", self.optimizer, OPTIMIZERS)
        choice("--lr-scale", self.lr_scale, ("none", "linear", "sqrt"))
        choice("--logger", self.logger, ("csv", "tensorboard"))
        self._check_counts()
        self._check_rates()
        self._check_competitor()
        need = self.queue_size * self.proj_dim * 4
        if need > MAX_QUEUE_BYTES:
            raise ValueError(
                f"--queue-size {self.queue_size} would need {human_size(need)} per queue (queue_size x proj_dim {self.proj_dim} x 4 "
                f"bytes), over the {human_size(MAX_QUEUE_BYTES)} limit; MoCo-v2 uses 65536 ({human_size(65536 * 128 * 4)})"
            )

    def _check_counts(self) -> None:
        """Sizes and counts: whole numbers in range (0 or a negative never means "all")."""
        lows = {"batch_size": 2, "epochs": 1, "accumulate": 1, "proj_hidden": 1, "proj_dim": 1, "pred_hidden": 1,
                "queue_size": 1, "knn_bank": 1, "num_nodes": 1, "knn_every": 0, "num_workers": 0}  # fmt: skip
        for name, low in lows.items():
            at_least(flag(name), getattr(self, name), low)
        for name in ("proj_layers", "image_size", "sample_rate"):
            if getattr(self, name) is not None:
                at_least(flag(name), getattr(self, name), 1)
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(
                f"--max-steps must be >= 1 (or -1: all epochs), got {self.max_steps}: a run without steps trains nothing"
            )

    def _check_rates(self) -> None:
        """Rates, weights and shares: finite and in range."""
        finite("--lr", self.lr, above=0.0)
        finite("--weight-decay", self.weight_decay, low=0.0)
        finite("--warmup-epochs", self.warmup_epochs, low=0.0)
        for name in ("temperature", "clip_seconds"):
            if getattr(self, name) is not None:
                finite(flag(name), getattr(self, name), above=0.0)
        if self.momentum is not None:
            finite("--momentum", self.momentum, low=0.0, below=1.0)
        if self.ones_share is not None:
            finite("--ones-share", self.ones_share, low=0.0, high=1.0)
        if self.hyper_lr != "auto":
            finite("--hyper-lr", self.hyper_lr, above=0.0)
        finite("--augself-weight", self.augself_weight, above=0.0)

    def _check_competitor(self) -> None:
        """A competitor runs on the methods it is defined for, with a plain encoder at one descriptor."""
        if self.competitor is None:
            return
        choice("--competitor", self.competitor, tuple(COMPETITOR_METHODS))
        if self.method not in COMPETITOR_METHODS[self.competitor]:
            raise ValueError(
                f"--competitor {self.competitor} runs with --method {' or '.join(COMPETITOR_METHODS[self.competitor])}, "
                f"not {self.method}"
            )
        if self.fixed_descriptor is None:
            raise ValueError(
                f"--competitor {self.competitor} trains a plain encoder at one descriptor: give --fixed-descriptor "
                "(e.g. 1,1, the default recipe) and a plain --encoder such as resnet18"
            )
