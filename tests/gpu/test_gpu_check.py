"""The prepared GPU check (benchmarks/gpu_check.py) runs end to end on the CPU with tiny settings, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_smoke_run_writes_every_part(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    parts = {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    assert set(parts) == {"tests", "augment", "encoders", "pretrain", "comparison"}
    assert all(rec["status"] == "ok" and rec["smoke"] for rec in parts.values())
    assert parts["tests"]["result"]["skipped"] >= 1  # on the CPU every GPU test is skipped, and counted
    assert parts["augment"]["result"]["16x16"]["engine_images_per_s"] > 0
    assert parts["pretrain"]["result"]["AI-SimCLR"]["steps"] == 2
    comparison = parts["comparison"]["result"]
    assert (
        set(comparison["transfer"]) >= {"rotation", "colour"} and "i" in comparison["transfer"]["colour"]["ai_forward"]
    )
    assert comparison["AI-SimCLR"]["pretrain"]["knn_top1"] and comparison["fewshot"]
    summary = (tmp_path / "summary.md").read_text()
    assert all(f"**{part}** (ok" in summary for part in parts)
    assert len(list(tmp_path.iterdir())) <= 8  # the device tool brings back at most 8 files
    assert not list(tmp_path.rglob("*.safetensors")) and not list(tmp_path.rglob("*.ckpt"))  # no weights come back


def test_gpu_check_refuses_a_missing_cifar_root_in_one_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_check.py"),
            "--out",
            str(tmp_path),
            "--cifar-root",
            str(tmp_path / "none"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "no train.npz" in proc.stderr
