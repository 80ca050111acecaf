"""A pre-training run's folder: one run per folder, checked before any work, never half-written.

A non-empty folder needs ``resume`` (same settings, unfinished run) or ``overwrite``; a live run
holds ``.lock``; a fresh run that fails before its first checkpoint leaves nothing behind; the CSV
metrics of a run's launches are merged with each step once.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from amortinv.ssl.config import RESUME_MAY_CHANGE, PretrainConfig

__all__ = ["check_run_folder", "discard_unresumable", "merge_metrics", "run_lock", "start_run_folder"]


def merge_metrics(parts: list[Path], dest: Path) -> None:
    """Concatenate the CSV metrics of every launch of a run (first launch first) into ``dest``.

    A resumed launch starts again at its checkpoint's step, so the rows an earlier launch logged
    from that step on (after the checkpoint, before it was killed) are dropped: each step once.
    """
    rows: list[dict[str, str]] = []
    columns: list[str] = []
    for part in parts:
        with open(part, newline="") as f:
            reader = csv.DictReader(f)
            columns += [c for c in reader.fieldnames or [] if c not in columns]
            new = list(reader)
        steps = [int(r["step"]) for r in new if r.get("step", "").isdigit()]
        if steps:
            rows = [r for r in rows if not r.get("step", "").isdigit() or int(r["step"]) < min(steps)]
        rows += new
    with open(dest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _settings(cfg: PretrainConfig) -> dict[str, Any]:
    return {k: v for k, v in asdict(cfg).items() if k not in RESUME_MAY_CHANGE}


def check_run_folder(cfg: PretrainConfig, out: Path) -> None:
    """Refuse to mix runs, before any work: a non-empty ``out`` needs ``resume`` (with the same
    settings, on an unfinished run) or ``overwrite``."""
    saved = out / "run_config.json"
    _refuse_if_locked(out)
    if cfg.resume:
        if saved.is_file():
            before, now = json.loads(saved.read_text()), json.loads(json.dumps(_settings(cfg)))
            changed = [
                f"{k}: {before.get(k)!r} -> {now.get(k)!r}"
                for k in sorted(set(before) | set(now))
                if before.get(k) != now.get(k)
            ]
            if changed:
                raise ValueError(
                    f"--resume: {out} was started with other settings ({'; '.join(changed)}); resume with the same "
                    "settings, or start a new run in another --out"
                )
        result = out / "result.json"
        if result.is_file() and json.loads(result.read_text()).get("finished"):
            raise ValueError(
                f"{out} holds a finished run ({json.loads(result.read_text()).get('steps')} steps): there is nothing to resume"
            )
    elif out.exists() and set(out.iterdir()) - set(_leftovers(out)) and not cfg.overwrite:
        raise ValueError(
            f"output folder {out} is not empty: --resume last continues that run, --overwrite true replaces it, "
            "or choose another --out"
        )


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, /proc/PID/stat field 22), or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _lock_record() -> dict[str, Any]:
    """What ``.lock`` holds: this process, where and when it started, and what it runs (a pid alone can be reused)."""
    pid = os.getpid()
    return {
        "pid": pid,
        "host": socket.gethostname(),
        "started": _process_start(pid),
        "command": " ".join(sys.argv[:2]) or "python",
    }


def _lock_owner(out: Path) -> str | None:
    """Who holds ``out``'s lock, if a live run does (``pid N`` or ``pid N on HOST``); None for no lock or a stale one.

    A lock is stale when it is not a record written by ``run_lock`` (garbage, or an old bare pid), or when
    its process is gone or is another process that reuses the pid (its start time differs). A lock
    from another host cannot be checked from here and counts as live.
    """
    try:
        lock = json.loads((out / ".lock").read_text())
        pid, host, started = int(lock["pid"]), str(lock["host"]), lock["started"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host != socket.gethostname():
        return f"pid {pid} on {host}"
    return f"pid {pid}" if started is not None and _process_start(pid) == started else None


def _refuse_if_locked(out: Path) -> None:
    owner = _lock_owner(out)
    if owner is not None and owner != f"pid {os.getpid()}":
        raise ValueError(
            f"{out} is in use by another run ({owner}); wait for it, choose another --out, "
            f"or delete {out / '.lock'} if that run is gone"
        )


def _leftovers(out: Path) -> list[Path]:
    """What a dead run leaves that is not part of any run: a stale ``.lock``, partial checkpoint writes."""
    return [p for p in (out / ".lock", *(out / "checkpoints").glob(".*.tmp")) if p.exists()]


@contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` (a record of this process) for the run; a live holder means another run uses the folder.
    A stale lock is taken over; a folder the lock created and the run left empty is removed on release."""
    _refuse_if_locked(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    (out / ".lock").write_text(json.dumps(_lock_record()))
    try:
        yield
    finally:
        (out / ".lock").unlink(missing_ok=True)
        if created and not any(out.iterdir()):
            out.rmdir()


def start_run_folder(cfg: PretrainConfig, out: Path) -> None:
    """Once everything is checked (and the lock is held): remove what a killed launch left (partial checkpoint
    writes), clear ``out`` if overwriting, and record the run's settings."""
    for partial in (out / "checkpoints").glob(".*.tmp"):
        print(
            f"amortinv: note: removing {partial}, a checkpoint write that a killed launch left unfinished",
            file=sys.stderr,
        )
        partial.unlink()
    if not cfg.resume:
        if cfg.overwrite and out.exists():
            for child in out.iterdir():  # everything but this run's own lock
                if child.name != ".lock":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        out.mkdir(parents=True, exist_ok=True)
        (out / "run_config.json").write_text(json.dumps(_settings(cfg), indent=2) + "\n")


def discard_unresumable(out: Path) -> None:
    """After a fresh run failed: remove what it wrote (logs, settings) unless a checkpoint lets it resume
    (``run_lock`` then removes the folder if it made it)."""
    if any((out / "checkpoints").glob("*.ckpt")):
        print(
            f"amortinv: the run failed; {out} keeps its checkpoints (--resume last continues from the last one)",
            file=sys.stderr,
        )
        return
    for child in out.iterdir():
        if child.name != ".lock":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
