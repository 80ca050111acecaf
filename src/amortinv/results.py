"""Run records: JSON results and peak-memory readings shared by the CLI and the benchmarks."""

from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import torch

__all__ = ["write_json", "peak_memory_mb", "MemoryMeter", "check_output_folder", "prepare_output_folder"]


def check_output_folder(out: str | Path, name: str = "--out") -> None:
    """Refuse an output folder that cannot be written, before any work (leaves nothing behind).

    Raises:
        ValueError: naming the option or argument (``name``) and the folder, when it is a file, lies under a file, or is not writable.
    """
    out = Path(out)
    existing = next((p for p in (out, *out.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ValueError(f"{name} {out}: {existing} is a file, not a folder")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {out}: {existing} is not writable")


def prepare_output_folder(out: Path, overwrite: bool, source: str | Path | None = None) -> None:
    """Make ``out`` ready for a command's files: refuse a non-empty folder (it may hold a trained run, whose
    ``result.json`` would then describe other weights) unless ``overwrite``, which empties it first; refuse the
    folder of ``source`` (the input being read) outright.

    Raises:
        ValueError: naming ``--out``, what it holds, and the options that resolve it.
    """
    check_output_folder(out)
    if source is not None:
        src = Path(source) if Path(source).is_dir() else Path(source).parent
        if out.exists() and out.resolve() == src.resolve():
            raise ValueError(f"--out {out} is the folder of the input {source}: choose another --out")
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if held and not overwrite:
        raise ValueError(
            f"--out {out} is not empty (it holds {', '.join(held[:4])}{', ...' if len(held) > 4 else ''}): "
            "--overwrite true replaces its contents, or choose another --out"
        )
    for child in out.iterdir() if held else ():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON (parent folders created; written to a temporary name and moved
    into place, so a failure never leaves half a file) and say where."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2) + "\n"  # serialise first: an unserialisable record writes nothing
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    print(f"wrote {path}")
    return path


def peak_memory_mb(device: str | torch.device = "cpu") -> float:
    """Peak memory so far: CUDA max allocated on a GPU, else this process's peak RSS (MiB)."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _release_free_memory() -> None:
    """Give freed heap memory back to the OS (glibc), so an RSS delta measures what comes next."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class MemoryMeter:
    """Peak memory used inside a ``with`` block, in MiB, relative to its start.

    CUDA: ``max_memory_allocated`` above the allocation at entry. CPU: the peak of this
    process's resident set size (sampled every ``interval`` seconds by a thread) above its value
    at entry: the "peak RSS delta". Freed heap memory is first returned to the OS (glibc's
    ``malloc_trim``); memory that earlier work keeps cached can still hide part of the delta, so
    compare methods measured in fresh processes (as ``benchmarks/transfer_cost.py`` does).
    """

    def __init__(self, device: str | torch.device = "cpu", interval: float = 0.005) -> None:
        self.device, self.interval, self.peak_mb = torch.device(device), interval, 0.0
        self._stop = threading.Event()

    def __enter__(self) -> MemoryMeter:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device) / 2**20
        else:
            _release_free_memory()
            self._start = self._peak = _rss_mb()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, _rss_mb())
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20 - self._start
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self._peak, _rss_mb()) - self._start
