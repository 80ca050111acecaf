"""Time and peak memory of importing a full-size AI-MoCo-v2 Hyper-ResNet-50 checkpoint (random weights, the released file's layout).

Writes a synthetic ``hyper_resnet50_imagenet100-moco_2_checkpoint_0300.pth.tar`` in a temporary
folder (query and momentum encoders, three heads each, three queues of 65,536, an SGD momentum
buffer per trained tensor, scaler state: about 9.6 GB), then runs ``amortinv import`` on it in a
fresh process and records its wall time and peak memory (the growth of its resident set, sampled,
memory-mapped file pages included) against the size of the encoder it writes. Not run in CI
(minutes and ~10 GB of disk and memory)::

    python benchmarks/import_official.py --out benchmarks/results/import_official/result.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def write_checkpoint(path: Path) -> dict[str, float]:
    """The released file's layout at full size, random weights (built here, saved, and freed before the import runs)."""
    sys.path.insert(0, str(HERE.parent / "tests" / "encoders"))
    from test_import import official_backbone, official_checkpoint

    start = time.perf_counter()
    torch.manual_seed(0)
    ckpt = official_checkpoint(official_backbone(width=1.0), dim=128, queue=65536)
    built = time.perf_counter() - start
    torch.save(ckpt, path)
    return {
        "build_s": round(built, 1),
        "save_s": round(time.perf_counter() - start - built, 1),
        "file_gb": round(path.stat().st_size / 1e9, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(HERE / "results" / "import_official/result.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        ckpt = Path(tmp) / "hyper_resnet50_imagenet100-moco_2_checkpoint_0300.pth.tar"
        made = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import sys; sys.path.insert(0, {str(HERE)!r}); import import_official as m, json; "
                f"print(json.dumps(m.write_checkpoint(__import__('pathlib').Path({str(ckpt)!r}))))",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        written = json.loads(made.stdout.strip().splitlines()[-1])
        print(f"synthetic checkpoint: {written}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "amortinv.cli",
                "import",
                "--checkpoint",
                str(ckpt),
                "--out",
                str(Path(tmp) / "run"),
            ],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
        if proc.returncode:
            raise SystemExit(proc.stderr[-2000:])
        child_max_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        line = next(line for line in proc.stdout.splitlines() if line.startswith("imported"))
        encoder_mb = (Path(tmp) / "run" / "encoder.safetensors").stat().st_size / 2**20
    record = {
        "machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}",
        "checkpoint": written,
        "import_wall_s": round(wall, 1),
        "import_report": line,
        "encoder_file_mb": round(encoder_mb, 1),
        "import_peak_rss_growth_mb": float(re.search(r"peak memory ([\d,]+) MiB", line)[1].replace(",", "")),
        "max_rss_of_children_mb": round(child_max_rss_mb, 1),
        "note": "max_rss_of_children_mb is the largest peak RSS of any child process (the checkpoint writer's included); "
        "the import's own peak growth is in import_report (peak memory ... MiB)",
    }
    record["peak_over_encoder"] = round(record["import_peak_rss_growth_mb"] / encoder_mb, 3)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
