"""The pre-training run: data, method, Lightning Trainer, and the run folder it leaves.

Run folder: ``checkpoints/`` (Lightning, ``last.ckpt`` included), ``encoder.safetensors`` +
``encoder.json`` (loadable with ``amortinv.encoders.load_encoder``), ``metrics.csv`` (and
``logs/`` with TensorBoard events if asked), and ``result.json``; the rules that keep one run per
folder are in ``amortinv.ssl.run_folder``.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from amortinv.data import build_dataset, dataset_modality
from amortinv.encoders import build_encoder, save_encoder
from amortinv.modality import MODALITIES, Modality
from amortinv.results import peak_memory_mb, write_json
from amortinv.spaces import InvarianceSpace, load_space, parse_descriptors
from amortinv.ssl.callbacks import STOP_SIGNALS, AtomicCheckpointIO, KNNMonitor, Preemption, StepProgressBar
from amortinv.ssl.config import PretrainConfig
from amortinv.ssl.knn import knn_accuracy
from amortinv.ssl.loader import ResumableLoader, ResumableSampler
from amortinv.ssl.methods import METHODS, ContrastivePretrainer, step_seed
from amortinv.ssl.run_folder import check_run_folder, discard_unresumable, merge_metrics, run_lock, start_run_folder

__all__ = ["PretrainConfig", "run_pretrain"]


class InputsOnly(Dataset):
    """A labelled dataset's inputs only (uint8 images or waveforms), for pre-training, indexed by
    (index, epoch) pairs (``ResumableSampler``). A dataset with random inputs (``input(k, generator)``,
    e.g. crops of long clips) draws them from a generator seeded by (seed, epoch, index): the same in
    every launch and in every worker process, so a resumed run sees the inputs of the uninterrupted one."""

    def __init__(self, base: Dataset, seed: int) -> None:
        self.base, self.seed = base, seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        k, epoch = key
        if hasattr(self.base, "input"):
            return self.base.input(k, torch.Generator().manual_seed(step_seed(self.seed, epoch, k)))
        return self.base[k][0]


class PretrainData(L.LightningDataModule):
    """Shuffled, seeded, rank-sharded batches of raw inputs (the sampler is set per epoch)."""

    def __init__(self, dataset: Dataset, batch_size: int, num_workers: int, seed: int) -> None:
        super().__init__()
        if len(dataset) < batch_size:
            raise ValueError(f"the dataset has {len(dataset)} images, fewer than one batch of {batch_size}")
        self.dataset, self.batch_size, self.num_workers, self.seed = (
            InputsOnly(dataset, seed),
            batch_size,
            num_workers,
            seed,
        )

    def train_dataloader(self) -> DataLoader:
        world, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer else (1, 0)
        sampler = ResumableSampler(
            self.dataset, num_replicas=world, rank=rank, shuffle=True, seed=self.seed, drop_last=True
        )
        return ResumableLoader(
            self.dataset,
            sampler,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )


def _subset(ds: Dataset, n: int, seed: int) -> Dataset:
    if n >= len(ds):
        return ds
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n]
    return torch.utils.data.Subset(ds, idx.tolist())


def _build_module(
    cfg: PretrainConfig,
    space: InvarianceSpace,
    fixed: list[float] | None,
    image_size: Any,
    lr: float,
    schedule: tuple[int, int],
    modality: Modality,
    train: Dataset,
) -> ContrastivePretrainer:
    encoder = build_encoder(
        cfg.encoder, invariance_dim=space.dim, **{**modality.encoder_options(train), **(cfg.encoder_options or {})}
    )
    if fixed is None and not encoder.conditioned:
        raise ValueError(
            f"encoder '{cfg.encoder}' is plain: pass --fixed-descriptor (e.g. 1,1) or use a hyper_/prompt_ encoder"
        )
    run = {
        "image_size": image_size,
        "modality": modality.name,
        "fixed_descriptor": fixed,
        "lr": lr,
        "schedule": schedule,
    }
    return METHODS[cfg.method].from_config(cfg, encoder, space, **run)


def drop_optimizer_state(path: Path) -> None:
    """Rewrite a finished run's checkpoint without the optimiser and scheduler states (the weights, heads and queues stay)."""
    if not path.is_file():
        return
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("optimizer_states", "lr_schedulers"):
        state.pop(key, None)
    AtomicCheckpointIO().save_checkpoint(state, path)


def _check_machine(cfg: PretrainConfig) -> None:
    """What the settings cannot check themselves: that this machine has the accelerator asked for."""
    if cfg.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"--accelerator {cfg.accelerator}: no CUDA GPU is visible to PyTorch here; use --accelerator cpu (or auto)"
        )


def _is_launch_rank_zero() -> bool:
    """True in the process that launches the run (DDP children and torchrun ranks > 0 set these variables)."""
    return all(int(os.environ.get(v, 0)) == 0 for v in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def read_checkpoint_step(path: Path, module: ContrastivePretrainer) -> int:
    """The global step of a checkpoint to resume from, after checking that it is a safe, complete
    checkpoint of this very model (tensors only, every parameter present with its shape)."""
    try:
        with warnings.catch_warnings():  # torch warns on the way to refusing a pickle: the one line below says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
        step, weights = int(state["global_step"]), state["state_dict"]
    except pickle.UnpicklingError:
        raise ValueError(
            f"--resume: {path} holds Python objects besides tensors; amortinv loads tensors only and refuses it"
        ) from None
    except Exception as err:  # truncated file, missing keys: "not a usable checkpoint"
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"--resume: {path} is not a readable amortinv checkpoint ({type(err).__name__}: {reason})"
        ) from None
    expected = module.state_dict()
    missing = sorted(set(expected) - set(weights))
    wrong = sorted(k for k in set(expected) & set(weights) if tuple(expected[k].shape) != tuple(weights[k].shape))
    if missing or wrong:
        detail = (f"missing {missing[:3]}" if missing else "") + (f" shapes differ for {wrong[:3]}" if wrong else "")
        raise ValueError(
            f"--resume: {path} does not hold this model's weights ({detail.strip()}); was it saved with other settings?"
        )
    return step


@dataclass
class _Run:
    """What a run works out from its settings before training: the data, sizes and learning rate."""

    space: InvarianceSpace
    modality: Modality
    fixed: list[float] | None
    out: Path
    launcher: bool
    train: Dataset
    reading: dict[str, Any]
    world: int
    global_batch: int
    lr: float
    schedule: tuple[int, int]


def _plan(cfg: PretrainConfig, space: InvarianceSpace | None) -> _Run:
    modality = MODALITIES[dataset_modality(cfg.data)]
    space = space or load_space(cfg.space or modality.default_space)
    fixed = parse_descriptors(cfg.fixed_descriptor, space)[0].tolist() if cfg.fixed_descriptor else None
    out = Path(cfg.out)
    launcher = _is_launch_rank_zero()
    if launcher:
        check_run_folder(cfg, out)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    reading = dict(image_size=cfg.image_size, sample_rate=cfg.sample_rate, clip_seconds=cfg.clip_seconds)
    train = build_dataset(cfg.data, cfg.data_root, "train", crop="random", **reading)
    world = cfg.num_nodes * (cfg.devices if isinstance(cfg.devices, int) else 1)
    global_batch = cfg.batch_size * world * cfg.accumulate
    lr = cfg.lr * {"none": 1.0, "linear": global_batch / 256, "sqrt": (global_batch / 256) ** 0.5}[cfg.lr_scale]
    per_epoch = max(1, len(train) // (cfg.batch_size * world) // cfg.accumulate)
    total = min(cfg.max_steps, cfg.epochs * per_epoch) if cfg.max_steps > 0 else cfg.epochs * per_epoch
    return _Run(space, modality, fixed, out, launcher, train, reading, world, global_batch, lr, (total, per_epoch))


def _labelled_test_split(cfg: PretrainConfig, run: _Run) -> Dataset | None:
    """The test split for kNN accuracy, or None (not asked for, missing, or without class labels)."""
    if not (cfg.knn_every or cfg.knn_eval):
        return None
    try:
        test = build_dataset(cfg.data, cfg.data_root, "test", **run.reading)
    except (FileNotFoundError, ValueError) as err:
        if run.launcher:
            print(f"amortinv: note: no kNN evaluation ({err})", file=sys.stderr)
        return None
    return None if torch.is_floating_point(torch.as_tensor(test[0][1])) else test


def _trainer(cfg: PretrainConfig, run: _Run, test: Dataset | None, extra: list[Callback]) -> L.Trainer:
    out = run.out
    callbacks = [
        *extra,
        ModelCheckpoint(
            dirpath=out / "checkpoints", filename="last", save_top_k=1, every_n_epochs=1, enable_version_counter=False
        ),
        Preemption(out / "checkpoints" / "last.ckpt"),
        *([StepProgressBar()] if cfg.progress else []),
    ]
    if cfg.knn_every and test is not None:
        bank, queries = _subset(run.train, min(cfg.knn_bank, 5000), cfg.seed), _subset(test, 1000, cfg.seed)
        at = torch.tensor(run.fixed) if run.fixed else torch.ones(run.space.dim)
        callbacks.append(KNNMonitor(bank, queries, at, cfg.knn_every))
    fresh = cfg.overwrite and not cfg.resume  # the folder is cleared once the Trainer exists
    launch = "launch0" if fresh else f"launch{len(list((out / 'logs').glob('launch*')))}"  # a resume logs beside
    loggers: list[Any] = [CSVLogger(out, name="logs", version=launch)]
    if cfg.logger == "tensorboard":
        loggers.append(TensorBoardLogger(out, name="logs", version=launch))
    return L.Trainer(
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
        precision=cfg.precision,
        sync_batchnorm=cfg.sync_batchnorm,
        max_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        accumulate_grad_batches=cfg.accumulate,
        callbacks=callbacks,
        logger=loggers,
        use_distributed_sampler=False,
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=cfg.progress,
        enable_model_summary=False,
        log_every_n_steps=1,
        default_root_dir=out,
    )


def _knn_descriptors(run: _Run) -> list[torch.Tensor]:
    """The descriptors kNN accuracy is measured at: the fixed one, or the space's candidates (audio7: 32 of 120)."""
    return [torch.tensor(run.fixed)] if run.fixed else list(run.space.candidate_descriptors())


def _fit(
    cfg: PretrainConfig, run: _Run, trainer: L.Trainer, module: ContrastivePretrainer, resume_hint: str
) -> tuple[float, int]:
    """Train (resuming from ``cfg.resume``); (wall time, the step it started at). A signal ends the process with
    128 + its number."""
    ckpt = None
    if cfg.resume:
        ckpt = run.out / "checkpoints" / "last.ckpt" if cfg.resume == "last" else Path(cfg.resume)
        if not ckpt.is_file():
            raise FileNotFoundError(f"checkpoint to resume from not found: {ckpt}")
    start_step = 0 if ckpt is None else read_checkpoint_step(ckpt, module)
    if run.launcher:
        start_run_folder(cfg, run.out)
    start = time.perf_counter()
    try:
        trainer.fit(module, datamodule=PretrainData(run.train, cfg.batch_size, cfg.num_workers, cfg.seed),
                    ckpt_path=ckpt, weights_only=True)  # fmt: skip
    except SIGTERMException:
        signum = next(c.signum for c in trainer.callbacks if isinstance(c, Preemption)) or signal.SIGTERM
        if run.launcher:
            last = run.out / "checkpoints" / "last.ckpt"
            print(f"amortinv: interrupted by {STOP_SIGNALS[signum]} at step {trainer.global_step}; {last} written: "
                  f"{resume_hint}", file=sys.stderr, flush=True)  # fmt: skip
        raise SystemExit(128 + signum) from None
    except Exception:
        if run.launcher and not cfg.resume:
            discard_unresumable(run.out)
        raise
    return time.perf_counter() - start, start_step


def _record(
    cfg: PretrainConfig, run: _Run, trainer: L.Trainer, module: ContrastivePretrainer, wall: float, start_step: int
) -> dict:
    """The run's ``result.json`` record (before kNN accuracy)."""
    space, fixed = run.space, run.fixed
    counts = torch.bincount(
        torch.tensor([module.descriptor_index(t) for t in range(trainer.global_step)] or [0]),
        minlength=len(space.training_descriptors()),
    )
    device = trainer.strategy.root_device  # Lightning moves the module back to the CPU after fit
    steps_run = trainer.global_step - start_step
    return {
        "method": cfg.method,
        "competitor": cfg.competitor,
        "baseline_fixed_descriptor": fixed,
        "encoder": module.encoder.config,
        "space": space.to_config(),
        "data": cfg.data,
        "steps": trainer.global_step,
        "epochs": trainer.current_epoch,
        "finished": (0 < cfg.max_steps <= trainer.global_step) or trainer.current_epoch >= cfg.epochs,
        "global_batch": run.global_batch,
        "lr": run.lr,
        "final_loss": float(trainer.callback_metrics.get("train/loss_epoch", float("nan"))),
        "wall_time_s": round(wall, 2),
        "images_per_s": round(steps_run * run.global_batch / wall, 1) if wall > 0 else None,
        "peak_memory_mb": round(peak_memory_mb(device), 1),
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "devices": run.world,
        "precision": cfg.precision,
        "seed": cfg.seed,
        "descriptor_counts": None
        if fixed
        else {space.label(d): int(c) for d, c in zip(space.training_descriptors(), counts)},
    }


def _finish(
    cfg: PretrainConfig,
    run: _Run,
    module: ContrastivePretrainer,
    test: Dataset | None,
    result: dict,
    device: torch.device,
) -> None:
    """Save the encoder, measure kNN accuracy on ``device``, slim the checkpoint, merge the logs, write ``result.json``."""
    module.encoder.to(device).eval()  # Lightning moves the module back to the CPU after fit
    meta = {k: result[k] for k in ("space", "method", "competitor", "steps")}
    save_encoder(run.out / "encoder", module.encoder, metadata={**meta, "fixed_descriptor": run.fixed})
    for name, extra in module.objective.extra_encoders().items():  # e.g. LooC++: <run>/embeddings
        save_encoder(run.out / name / "encoder", extra.to(device), metadata={**meta, "fixed_descriptor": run.fixed})
    if cfg.knn_eval and test is not None:
        bank = _subset(run.train, cfg.knn_bank, cfg.seed)
        desc = f"kNN top-1 ({len(bank)} bank, {len(test)} test images)"
        bar = tqdm(_knn_descriptors(run), desc=desc, unit="descriptor", disable=not cfg.progress)
        result["knn_top1"] = {
            run.space.label(d): round(knn_accuracy(module.encoder, bank, test, module.augment, d, device=device), 4)
            for d in bar
        }
    if result["finished"] and not cfg.keep_optimizer:
        drop_optimizer_state(run.out / "checkpoints" / "last.ckpt")
    merge_metrics(sorted((run.out / "logs").glob("launch*/metrics.csv")), run.out / "metrics.csv")
    result["config"] = {**asdict(cfg), "space": run.space.to_config()}
    write_json(run.out / "result.json", result)


def run_pretrain(
    cfg: PretrainConfig,
    space: InvarianceSpace | None = None,
    callbacks: list[Callback] | None = None,
    resume_hint: str = "continue with --resume last",
) -> dict[str, Any]:
    """Pre-train as ``cfg`` says (``space`` overrides ``cfg.space``); returns the ``result.json`` record.

    ``callbacks`` are extra Lightning callbacks (e.g. to watch the run); ``resume_hint`` ends the line printed
    when a signal stops the run (a command that wraps pre-training says how to continue it).

    Rank 0 writes the run folder; other ranks return an empty dict.
    """
    _check_machine(cfg)
    if cfg.resume == "auto":  # every rank decides before rank 0 can write a checkpoint (it waits for the others)
        cfg = replace(cfg, resume="last" if (Path(cfg.out) / "checkpoints" / "last.ckpt").is_file() else None)
    run = _plan(cfg, space)
    image_size = run.modality.view_size(run.train[0][0], cfg.image_size)
    module = _build_module(cfg, run.space, run.fixed, image_size, run.lr, run.schedule, run.modality, run.train)
    test = _labelled_test_split(cfg, run)
    trainer = _trainer(cfg, run, test, list(callbacks or []))
    with run_lock(run.out) if run.launcher else contextlib.nullcontext():
        wall, start_step = _fit(cfg, run, trainer, module, resume_hint)
        if not trainer.is_global_zero:
            return {}
        result = _record(cfg, run, trainer, module, wall, start_step)
        _finish(cfg, run, module, test, result, trainer.strategy.root_device)
        return result
