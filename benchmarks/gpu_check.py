"""One prepared GPU check: the current code proven on a GPU in under ten minutes, and a bigger-budget CIFAR-10 comparison.

Parts, each in its own process with its own time limit, each writing ``OUT/<part>.json`` as soon
as it ends (a part cut off by its limit is recorded as such and the next one starts), and
``OUT/summary.md`` re-written after every part, so a run cut short still returns what it finished:

| part | limit (s) | what |
| --- | --- | --- |
| tests | 150 | ``pytest tests/gpu/test_gpu.py`` (log in ``OUT/pytest.log``) |
| augment | 90 | engine vs torchvision v2 (DataLoader) vs torchaug: 32x32 batch 512, 224x224 (from 256) batch 128; augmentation's share of an AI-SimCLR CIFAR-10 step; the audio engine |
| encoders | 100 | hyper vs plain ResNet-18 (width 1/4, 1/2, 1) and ResNet-50 training steps: images/s, peak memory; fp32 and bf16 (channels-last) |
| pretrain | 80 | CIFAR-10 pre-training throughput of AI-SimCLR and SimCLR, ResNet-18 width 1/2, bf16 (steps/s, images/s, memory) |
| comparison | the rest (``--budget`` 470 s in all) | AI-SimCLR and SimCLR pre-trained for the same steps (as many as fit), then kNN, CIFAR-10 transfer (classification, rotation, colour) and few-shot |

On the GPU machine (whose python3 holds torch, Lightning and the rest; no install needed, the
package is used from ``src``; the CIFAR-10 npz files copied into the repository and carried)::

    PYTHONPATH=src python3 benchmarks/gpu_check.py --out $OUT --cifar-root .gpu_data/cifar10

``--smoke`` runs every part on the CPU with tiny settings and synthetic data (a test runs it, so the
script cannot rot). No weights are written under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PARTS = {"tests": 150, "augment": 90, "encoders": 100, "pretrain": 80, "comparison": None}
SMOKE_LIMITS = {"tests": 240, "augment": 120, "encoders": 120, "pretrain": 240, "comparison": 400}


# ---------------------------------------------------------------- the parts (each runs in its own process)
def part_tests(args: argparse.Namespace) -> dict[str, Any]:
    log = Path(args.out) / "pytest.log"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-rfEs",
            str(ROOT / "tests" / "gpu" / "test_gpu.py"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    log.write_text(proc.stdout + proc.stderr)
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?)", proc.stdout)}
    return {"exit": proc.returncode, **counts}


def part_augment(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    sys.path.insert(0, str(HERE))
    from augment import step_share, time_engine, time_torchaug, time_torchvision
    from augment_audio import clips
    from augment_audio import time_engine as time_audio

    sizes = [(16, 16, 8)] if args.smoke else [(32, 32, 512), (224, 256, 128)]
    out: dict[str, Any] = {}
    workers = min(8, os.cpu_count() or 1)
    for size, src, batch in sizes:
        images = torch.randint(0, 256, (batch * (2 if args.smoke else 20), 3, src, src), dtype=torch.uint8)
        engine = time_engine(images.pin_memory() if args.device == "cuda" else images, size, batch, args.device)
        torchvision = time_torchvision(
            images[: batch * (2 if args.smoke else 4)], size, batch, 0 if args.smoke else workers
        )
        rec = {
            "source": f"{src}x{src}",
            "batch": batch,
            "engine_images_per_s": round(engine, 1),
            f"torchvision_v2_dataloader_{workers}_workers_images_per_s": round(torchvision, 1),
            "torchaug_images_per_s": _round(time_torchaug(images, size, batch, args.device)),
        }
        out[f"{size}x{size}"] = rec
        print(f"augment {size}x{size}: {rec}", flush=True)
    share = dict(batch=8, steps=2, width=0.0625) if args.smoke else dict(batch=512, steps=20, width=0.5)
    out["cifar10_step_share"] = step_share(share["batch"], share["steps"], args.device, width=share["width"])
    audio7 = torch.ones(7)
    waves = clips(16 if args.smoke else 2048)
    out["audio_engine_clips_per_s"] = round(time_audio(waves, 8 if args.smoke else 256, audio7, args.device), 1)
    return out


def part_encoders(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from amortinv.encoders import build_encoder

    configs = (
        [("resnet18", 0.0625)]
        if args.smoke
        else [("resnet18", 0.25), ("resnet18", 0.5), ("resnet18", 1.0), ("resnet50", 1.0)]
    )
    batch, repeats = (4, 1) if args.smoke else (128, 10)
    out: dict[str, Any] = {}
    for depth, width in configs:
        for precision in ("fp32", "bf16"):
            for kind in ("hyper", "plain"):
                name = f"hyper_{depth}" if kind == "hyper" else depth
                torch.manual_seed(0)
                enc = build_encoder(name, invariance_dim=2, cifar_stem=True, width=width).to(args.device).train()
                fmt = torch.channels_last if precision == "bf16" else torch.contiguous_format
                enc = enc.to(memory_format=fmt)
                opt = torch.optim.AdamW(enc.parameters(), lr=1e-3)
                views = torch.randn(2 * batch, 3, 32, 32, device=args.device).to(memory_format=fmt)
                i = torch.tensor([1.0, 0.0], device=args.device)

                def step() -> None:
                    with torch.autocast(args.device, dtype=torch.bfloat16, enabled=precision == "bf16"):
                        feats = F.normalize(enc(views, i).float(), dim=1)
                    loss = -(feats[:batch] * feats[batch:]).sum(1).mean()
                    opt.zero_grad(set_to_none=False)
                    loss.backward()
                    opt.step()

                _reset_peak(args.device)
                seconds = _timed(step, args.device, warmup=2, repeats=repeats)
                key = f"{name} width {width} {precision}"
                out[key] = {
                    "images_per_s": round(2 * batch / seconds, 1),
                    "step_ms": round(1e3 * seconds, 2),
                    "peak_memory_mb": _peak(args.device),
                    "parameters": sum(p.numel() for p in enc.parameters()),
                }
                print(f"encoders {key}: {out[key]}", flush=True)
                enc = opt = views = step = None  # free the device memory before the next model
    return out


def part_pretrain(args: argparse.Namespace) -> dict[str, Any]:
    out = {}
    for label, extra in (("AI-SimCLR", {}), ("SimCLR", {"encoder": "resnet18", "fixed_descriptor": "1,1"})):
        steps = 2 if args.smoke else 30
        with tempfile.TemporaryDirectory() as tmp:
            result = _pretrain(args, Path(tmp) / "run", steps=steps, knn=False, **extra)
        out[label] = {
            k: result.get(k)
            for k in ("steps", "wall_time_s", "images_per_s", "peak_memory_mb", "device", "precision", "global_batch")
        }
        out[label]["steps_per_s"] = round(result["steps"] / result["wall_time_s"], 3)
        print(f"pretrain {label}: {out[label]}", flush=True)
    return out


def part_comparison(args: argparse.Namespace) -> dict[str, Any]:
    """Both models for the same steps (planned from the pretrain part's throughput to fit this part's limit), then the protocols."""
    from amortinv.fewshot.command import fewshot_command
    from amortinv.transfer.command import transfer_command

    throughput = (
        json.loads((Path(args.out) / "pretrain.json").read_text()).get("result", {})
        if (Path(args.out) / "pretrain.json").is_file()
        else {}
    )
    seconds_per_step = max((1 / r["steps_per_s"] for r in throughput.values() if r.get("steps_per_s")), default=1.0)
    steps = 3 if args.smoke else max(50, min(20000, int(0.3 * args.limit / (2 * seconds_per_step))))
    work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    out: dict[str, Any] = {"steps_each": steps, "seconds_per_step_planned": round(seconds_per_step, 4)}
    runs = {}
    for label, extra in (("AI-SimCLR", {}), ("SimCLR", {"encoder": "resnet18", "fixed_descriptor": "1,1"})):
        result = _pretrain(args, work / label, steps=steps, knn=True, **extra)
        runs[label] = work / label
        out[label] = {
            "pretrain": {k: result.get(k) for k in ("steps", "epochs", "wall_time_s", "images_per_s", "knn_top1")}
        }
        _save(args, "comparison", out)
    data = _data(args)
    quick = (
        dict(train_limit=64, test_limit=32, i_steps=2, eval_every=1, i_batch_size=16, lams="0.01") if args.smoke else {}
    )
    start = time.perf_counter()
    transfer = transfer_command(
        encoder=str(runs["AI-SimCLR"]),
        plain_encoders=str(runs["SimCLR"]),
        task="classification,rotation,colour",
        out=str(work / "transfer"),
        device=args.device,
        **data,
        **quick,
    )
    out["transfer"] = {
        task: {m: {"test": r["test"], **({"i": r["i"]} if "i" in r else {})} for m, r in rec["methods"].items()}
        for task, rec in transfer["tasks"].items()
    }
    out["transfer_wall_s"] = round(time.perf_counter() - start, 1)
    _save(args, "comparison", out)
    fewshot = fewshot_command(
        encoder=str(runs["AI-SimCLR"]),
        plain_encoders=str(runs["SimCLR"]),
        episodes=3 if args.smoke else 300,
        ways=2 if args.smoke else 5,
        queries=2 if args.smoke else 15,
        out=str(work / "fewshot"),
        device=args.device,
        limit=64 if args.smoke else None,
        steps=2 if args.smoke else 20,
        **data,
    )
    out["fewshot"] = {
        setting: {m: v["mean"] for m, v in rec["accuracy"].items()} for setting, rec in fewshot["results"].items()
    }
    shutil.rmtree(work)  # the runs' weights never come back
    return out


# ---------------------------------------------------------------- helpers
def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _timed(fn: Any, device: str, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / repeats


def _reset_peak(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak(device: str) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if device == "cuda" else None


def _data(args: argparse.Namespace) -> dict[str, str]:
    return {"data": "npz", "data_root": args.tiny} if args.smoke else {"data": "cifar10", "data_root": args.cifar_root}


def _pretrain(args: argparse.Namespace, out: Path, steps: int, knn: bool, **extra: Any) -> dict[str, Any]:
    from amortinv.ssl.config import PretrainConfig
    from amortinv.ssl.pretrain import run_pretrain

    tiny = {"batch_size": 8, "encoder_options": {"width": 0.0625}, "proj_hidden": 32, "proj_dim": 16, "knn_bank": 64}
    full = {
        "batch_size": 512,
        "encoder_options": {"width": 0.5},
        "precision": "bf16-mixed",
        "num_workers": 4,
        "lr": 2e-3,
    }
    cfg = PretrainConfig(
        **_data(args),
        **(tiny if args.smoke else full),
        epochs=1000,
        max_steps=steps,
        knn_eval=knn,
        progress=False,
        accelerator="gpu" if args.device == "cuda" else "cpu",
        out=str(out),
        **extra,
    )
    return run_pretrain(cfg)


def _save(args: argparse.Namespace, part: str, result: dict[str, Any], **status: Any) -> None:
    record = {"part": part, "device": _device_name(args.device), "smoke": args.smoke, **status, "result": result}
    (Path(args.out) / f"{part}.json").write_text(json.dumps(record, indent=2) + "\n")


def _device_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name() if device == "cuda" else f"cpu ({os.cpu_count()} cores)"


def summary(out: Path) -> str:
    """A short Markdown summary of the parts written so far."""
    lines = ["# GPU check", ""]
    for part in PARTS:
        path = out / f"{part}.json"
        if not path.is_file():
            lines.append(f"- **{part}**: not run")
            continue
        rec = json.loads(path.read_text())
        lines.append(
            f"- **{part}** ({rec.get('status', 'ok')}, {rec.get('seconds', '?')} s, {rec.get('device')}): "
            + json.dumps(rec.get("result"))[:1500]
        )
    return "\n".join(lines) + "\n"


def run_part(args: argparse.Namespace) -> None:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    start = time.perf_counter()
    result = globals()[f"part_{args.part}"](args)
    _save(args, args.part, result, status="ok", seconds=round(time.perf_counter() - start, 1), limit_s=args.limit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="folder for the results (JSON per part, summary.md, pytest.log)")
    parser.add_argument(
        "--cifar-root", default=str(ROOT / ".gpu_data" / "cifar10"), help="folder of CIFAR-10's train.npz and test.npz"
    )
    parser.add_argument(
        "--budget", type=float, default=470.0, help="seconds for all parts (the comparison gets what is left)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="every part on the CPU with tiny settings and synthetic data"
    )
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated parts to run")
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--tiny", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.device = "cpu" if args.smoke else "cuda"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.part:
        run_part(args)
        return 0
    if args.smoke:
        args.tiny = _write_tiny(Path(tempfile.mkdtemp(prefix="gpu_check_tiny_")))
    elif not (Path(args.cifar_root) / "train.npz").is_file():
        parser.error(
            f"--cifar-root {args.cifar_root}: no train.npz there (copy ../shared/data/cifar10 into the repository, see the docstring)"
        )
    deadline = time.monotonic() + args.budget
    failed = 0
    for part in args.parts.split(","):
        limit = SMOKE_LIMITS[part] if args.smoke else (PARTS[part] or max(30.0, deadline - time.monotonic() - 10))
        cmd = [
            sys.executable,
            __file__,
            "--part",
            part,
            "--out",
            str(out),
            "--limit",
            str(limit),
            "--cifar-root",
            args.cifar_root,
            *(["--smoke", "--tiny", args.tiny] if args.smoke else []),
        ]
        start = time.perf_counter()
        print(f"== {part} (limit {limit:.0f} s)", flush=True)
        try:
            proc = subprocess.run(
                cmd, timeout=limit, env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, capture_output=True, text=True
            )
            status = (
                "ok"
                if proc.returncode == 0
                else f"failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:] or ''}"
            )
            print(proc.stdout[-3000:], proc.stderr[-3000:] if proc.returncode else "", flush=True)
        except subprocess.TimeoutExpired:
            status = f"cut off at its {limit:.0f} s limit"
        if status != "ok":
            failed += 1
            previous = (
                json.loads((out / f"{part}.json").read_text()).get("result", {})
                if (out / f"{part}.json").is_file()
                else {}
            )
            _save(args, part, previous, status=status, seconds=round(time.perf_counter() - start, 1), limit_s=limit)
        (out / "summary.md").write_text(summary(out))
        print(f"== {part}: {status}", flush=True)
    return 1 if failed else 0


def _write_tiny(root: Path) -> str:
    """A tiny labelled npz dataset (16x16, 4 classes) for the smoke run."""
    import numpy as np

    rng = np.random.default_rng(0)
    for split, n in (("train", 96), ("test", 64)):
        np.savez(
            root / f"{split}.npz", images=rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8), labels=np.arange(n) % 4
        )
    return str(root)


if __name__ == "__main__":
    sys.exit(main())
