"""Training-step cost of Hyper-ResNet-18 vs ResNet-18, and the forward cost of ``materialise(i)``.

Side by side in one run: forward + backward + fused AdamW step (gradient buffers reused) on a batch of 128 images x two views (32x32, CIFAR stem), at
widths 1/4 and 1/2; then the eval forward time of the hyper encoder vs its materialised plain
ResNet at a fixed ``i``. Step times interleave the two models' steps in one process; peak
memory (peak RSS on CPU, max allocated on CUDA) comes from a fresh process per model. Writes benchmarks/results/encoders.json.
Run by hand: ``python benchmarks/encoders.py [--device cuda]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from amortinv.encoders import build_encoder
from amortinv.results import peak_memory_mb, write_json


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device: str, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_step(name: str, width: float, batch: int, device: str):
    """A closure running one training step of ``name``, and the model."""
    torch.manual_seed(0)
    enc = build_encoder(name, invariance_dim=2, cifar_stem=True, width=width).to(device).train()
    opt = torch.optim.AdamW(enc.parameters(), lr=1e-3, weight_decay=0.05, fused=True)
    views = torch.randn(2 * batch, 3, 32, 32, device=device)  # the two views, concatenated
    i = torch.tensor([1.0, 0.0], device=device)

    def step() -> None:
        feats = F.normalize(enc(views, i), dim=1)
        loss = -(feats[:batch] * feats[batch:]).sum(1).mean()  # a stand-in contrastive objective
        opt.zero_grad(set_to_none=False)  # reuse gradient buffers (no page faults)
        loss.backward()
        opt.step()

    return step, enc


def measure_memory(name: str, width: float, batch: int, device: str, queue: mp.Queue) -> None:
    """Peak memory of three training steps, in a fresh process (peak RSS on CPU)."""
    step, enc = make_step(name, width, batch, device)
    for _ in range(3):
        step()
    _sync(device)
    queue.put(
        {"peak_memory_mb": round(peak_memory_mb(device), 1), "parameters": sum(p.numel() for p in enc.parameters())}
    )


def time_steps(width: float, batch: int, device: str, repeats: int) -> dict[str, float]:
    """Median step time of both models, their steps interleaved so that drift hits both alike."""
    steps = {name: make_step(name, width, batch, device)[0] for name in ("hyper_resnet18", "resnet18")}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for rep in range(repeats + 2):
        for name, step in steps.items():
            seconds = _timed(step, device, warmup=0, repeats=1)
            if rep >= 2:  # the first two rounds warm up
                times[name].append(seconds)
    return {name: statistics.median(t) for name, t in times.items()}


def measure_materialise(width: float, batch: int, device: str, repeats: int, queue: mp.Queue) -> None:
    torch.manual_seed(0)
    enc = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=width).to(device).eval()
    i = torch.tensor([0.3, 0.8], device=device)
    plain = enc.materialise(i).eval()
    x = torch.randn(batch, 3, 32, 32, device=device)
    with torch.no_grad():
        assert torch.allclose(plain(x), enc(x, i), atol=1e-4)
        hyper_s = _timed(lambda: enc(x, i), device, 2, repeats)
        plain_s = _timed(lambda: plain(x), device, 2, repeats)
    queue.put(
        {
            "hyper_forward_s": round(hyper_s, 4),
            "materialised_forward_s": round(plain_s, 4),
            "hyper_over_materialised": round(hyper_s / plain_s, 3),
        }
    )


def run_isolated(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "encoders/cpu.json"))
    args = parser.parse_args()
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    results: dict[str, object] = {
        "device": device_name,
        "batch": args.batch,
        "views": 2,
        "image": "32x32",
        "optimizer": "AdamW(fused), zero_grad(set_to_none=False)",
    }
    for width in (0.25, 0.5):
        hyper = run_isolated(measure_memory, "hyper_resnet18", width, args.batch, args.device)
        plain = run_isolated(measure_memory, "resnet18", width, args.batch, args.device)
        step_s = time_steps(width, args.batch, args.device, args.repeats)
        hyper["step_s"], plain["step_s"] = round(step_s["hyper_resnet18"], 4), round(step_s["resnet18"], 4)
        mat = run_isolated(measure_materialise, width, args.batch, args.device, args.repeats)
        ratio = hyper["step_s"] / plain["step_s"]
        results[f"width_{width}"] = {
            "hyper_resnet18": hyper,
            "resnet18": plain,
            "hyper_over_plain": round(ratio, 3),
            "materialise": mat,
        }
        print(
            f"width {width}: step hyper {hyper['step_s']:.3f}s vs plain {plain['step_s']:.3f}s -> ratio {ratio:.3f} | "
            f"peak {hyper['peak_memory_mb']:.0f} vs {plain['peak_memory_mb']:.0f} MB | params {hyper['parameters']:,} vs "
            f"{plain['parameters']:,} | forward hyper/materialised {mat['hyper_over_materialised']:.3f}"
        )
    write_json(args.out, results)


if __name__ == "__main__":
    main()
