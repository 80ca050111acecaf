"""Clips/s of the audio engine (CLAR's seven ops, two views per clip) vs a per-clip librosa pipeline, side by side.

- ``engine``: ``AudioAugment(audio7, 8000)`` on batches of 1 s clips at 8 kHz, every factor on
  (descriptor all ones), and each op alone;
- ``librosa``: the same seven ops clip by clip (``librosa.effects.time_stretch`` / ``pitch_shift``
  + numpy for the rest), the usual per-example data-loader way; only if librosa is installed.
torchaudio and torch-audiomentations are not compared: neither installs beside the pinned torch
2.14.1 (torchaudio's wheels stop at torch 2.9; torch-audiomentations needs torchaudio).
Writes benchmarks/results/augment_audio.json. Run by hand: ``python benchmarks/augment_audio.py``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from amortinv import InvarianceSpace
from amortinv.augment.audio import AudioAugment
from amortinv.results import write_json

A7 = InvarianceSpace.from_name("audio7")
RATE, LENGTH = 8000, 8000


def clips(n: int) -> torch.Tensor:
    """Speech-like test clips (n, 1, L): a harmonic tone with an envelope, centred, plus a little noise."""
    t = torch.arange(LENGTH) / RATE
    f0 = 100 + 100 * torch.rand(n, 1)
    wave = sum(torch.sin(2 * torch.pi * k * f0 * t) / k for k in range(1, 6)) * torch.exp(-(((t - 0.5) / 0.15) ** 2))
    return (0.3 * wave + 0.01 * torch.randn(n, LENGTH))[:, None]


def time_engine(x: torch.Tensor, batch: int, descriptor: torch.Tensor, device: str) -> float:
    aug = AudioAugment(A7, LENGTH)
    aug(x[:batch].to(device), descriptor)
    start = time.perf_counter()
    for k in range(0, len(x), batch):
        aug(x[k : k + batch].to(device), descriptor)
    if device == "cuda":
        torch.cuda.synchronize()
    return len(x) / (time.perf_counter() - start)


def librosa_view(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import librosa

    n = len(y)
    y = librosa.effects.time_stretch(y, rate=rng.uniform(0.5, 1.5))
    y = np.pad(y, (0, max(0, n - len(y))))[:n]
    y = librosa.effects.pitch_shift(y, sr=RATE, n_steps=rng.uniform(-15, 15))
    y = np.roll(y, int(rng.uniform(-0.5, 0.5) * n))
    w = int(rng.uniform(0, 0.125) * n)
    s = int(rng.uniform(0, n - w))
    y[s : s + w] = 0
    y = (
        y
        * np.clip(np.arange(n) / max(1, rng.uniform(0, 0.5) * n), 0, 1)
        * np.clip((n - 1 - np.arange(n)) / max(1, rng.uniform(0, 0.5) * n), 0, 1)
    )
    noise = rng.standard_normal(n)
    snr = rng.uniform(3, 30)
    return y + noise * np.sqrt(np.mean(y**2) / np.mean(noise**2) / 10 ** (snr / 10))


def time_librosa(x: torch.Tensor) -> float | None:
    try:
        import librosa  # noqa: F401
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    ys = x[:, 0].numpy().astype(np.float32)
    librosa_view(ys[0], rng)
    start = time.perf_counter()
    for y in ys:
        librosa_view(y, rng), librosa_view(y, rng)
    return len(ys) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "augment/audio_cpu.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    x = clips(args.clips)
    ones = torch.ones(A7.dim)
    engine = time_engine(x, args.batch, ones, args.device)
    per_op = {
        f: round(time_engine(x[: 4 * args.batch], args.batch, torch.eye(A7.dim)[k], args.device), 1)
        for k, f in enumerate(A7.factors)
    }
    lib = time_librosa(x[:64])
    results = {
        "cpu": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": args.device,
        "clip": f"{LENGTH} samples at {RATE} Hz",
        "batch": args.batch,
        "engine_clips_per_s_all_ops_two_views": round(engine, 1),
        "engine_clips_per_s_one_op_two_views": per_op,
        "librosa_per_clip_clips_per_s_two_views": None if lib is None else round(lib, 1),
        "engine_over_librosa": None if lib is None else round(engine / lib, 1),
    }
    print(
        f"engine {engine:.1f} clips/s (all seven ops, two views) | librosa per clip {lib or float('nan'):.1f} clips/s"
    )
    print("one op at a time:", per_op)
    write_json(args.out, results)


if __name__ == "__main__":
    main()
