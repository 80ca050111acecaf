"""Run records: JSON results and peak-memory readings shared by the CLI and the benchmarks."""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Any

import torch

__all__ = ["write_json", "peak_memory_mb"]


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON (parent folders created) and say where."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def peak_memory_mb(device: str | torch.device = "cpu") -> float:
    """Peak memory so far: CUDA max allocated on a GPU, else this process's peak RSS (MiB)."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
