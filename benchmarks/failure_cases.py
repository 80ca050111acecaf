"""Issue 14's failure cases, run through the command line as a user meets them; a before/after table.

Each case runs ``python -m amortinv.cli ...`` (or a short Python call for the API cases) on tiny
data in a temporary folder and records the exit code, the ``amortinv:`` lines on stderr, whether a
traceback was printed and what was left in the output folder. "before" is what the issue reported
on the code it was filed against; "after" is measured by this run.

    python benchmarks/failure_cases.py --out benchmarks/results/failure_cases.json

(writes the JSON and, beside it, ``failure_cases.md``; about 5 minutes on 2 CPU cores).
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
    return subprocess.run([sys.executable, "-m", "amortinv.cli", *args], capture_output=True, text=True, timeout=timeout, env=env)


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def summary(proc: subprocess.CompletedProcess, out: Path | None = None) -> dict:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("amortinv:")]
    rec = {"exit": proc.returncode, "message": lines[-1][:220] if lines else None, "amortinv_lines": len(lines),
           "traceback": "Traceback" in proc.stderr}
    if out is not None:
        rec["left_behind"] = sorted(p.name for p in out.iterdir()) if out.exists() else []
    return rec


def make_data(root: Path) -> dict[str, Path]:
    """Tiny npz datasets (good, empty, one class, 17x5), a corrupt image folder, files for the API cases."""
    rng = np.random.default_rng(0)
    paths = {}
    for name, n, shape, classes in (("tiny", 96, (16, 16), 4), ("empty", 0, (8, 8), 1), ("one", 20, (8, 8), 1), ("wide", 32, (17, 5), 2)):
        (root / name).mkdir()
        for split in ("train", "test"):
            np.savez(root / name / f"{split}.npz", images=rng.integers(0, 255, (n, *shape, 3), dtype=np.uint8),
                     labels=np.arange(n) % classes)
        paths[name] = root / name
    from PIL import Image

    for c in ("cat", "dog"):
        (root / "flat" / c).mkdir(parents=True)
        for k in range(3):
            Image.fromarray(np.full((16, 16, 3), 40 * k, np.uint8)).save(root / "flat" / c / f"{k}.png")
    (root / "flat" / "dog" / "2.png").write_bytes(b"not an image")
    paths["flat"] = root / "flat"
    (root / "lying").mkdir()
    (root / "lying" / "encoder.json").write_text(json.dumps({"format": "amortinv-encoder/1", "encoder": ["hyper_resnet18", 2]}))
    (root / "lying" / "encoder.safetensors").write_bytes(b"")
    (root / "latin.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (root / "file.txt").write_text("x")
    torch.save({"global_step": 1, "state_dict": {"w": torch.zeros(1)}, "extra": argparse.Namespace()}, root / "pickled.ckpt")
    torch.save({"state_dict": {}}, root / "keyless.ckpt")
    torch.save({"global_step": 1, "state_dict": {"objective.encoder.stem.weight": torch.zeros(3)}}, root / "other.ckpt")
    torch.save({"weight": torch.zeros(4)}, root / "unrelated.pth")
    return paths


def preemption(root: Path, tiny: Path) -> dict:
    """SIGTERM mid-run; a second run on the live folder; resume with another seed; resume; metrics kept once."""
    out = root / "cut"
    args = ["pretrain", "--data", "npz", "--data-root", str(tiny), "--max-steps", "400", "--epochs", "100", *TINY, "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "amortinv.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    while not list(out.glob("logs/launch0/metrics.csv")) and proc.poll() is None:
        time.sleep(0.5)
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
    again = summary(cli(*args, "--resume", "last"))
    return {"sigterm": cut, "second_run_on_a_live_folder": concurrent, "resume_with_another_seed": other_seed,
            "resume_after_sigterm": {**summary(resumed, out), "steps_logged_once": len(steps) == len(set(steps)),
                                     "steps": json.loads((out / "result.json").read_text())["steps"] if (out / "result.json").is_file() else None},
            "resume_a_finished_run": again}


def cases(root: Path, p: dict[str, Path]) -> dict[str, dict]:
    """The remaining cases: name -> (command, output folder that must not be left behind)."""
    tiny, enc = p["tiny"], root / "enc"
    t, o = root / "t", root / "o"
    gpu = not torch.cuda.is_available()
    table: dict[str, tuple[list[str], Path | None]] = {
        "transfer on a single .npz file": (["transfer", "--encoder", str(enc), "--data", "npz", "--data-root", str(tiny / "train.npz"), "--out", str(t)], t),
        "pretrain re-using a finished run's folder": (["pretrain", "--data", "npz", "--data-root", str(tiny), "--max-steps", "2", *TINY, "--out", str(enc)], None),
        "pretrain --max-steps 0": (["pretrain", "--max-steps", "0", "--out", str(o)], o),
        "transfer --i-steps 0 (was --epochs 0)": (["transfer", "--encoder", str(enc), "--data", "npz", "--data-root", str(tiny), "--task", "classification",
                                                   "--methods", "ai_forward", "--baselines", "", "--i-steps", "0", "--out", str(root / "t0")], None),
        "bound --empirical above M": (["bound", "--empirical", "1.5", "--n", "100", "--x-norm", "1", "--b-norm", "1"], None),
        "bound --empirical nan": (["bound", "--empirical", "nan", "--n", "100", "--x-norm", "1", "--b-norm", "1"], None),
        "preview --image-size 0": (["preview", "--image-size", "0", "--out", str(root / "x.png")], None),
        "pretrain on 17x5 images": (["pretrain", "--data", "npz", "--data-root", str(p["wide"]), "--max-steps", "2", *TINY, "--out", str(o)], o),
        "--resume a pickled checkpoint": (["pretrain", "--data", "npz", "--data-root", str(tiny), *TINY, "--resume", str(root / "pickled.ckpt"), "--out", str(o)], o),
        "--resume a truncated checkpoint": (["pretrain", "--data", "npz", "--data-root", str(tiny), *TINY, "--resume", str(root / "truncated.ckpt"), "--out", str(o)], o),
        "--resume a keyless checkpoint": (["pretrain", "--data", "npz", "--data-root", str(tiny), *TINY, "--resume", str(root / "keyless.ckpt"), "--out", str(o)], o),
        "--resume another model's checkpoint": (["pretrain", "--data", "npz", "--data-root", str(tiny), *TINY, "--resume", str(root / "other.ckpt"), "--out", str(o)], o),
        "corrupt image in an image folder (found during training)": (["pretrain", "--data", "imagefolder", "--data-root", str(p["flat"]), *MODEL,
                                                                      "--batch-size", "2", "--epochs", "1", "--progress", "false", "--out", str(o)], o),
        "empty .npz": (["pretrain", "--data", "npz", "--data-root", str(p["empty"]), "--out", str(o)], o),
        "lying encoder.json": (["transfer", "--encoder", str(root / "lying"), "--out", str(t)], t),
        "--temperature 0": (["pretrain", "--temperature", "0", "--out", str(o)], o),
        "preview --out under a file": (["preview", "--out", str(root / "file.txt" / "grid.png")], None),
        "--finetune-stages x": (["transfer", "--encoder", str(enc), "--data", "npz", "--data-root", str(tiny), "--finetune-stages", "x", "--out", str(t)], t),
        "transfer --batch-size 0": (["transfer", "--encoder", str(enc), "--batch-size", "0", "--out", str(t)], t),
        "measure --num-images 0": (["measure", "--encoder", str(enc), "--num-images", "0", "--out", str(t)], t),
        "transfer --train-limit 2": (["transfer", "--encoder", str(enc), "--data", "npz", "--data-root", str(tiny), "--train-limit", "2", "--out", str(t)], t),
        "single-class dataset": (["transfer", "--encoder", str(enc), "--data", "npz", "--data-root", str(p["one"]), "--out", str(t)], t),
        "space YAML not UTF-8": (["preview", "--space", str(root / "latin.yaml"), "--out", str(root / "x.png")], None),
        "interpolation with three descriptors": (["measure", "--encoder", str(enc), "--interpolate", "1,1->1,0->0,1", "--out", str(t)], t),
        "measure --steps 1": (["measure", "--encoder", str(enc), "--interpolate", "1,0->0,1", "--steps", "1", "--out", str(t)], t),
        "measure unknown --grid-transform": (["measure", "--encoder", str(enc), "--grid-transform", "warp", "--out", str(t)], t),
        "config file that does not parse": (["pretrain", "--config", str(root / "bad.yaml")], None),
        "transfer --out under a file": (["transfer", "--encoder", str(enc), "--out", str(root / "file.txt" / "t")], None),
    }
    if gpu:
        table |= {f"{cmd} {flag} {value} without a GPU": ([cmd, *(["--encoder", str(enc)] if cmd in ("transfer", "fewshot", "measure") else []), flag, value, "--out", str(o)], o)
                  for cmd, flag, value in (("pretrain", "--accelerator", "gpu"), ("transfer", "--device", "cuda"), ("fewshot", "--device", "cuda"),
                                           ("measure", "--device", "cuda"), ("demo", "--device", "cuda"))}
    (root / "bad.yaml").write_text("lr: [1\n")
    (root / "truncated.ckpt").write_bytes((root / "enc" / "checkpoints" / "last.ckpt").read_bytes()[:2000])
    results = {}
    for name, (args, out) in table.items():
        start = time.perf_counter()
        results[name] = {**summary(cli(*args), out), "seconds": round(time.perf_counter() - start, 1)}
        print(f"{name}: {results[name]}", flush=True)
    results["pretrain kNN on a single .npz file"] = knn_on_single_file(root, tiny)
    results["load_pretrained_vit on an unrelated file"] = summary(python(
        f"from amortinv.encoders import build_encoder, load_pretrained_vit\n"
        f"try:\n    load_pretrained_vit(build_encoder('prompt_vit_tiny', invariance_dim=2, img_size=32, patch_size=8, depth=2), '{root / 'unrelated.pth'}')\n"
        f"except ValueError as e:\n    import sys; print('amortinv: ValueError:', e, file=sys.stderr); sys.exit(2)"))
    return results


def knn_on_single_file(root: Path, tiny: Path) -> dict:
    out = root / "single"
    proc = cli("pretrain", "--data", "npz", "--data-root", str(tiny / "train.npz"), "--max-steps", "2", *MODEL, "--batch-size", "16", "--progress", "false", "--knn-eval", "true", "--out", str(out))
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
    "bound --empirical above M": "accepted", "bound --empirical nan": "accepted",
    "preview --image-size 0": "meant native size", "pretrain on 17x5 images": "trained at 5x5",
    "load_pretrained_vit on an unrelated file": "loaded 0 tensors without complaint",
    "--resume a pickled checkpoint": "UnpicklingError traceback (suggesting weights_only=False)",
    "--resume a truncated checkpoint": "traceback", "--resume a keyless checkpoint": "KeyError traceback",
    "--resume another model's checkpoint": "RuntimeError traceback",
    "corrupt image in an image folder (found during training)": "OSError traceback after training started, logs/ left",
    "empty .npz": "IndexError traceback", "lying encoder.json": "TypeError/AttributeError traceback",
    "--temperature 0": "traceback saying 'lower the lr'", "preview --out under a file": "traceback",
    "--finetune-stages x": "vague one-liner", "transfer --batch-size 0": "'range() arg 3 must not be zero'",
    "measure --num-images 0": "vague one-liner", "transfer --train-limit 2": "vague one-liner",
    "single-class dataset": "'num_classes ... larger than 1'", "space YAML not UTF-8": "file not named",
    "interpolation with three descriptors": "vague; checked after the whole measurement",
    "measure --steps 1": "checked after the whole measurement (a lone radar.png left)",
    "measure unknown --grid-transform": "checked after the whole measurement (a lone radar.png left)",
    "config file that does not parse": "35-line usage block before the line",
    "transfer --out under a file": "found after all training (issue: read-only --out)",
}


def markdown(results: dict[str, dict]) -> str:
    lines = ["| case | before (issue 14) | after: exit | after: message | traceback | left behind |", "|" + " --- |" * 6]
    for name, rec in results.items():
        before = next((v for k, v in BEFORE.items() if name.startswith(k) or k == name), "traceback" if "GPU" in name else "")
        left = ", ".join(rec.get("left_behind", [])) or ("nothing" if "left_behind" in rec else "-")
        extra = "; ".join(f"{k} {v}" for k, v in rec.items() if k in ("checkpoint_step", "steps", "steps_logged_once", "knn_top1_reported"))
        message = (rec["message"] or "").replace("|", "\\|") + (f" ({extra})" if extra else "")
        lines.append(f"| {name} | {before} | {rec['exit']} | {message} | {'yes' if rec['traceback'] else 'no'} | {left} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="benchmarks/results/failure_cases.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = make_data(root)
        made = cli("pretrain", "--data", "npz", "--data-root", str(paths["tiny"]), "--max-steps", "3", "--epochs", "1", *TINY, "--out", str(root / "enc"))
        assert made.returncode == 0, made.stderr[-2000:]
        results = preemption(root, paths["tiny"])
        results |= cases(root, paths)
    record = {"machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}", "cases": results}
    out = Path(args.out)
    out.write_text(json.dumps(record, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
