"""The Lightning callbacks of a pre-training run: preemption (SIGTERM / Ctrl-C), atomic checkpoints, the kNN
monitor and a progress bar that knows ``--max-steps``."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, TQDMProgressBar
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.utils.data import Dataset

from amortinv.ssl.knn import knn_accuracy

__all__ = ["STOP_SIGNALS", "Preemption", "AtomicCheckpointIO", "KNNMonitor", "StepProgressBar"]

STOP_SIGNALS = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT (Ctrl-C)"}


class Preemption(Callback):
    """SIGTERM (a scheduler preempting the job) or SIGINT (Ctrl-C): every rank stops after the same
    step, that step's metrics are logged, and ``last.ckpt`` is written there.

    The signal handler only sets a flag (and forwards the signal to the ranks this process launched);
    the ranks agree on the flag after each step, at the same point on every rank. Lightning's own
    handler runs a collective inside the handler, which deadlocks when the signal arrives while the
    ranks are in another collective (Lightning-AI/pytorch-lightning#20806), so it is replaced for the
    run (Lightning restores the previous handlers when ``fit`` ends). A second Ctrl-C stops at once,
    without a checkpoint.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.signum: int | None = None

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.signum = None

        def handler(signum: int, frame: Any) -> None:
            if signum == signal.SIGINT and self.signum == signal.SIGINT:
                raise KeyboardInterrupt
            if signum == signal.SIGINT and trainer.is_global_zero:
                print(
                    "\namortinv: Ctrl-C: stopping after this step with a checkpoint (Ctrl-C again stops at once, without one)",
                    file=sys.stderr,
                    flush=True,
                )
            self.signum = signum
            if isinstance(trainer.strategy.launcher, _SubprocessScriptLauncher):
                trainer.strategy.launcher.kill(signum)

        for signum in STOP_SIGNALS:
            signal.signal(signum, handler)

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if (batch_idx + 1) % trainer.accumulate_grad_batches:
            return  # mid-accumulation: stop after the optimiser step, or the accumulated batches would be lost on resume
        if trainer.strategy.reduce_boolean_decision(self.signum is not None, all=False):
            # log this step's metrics now: Lightning would after this hook, which the stop skips (the resumed run starts at the next step)
            trainer._logger_connector.on_batch_end()
            trainer._logger_connector.update_train_step_metrics()
            raise SIGTERMException

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException):
            trainer.save_checkpoint(self.path, weights_only=False)  # with the optimiser state: resume continues exactly


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written beside their final name (``.NAME.PID.tmp``) and moved into place.

    Lightning's default writes through a temporary file in the system's temp folder, which a kill
    during the write leaves behind (the checkpoint's size, where nobody looks); this one leaves it
    in ``checkpoints/``, where the run's next launch removes it (``remove_partial_checkpoints``).
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            torch.save(checkpoint, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


class KNNMonitor(Callback):
    """Logs ``val/knn_top1`` every ``every`` epochs on subsets of the labelled train/test splits."""

    def __init__(self, bank: Dataset, queries: Dataset, descriptor: torch.Tensor | None, every: int) -> None:
        self.bank, self.queries, self.descriptor, self.every = bank, queries, descriptor, every

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every:
            return
        acc = knn_accuracy(
            module.encoder, self.bank, self.queries, module.augment, self.descriptor, device=module.device
        )
        module.log("val/knn_top1", acc, prog_bar=True, sync_dist=False)


class StepProgressBar(TQDMProgressBar):
    """Lightning's bar, whose total for the epoch stops where ``--max-steps`` ends the run (Lightning's counts every
    batch of the epoch, so its time estimate ignored ``--max-steps``)."""

    @property
    def total_train_batches(self) -> int | float:
        total = super().total_train_batches
        trainer = self.trainer
        if trainer.max_steps is None or trainer.max_steps < 0:
            return total
        done = trainer.fit_loop.epoch_loop.batch_progress.current.ready
        left = (trainer.max_steps - trainer.global_step) * trainer.accumulate_grad_batches
        return min(total, done + left)
