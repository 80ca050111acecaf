"""Issue 14's and issue 26's failure cases, run through the command line as a user meets them; a before/after table.

Each case runs ``python -m amortinv.cli ...`` (or a short Python call for the API cases) on tiny
data in a temporary folder and records the exit code, the ``amortinv:`` lines on stderr, whether a
traceback was printed and what was left in the output folder. "before" is what the issue reported
on the code it was filed against; "after" is measured by this run.

    python benchmarks/failure_cases.py --out benchmarks/results/failure_cases/result.json

(writes the JSON and, beside it, ``table.md``; about 5 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

MODEL = ["--encoder-options", '{"cifar_stem": true, "width": 0.0625}', "--proj-hidden", "32", "--proj-dim", "16"]
TINY = [*MODEL, "--batch-size", "16", "--progress", "false", "--knn-eval", "false"]


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "amortinv.cli", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def summary(proc: subprocess.CompletedProcess, out: Path | None = None) -> dict:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("amortinv:")]
    rec = {
        "exit": proc.returncode,
        "message": lines[-1][:220] if lines else None,
        "amortinv_lines": len(lines),
        "traceback": "Traceback" in proc.stderr,
    }
    if out is not None:
        rec["left_behind"] = sorted(p.name for p in out.iterdir()) if out.exists() else []
    return rec


def make_data(root: Path) -> dict[str, Path]:
    """Tiny npz datasets (good, empty, one class, 17x5), a corrupt image folder, files for the API cases."""
    rng = np.random.default_rng(0)
    paths = {}
    for name, n, shape, classes in (
        ("tiny", 96, (16, 16), 4),
        ("empty", 0, (8, 8), 1),
        ("one", 20, (8, 8), 1),
        ("wide", 32, (17, 5), 2),
    ):
        (root / name).mkdir()
        for split in ("train", "test"):
            np.savez(
                root / name / f"{split}.npz",
                images=rng.integers(0, 255, (n, *shape, 3), dtype=np.uint8),
                labels=np.arange(n) % classes,
            )
        paths[name] = root / name
    from PIL import Image

    for c in ("cat", "dog"):
        (root / "flat" / c).mkdir(parents=True)
        for k in range(3):
            Image.fromarray(np.full((16, 16, 3), 40 * k, np.uint8)).save(root / "flat" / c / f"{k}.png")
    (root / "flat" / "dog" / "2.png").write_bytes(b"not an image")
    paths["flat"] = root / "flat"
    (root / "lying").mkdir()
    (root / "lying" / "encoder.json").write_text(
        json.dumps({"format": "amortinv-encoder/1", "encoder": ["hyper_resnet18", 2]})
    )
    (root / "lying" / "encoder.safetensors").write_bytes(b"")
    (root / "latin.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (root / "file.txt").write_text("x")
    torch.save(
        {"global_step": 1, "state_dict": {"w": torch.zeros(1)}, "extra": argparse.Namespace()}, root / "pickled.ckpt"
    )
    torch.save({"state_dict": {}}, root / "keyless.ckpt")
    torch.save({"global_step": 1, "state_dict": {"objective.encoder.stem.weight": torch.zeros(3)}}, root / "other.ckpt")
    torch.save({"weight": torch.zeros(4)}, root / "unrelated.pth")
    clips = rng.normal(0, 0.1, (12, 800)).astype(np.float32)
    np.savez(root / "clips.npz", audio=clips, labels=np.arange(12) % 3, sample_rate=8000)
    clips[2, 10] = np.nan
    np.savez(root / "nan_clips.npz", audio=clips, labels=np.arange(12) % 3, sample_rate=8000)
    np.savez(root / "rate0.npz", audio=clips[:4] * 0, labels=np.arange(4), sample_rate=0)
    (root / "binary.json").write_bytes(b"\xff\xfe\x00binary")
    for name, text in (
        ("dead", json.dumps({"pid": 2**22 - 1, "host": os.uname().nodename, "started": "1"})),
        ("garbage", "not a lock"),
        ("pid1", "1"),
    ):
        (root / f"lock_{name}").mkdir()
        (root / f"lock_{name}" / ".lock").write_text(text)
    return paths


def start_long_run(out: Path, tiny: Path) -> tuple[list[str], subprocess.Popen]:
    """A 400-step pre-training in the background, returned once it has logged its first step (its arguments and process)."""
    args = [
        "pretrain",
        "--data",
        "npz",
        "--data-root",
        str(tiny),
        "--max-steps",
        "400",
        "--epochs",
        "100",
        *TINY,
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "amortinv.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    while not list(out.glob("logs/launch0/metrics.csv")) and proc.poll() is None:
        time.sleep(0.5)
    return args, proc


def preemption(root: Path, tiny: Path) -> dict:
    """SIGTERM mid-run; a second run on the live folder; resume with another seed; resume; metrics kept once."""
    out = root / "cut"
    args, proc = start_long_run(out, tiny)
    concurrent = summary(cli(*args, "--overwrite", "true"))
    if proc.poll() is not None:
        raise RuntimeError("the run ended before it could be preempted: give it more --max-steps")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    cut = summary(subprocess.CompletedProcess(args, proc.returncode, "", err), out)
    ckpt = out / "checkpoints" / "last.ckpt"
    cut["checkpoint_step"] = torch.load(ckpt, weights_only=True)["global_step"] if ckpt.is_file() else None
    other_seed = summary(cli(*args, "--resume", "last", "--seed", "9"))
    resumed = cli(*args, "--resume", "last")
    rows = list(csv.DictReader((out / "metrics.csv").open())) if (out / "metrics.csv").is_file() else []
    steps = [int(r["step"]) for r in rows if r.get("train/loss_step")]  # one loss row per step, launches merged
    logged_every_step = steps == list(range(400))
    again = summary(cli(*args, "--resume", "last"))
    return {
        "sigterm": cut,
        "second_run_on_a_live_folder": concurrent,
        "resume_with_another_seed": other_seed,
        "resume_after_sigterm": {
            **summary(resumed, out),
            "steps_logged_once": len(steps) == len(set(steps)),
            "every_step_logged_once": logged_every_step,
            "steps": json.loads((out / "result.json").read_text())["steps"]
            if (out / "result.json").is_file()
            else None,
        },
        "resume_a_finished_run": again,
    }


def cases(root: Path, p: dict[str, Path]) -> dict[str, dict]:
    """The remaining cases: name -> (command, output folder that must not be left behind)."""
    tiny, enc = p["tiny"], root / "enc"
    t, o = root / "t", root / "o"
    gpu = not torch.cuda.is_available()
    audio = ["--data", "audionpz", "--data-root"]
    run = ["--data", "npz", "--data-root", str(tiny), "--max-steps", "1", *TINY]
    table: dict[str, tuple[list[str], Path | None]] = {
        "fewshot --limit 0": (
            [
                "fewshot",
                "--encoder",
                str(enc),
                "--data",
                "npz",
                "--data-root",
                str(tiny),
                "--limit",
                "0",
                "--out",
                str(t),
            ],
            t,
        ),
        "pretrain --knn-bank -1": (["pretrain", "--knn-bank", "-1", "--out", str(o)], o),
        "transfer --lams nan": (
            [
                "transfer",
                "--encoder",
                str(enc),
                "--data",
                "npz",
                "--data-root",
                str(tiny),
                "--lams",
                "nan",
                "--out",
                str(t),
            ],
            t,
        ),
        "transfer --methods ai on a plain encoder": (
            [
                "transfer",
                "--encoder",
                str(root / "plain"),
                "--data",
                "npz",
                "--data-root",
                str(tiny),
                "--methods",
                "ai",
                "--out",
                str(t),
            ],
            t,
        ),
        "export --out into a trained run's folder": (
            ["export", "--encoder", str(enc), "--descriptor", "1,0", "--out", str(root / "other_run")],
            None,
        ),
        "bound --out under a file": (
            [
                "bound",
                "--empirical",
                "0.1",
                "--n",
                "100",
                "--x-norm",
                "1",
                "--b-norm",
                "1",
                "--out",
                str(root / "file.txt" / "b.json"),
            ],
            None,
        ),
        "--method mocov2 --queue-size 1e12": (
            ["pretrain", "--method", "mocov2", "--queue-size", "1000000000000", "--out", str(o)],
            o,
        ),
        "audionpz with NaN samples": (["pretrain", *audio, str(root / "nan_clips.npz"), "--out", str(o)], o),
        "audio data without --space": (
            [
                "pretrain",
                *audio,
                str(root / "clips.npz"),
                "--max-steps",
                "1",
                "--batch-size",
                "4",
                *MODEL,
                "--progress",
                "false",
                "--knn-eval",
                "false",
                "--out",
                str(root / "audio_run"),
            ],
            None,
        ),
        "audio data with a vision --space": (
            ["pretrain", *audio, str(root / "clips.npz"), "--space", "groups2", "--batch-size", "4", "--out", str(o)],
            o,
        ),
        "--sample-rate 0": (["pretrain", *audio, str(root / "clips.npz"), "--sample-rate", "0", "--out", str(o)], o),
        "--sample-rate -8000": (
            ["pretrain", *audio, str(root / "clips.npz"), "--sample-rate", "-8000", "--out", str(o)],
            o,
        ),
        "audionpz with sample_rate 0": (["pretrain", *audio, str(root / "rate0.npz"), "--out", str(o)], o),
        "image encoder on audio data": (
            ["transfer", "--encoder", str(enc), *audio, str(root / "clips.npz"), "--out", str(t)],
            t,
        ),
        "export --transfer not JSON": (
            ["export", "--encoder", str(enc), "--transfer", str(root / "binary.json"), "--out", str(t)],
            t,
        ),
        "measure --baseline conditioned": (
            [
                "measure",
                "--encoder",
                str(enc),
                "--baseline",
                str(enc),
                "--data",
                "npz",
                "--data-root",
                str(tiny),
                "--num-images",
                "4",
                "--reference-images",
                "4",
                "--out",
                str(t),
            ],
            t,
        ),
        "folder with only a stale .lock (dead pid)": (["pretrain", *run, "--out", str(root / "lock_dead")], None),
        "folder with only a .lock of garbage": (["pretrain", *run, "--out", str(root / "lock_garbage")], None),
        "folder with a .lock naming a live unrelated pid (1)": (
            ["pretrain", *run, "--out", str(root / "lock_pid1")],
            None,
        ),
        "transfer on a single .npz file": (
            [
                "transfer",
                "--encoder",
                str(enc),
                "--data",
                "npz",
                "--data-root",
                str(tiny / "train.npz"),
                "--out",
                str(t),
            ],
            t,
        ),
        "pretrain re-using a finished run's folder": (
            ["pretrain", "--data", "npz", "--data-root", str(tiny), "--max-steps", "2", *TINY, "--out", str(enc)],
            None,
        ),
        "pretrain --max-steps 0": (["pretrain", "--max-steps", "0", "--out", str(o)], o),
        "transfer --i-steps 0 (was --epochs 0)": (
            [
                "transfer",
                "--encoder",
                str(enc),
                "--data",
                "npz",
                "--data-root",
                str(tiny),
                "--task",
                "classification",
                "--methods",
                "ai_forward",
                "--baselines",
                "",
                "--i-steps",
                "0",
                "--out",
                str(root / "t0"),
            ],
            None,
        ),
        "bound --empirical above M": (
            ["bound", "--empirical", "1.5", "--n", "100", "--x-norm", "1", "--b-norm", "1"],
            None,
        ),
        "bound --empirical nan": (
            ["bound", "--empirical", "nan", "--n", "100", "--x-norm", "1", "--b-norm", "1"],
            None,
        ),
        "preview --image-size 0": (["preview", "--image-size", "0", "--out", str(root / "x.png")], None),
        "pretrain on 17x5 images": (
            ["pretrain", "--data", "npz", "--data-root", str(p["wide"]), "--max-steps", "2", *TINY, "--out", str(o)],
            o,
        ),
        "--resume a pickled checkpoint": (
            [
                "pretrain",
                "--data",
                "npz",
                "--data-root",
                str(tiny),
                *TINY,
                "--resume",
                str(root / "pickled.ckpt"),
                "--out",
                str(o),
            ],
            o,
        ),
        "--resume a truncated checkpoint": (
            [
                "pretrain",
                "--data",
                "npz",
                "--data-root",
                str(tiny),
                *TINY,
                "--resume",
                str(root / "truncated.ckpt"),
                "--out",
                str(o),
            ],
            o,
        ),
        "--resume a keyless checkpoint": (
            [
                "pretrain",
                "--data",
                "npz",
                "--data-root",
                str(tiny),
                *TINY,
                "--resume",
                str(root / "keyless.ckpt"),
                "--out",
                str(o),
            ],
            o,
        ),
        "--resume another model's checkpoint": (
            [
                "pretrain",
                "--data",
                "npz",
                "--data-root",
                str(tiny),
                *TINY,
                "--resume",
                str(root / "other.ckpt"),
                "--out",
                str(o),
            ],
            o,
        ),
        "corrupt image in an image folder (found during training)": (
            [
                "pretrain",
                "--data",
                "imagefolder",
                "--data-root",
                str(p["flat"]),
                *MODEL,
                "--batch-size",
                "2",
                "--epochs",
                "1",
                "--progress",
                "false",
                "--out",
                str(o),
            ],
            o,
        ),
        "empty .npz": (["pretrain", "--data", "npz", "--data-root", str(p["empty"]), "--out", str(o)], o),
        "lying encoder.json": (["transfer", "--encoder", str(root / "lying"), "--out", str(t)], t),
        "--temperature 0": (["pretrain", "--temperature", "0", "--out", str(o)], o),
        "preview --out under a file": (["preview", "--out", str(root / "file.txt" / "grid.png")], None),
        "--finetune-stages x": (
            [
                "transfer",
                "--encoder",
                str(enc),
                "--data",
                "npz",
                "--data-root",
                str(tiny),
                "--finetune-stages",
                "x",
                "--out",
                str(t),
            ],
            t,
        ),
        "transfer --batch-size 0": (["transfer", "--encoder", str(enc), "--batch-size", "0", "--out", str(t)], t),
        "measure --num-images 0": (["measure", "--encoder", str(enc), "--num-images", "0", "--out", str(t)], t),
        "transfer --train-limit 2": (
            [
                "transfer",
                "--encoder",
                str(enc),
                "--data",
                "npz",
                "--data-root",
                str(tiny),
                "--train-limit",
                "2",
                "--out",
                str(t),
            ],
            t,
        ),
        "single-class dataset": (
            ["transfer", "--encoder", str(enc), "--data", "npz", "--data-root", str(p["one"]), "--out", str(t)],
            t,
        ),
        "space YAML not UTF-8": (["preview", "--space", str(root / "latin.yaml"), "--out", str(root / "x.png")], None),
        "interpolation with three descriptors": (
            ["measure", "--encoder", str(enc), "--interpolate", "1,1->1,0->0,1", "--out", str(t)],
            t,
        ),
        "measure --steps 1": (
            ["measure", "--encoder", str(enc), "--interpolate", "1,0->0,1", "--steps", "1", "--out", str(t)],
            t,
        ),
        "measure unknown --grid-transform": (
            ["measure", "--encoder", str(enc), "--grid-transform", "warp", "--out", str(t)],
            t,
        ),
        "config file that does not parse": (["pretrain", "--config", str(root / "bad.yaml")], None),
        "transfer --out under a file": (
            ["transfer", "--encoder", str(enc), "--out", str(root / "file.txt" / "t")],
            None,
        ),
    }
    if gpu:
        table |= {
            f"{cmd} {flag} {value} without a GPU": (
                [
                    cmd,
                    *(["--encoder", str(enc)] if cmd in ("transfer", "fewshot", "measure") else []),
                    flag,
                    value,
                    "--out",
                    str(o),
                ],
                o,
            )
            for cmd, flag, value in (
                ("pretrain", "--accelerator", "gpu"),
                ("transfer", "--device", "cuda"),
                ("fewshot", "--device", "cuda"),
                ("measure", "--device", "cuda"),
                ("demo", "--device", "cuda"),
            )
        }
    (root / "bad.yaml").write_text("lr: [1\n")
    import shutil

    shutil.copytree(enc, root / "other_run")
    made = cli("export", "--encoder", str(enc), "--descriptor", "1,1", "--out", str(root / "plain"))
    assert made.returncode == 0, made.stderr[-2000:]
    (root / "truncated.ckpt").write_bytes((root / "enc" / "checkpoints" / "last.ckpt").read_bytes()[:2000])
    results = {}
    for name, (args, out) in table.items():
        start = time.perf_counter()
        results[name] = {**summary(cli(*args), out), "seconds": round(time.perf_counter() - start, 1)}
        print(f"{name}: {results[name]}", flush=True)
    results["pretrain kNN on a single .npz file"] = knn_on_single_file(root, tiny)
    other = root / "other_run"
    results["export --out into a trained run's folder"]["left_behind"] = sorted(p.name for p in other.iterdir())
    results["export --out into a trained run's folder"]["encoder_unchanged"] = (
        other / "encoder.safetensors"
    ).read_bytes() == (enc / "encoder.safetensors").read_bytes()
    for name, code in API_CASES.items():
        results[name] = summary(python(code.format(root=root)))
    results["load_pretrained_vit on an unrelated file"] = summary(
        python(
            f"from amortinv.encoders import build_encoder, load_pretrained_vit\n"
            f"try:\n    load_pretrained_vit(build_encoder('prompt_vit_tiny', invariance_dim=2, img_size=32, patch_size=8, depth=2), '{root / 'unrelated.pth'}')\n"
            f"except ValueError as e:\n    import sys; print('amortinv: ValueError:', e, file=sys.stderr); sys.exit(2)"
        )
    )
    return results


API_CASES = {  # library calls a user makes directly: a ValueError naming the argument is printed as one amortinv: line
    name: "import sys\ntry:\n    "
    + call
    + "\nexcept ValueError as e:\n    print('amortinv: ValueError:', e, file=sys.stderr); sys.exit(2)"
    for name, call in {
        "generalisation_bound(empirical=nan)": "from amortinv.theory import generalisation_bound; generalisation_bound(float('nan'), 100, 10, 1.0, 1.0, 4)",
        "generalisation_bound(empirical > M)": "from amortinv.theory import generalisation_bound; generalisation_bound(1.5, 100, 10, 1.0, 1.0, 4, m=1.0)",
        "materialise('1,0')": "from amortinv.encoders import build_encoder; build_encoder('hyper_resnet18', 2, width=0.0625).materialise('1,0')",
        "save_encoder under a file": "from amortinv.encoders import build_encoder, save_encoder; save_encoder('{root}/file.txt/enc', build_encoder('resnet18', width=0.0625))",
        "build_encoder(width='abc')": "from amortinv.encoders import build_encoder; build_encoder('hyper_resnet18', 2, width='abc')",
    }.items()
}


def interrupt(root: Path, tiny: Path) -> dict:
    """Ctrl-C mid-run: exit 130 with a checkpoint; a partial checkpoint write planted (as a kill mid-write leaves it); resume."""
    out = root / "ctrl_c"
    args, proc = start_long_run(out, tiny)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    cut = summary(subprocess.CompletedProcess(args, proc.returncode, "", err), out)
    ckpt = out / "checkpoints" / "last.ckpt"
    cut["checkpoint_step"] = torch.load(ckpt, weights_only=True)["global_step"] if ckpt.is_file() else None
    partial = out / "checkpoints" / ".last.ckpt.99999.tmp"
    partial.write_bytes(b"partial")
    resumed = cli(*args, "--resume", "last")
    rows = list(csv.DictReader((out / "metrics.csv").open())) if (out / "metrics.csv").is_file() else []
    steps = [int(r["step"]) for r in rows if r.get("train/loss_step")]
    return {
        "ctrl_c": cut,
        "resume_after_ctrl_c": {
            **summary(resumed, out),
            "partial_write_removed": not partial.exists(),
            "every_step_logged_once": steps == list(range(400)),
        },
    }


def knn_on_single_file(root: Path, tiny: Path) -> dict:
    out = root / "single"
    proc = cli(
        "pretrain",
        "--data",
        "npz",
        "--data-root",
        str(tiny / "train.npz"),
        "--max-steps",
        "2",
        *MODEL,
        "--batch-size",
        "16",
        "--progress",
        "false",
        "--knn-eval",
        "true",
        "--out",
        str(out),
    )
    result = json.loads((out / "result.json").read_text()) if (out / "result.json").is_file() else {}
    return {**summary(proc), "knn_top1_reported": "knn_top1" in result}


BEFORE = {  # what issue 14 reported on the code it was filed against
    "sigterm": "exit 0, only '[rank: 0] Received SIGTERM: 15', no result, no checkpoint",
    "second_run_on_a_live_folder": "both ran, metrics.csv merged",
    "resume_with_another_seed": "accepted silently, result.json rewritten",
    "resume_after_sigterm": "(no checkpoint to resume); merged metrics repeated steps",
    "resume_a_finished_run": "exit 0, result.json overwritten with loss NaN, 0 images/s",
    "transfer on a single .npz file": "exit 0, test scores on the training images",
    "pretrain kNN on a single .npz file": "exit 0, knn_top1 on the training images",
    "pretrain re-using a finished run's folder": "exit 0, runs merged (last.ckpt old, last-v1.ckpt new)",
    "pretrain --max-steps 0": "exit 0, untrained encoder, loss NaN",
    "transfer --i-steps 0 (was --epochs 0)": "exit 0, start value 0.5 reported as learned (selected epoch -1)",
    "bound --empirical above M": "accepted",
    "bound --empirical nan": "accepted",
    "preview --image-size 0": "meant native size",
    "pretrain on 17x5 images": "trained at 5x5",
    "load_pretrained_vit on an unrelated file": "loaded 0 tensors without complaint",
    "--resume a pickled checkpoint": "UnpicklingError traceback (suggesting weights_only=False)",
    "--resume a truncated checkpoint": "traceback",
    "--resume a keyless checkpoint": "KeyError traceback",
    "--resume another model's checkpoint": "RuntimeError traceback",
    "corrupt image in an image folder (found during training)": "OSError traceback after training started, logs/ left",
    "empty .npz": "IndexError traceback",
    "lying encoder.json": "TypeError/AttributeError traceback",
    "--temperature 0": "traceback saying 'lower the lr'",
    "preview --out under a file": "traceback",
    "--finetune-stages x": "vague one-liner",
    "transfer --batch-size 0": "'range() arg 3 must not be zero'",
    "measure --num-images 0": "vague one-liner",
    "transfer --train-limit 2": "vague one-liner",
    "single-class dataset": "'num_classes ... larger than 1'",
    "space YAML not UTF-8": "file not named",
    "interpolation with three descriptors": "vague; checked after the whole measurement",
    "measure --steps 1": "checked after the whole measurement (a lone radar.png left)",
    "measure unknown --grid-transform": "checked after the whole measurement (a lone radar.png left)",
    "config file that does not parse": "35-line usage block before the line",
    "transfer --out under a file": "found after all training (issue: read-only --out)",
    # issue 26
    "ctrl_c": "exit 1, no checkpoint, no resume hint",
    "resume_after_ctrl_c": "(nothing to resume); a killed write left a temp file in /tmp",
    "fewshot --limit 0": "exit 0, taken as no limit",
    "pretrain --knn-bank -1": "exit 0, meant every training image",
    "transfer --lams nan": "exit 0, NaN lambda, degenerate accuracy written",
    "transfer --methods ai on a plain encoder": "exit 0, ai dropped silently",
    "export --out into a trained run's folder": "exit 0, encoder replaced, old result.json kept",
    "bound --out under a file": "FileExistsError traceback",
    "--method mocov2 --queue-size 1e12": "tried to allocate 384 TB",
    "audionpz with NaN samples": "FloatingPointError traceback: 'lower the lr'",
    "audio data without --space": "exit 2: groups2 ops unknown",
    "audio data with a vision --space": "exit 2 without the fix",
    "--sample-rate 0": "the resampler's text, no option name",
    "--sample-rate -8000": "the resampler's text, no option name",
    "audionpz with sample_rate 0": "'clip length must be >= 1 sample'",
    "image encoder on audio data": "'encoder input must have shape (B, 3, H, W)'",
    "export --transfer not JSON": "UTF-8 decode error, no file name",
    "measure --baseline conditioned": "failed after measuring the main encoder, --baseline not named",
    "folder with only a stale .lock (dead pid)": "refused as not empty",
    "folder with only a .lock of garbage": "refused as not empty",
    "folder with a .lock naming a live unrelated pid (1)": "refused as in use",
    "generalisation_bound(empirical=nan)": "returned numbers",
    "generalisation_bound(empirical > M)": "returned numbers",
    "materialise('1,0')": "TypeError: new(): invalid data type 'str'",
    "save_encoder under a file": "FileExistsError",
    "build_encoder(width='abc')": "comparison TypeError",
}


def markdown(results: dict[str, dict]) -> str:
    lines = [
        "| case | before (issue 14 or 26) | after: exit | after: message | traceback | left behind |",
        "|" + " --- |" * 6,
    ]
    for name, rec in results.items():
        before = next(
            (v for k, v in BEFORE.items() if name.startswith(k) or k == name), "traceback" if "GPU" in name else ""
        )
        left = ", ".join(rec.get("left_behind", [])) or ("nothing" if "left_behind" in rec else "-")
        extra = "; ".join(
            f"{k} {v}"
            for k, v in rec.items()
            if k
            in (
                "checkpoint_step",
                "steps",
                "steps_logged_once",
                "knn_top1_reported",
                "every_step_logged_once",
                "partial_write_removed",
                "encoder_unchanged",
            )
        )
        message = (rec["message"] or "").replace("|", "\\|") + (f" ({extra})" if extra else "")
        lines.append(
            f"| {name} | {before} | {rec['exit']} | {message} | {'yes' if rec['traceback'] else 'no'} | {left} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="benchmarks/results/failure_cases/result.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = make_data(root)
        made = cli(
            "pretrain",
            "--data",
            "npz",
            "--data-root",
            str(paths["tiny"]),
            "--max-steps",
            "3",
            "--epochs",
            "1",
            *TINY,
            "--out",
            str(root / "enc"),
        )
        assert made.returncode == 0, made.stderr[-2000:]
        results = preemption(root, paths["tiny"])
        results |= interrupt(root, paths["tiny"])
        results |= cases(root, paths)
    record = {"machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}", "cases": results}
    out = Path(args.out)
    out.write_text(json.dumps(record, indent=2) + "\n")
    out.with_name("table.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
