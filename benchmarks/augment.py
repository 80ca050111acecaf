"""Images/s of augmentation engines for the full SimCLR recipe, two views per image, side by side.

Measured in one run (descriptor [1, 1] of groups2 = every SimCLR op):
- ``engine``: amortinv's batched engine (``VisionAugment``), the loader only hands over uint8;
- ``torchvision``: the per-image torchvision.transforms.v2 pipeline in a DataLoader (N workers);
- ``torchaug``: torchaug's batch transforms (crop and jitter per chunk of 8, as it supports), if
  installed (``pip install --no-deps torchaug``).
CPU sizes: 32x32 and 96x96 (the issue-13 targets: engine >= 5x torchvision), each engine run
``--repeats`` times interleaved, the best run of each reported (every run is kept in the file). With
``--device cuda`` also the GPU targets: 32x32 at batch 512 and 224x224 (from 256x256) at batch
128, and the share of augmentation in a CIFAR-10 AI-SimCLR training step (Hyper-ResNet-18,
step time with the engine vs with the views replaced by copies). Writes
benchmarks/results/augment/vision_cpu.json (or ``--out``). Run by hand: ``python benchmarks/augment.py``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from amortinv import InvarianceSpace
from amortinv.augment import VisionAugment
from amortinv.augment.vision import IMAGENET_MEAN, IMAGENET_STD, blur_kernel_size
from amortinv.results import write_json

G = InvarianceSpace.from_name("groups2")
ALL_ON = torch.tensor([1.0, 1.0])


def simclr_v2(size: int) -> v2.Compose:
    return v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            v2.RandomGrayscale(p=0.2),
            v2.RandomApply([v2.GaussianBlur(blur_kernel_size(size), sigma=(0.1, 2.0))], p=0.5),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


class TwoViews(Dataset):
    """Per-image pipeline, the usual way: each worker augments one image at a time."""

    def __init__(self, images: torch.Tensor, size: int) -> None:
        self.images, self.tf = images, simclr_v2(size)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.tf(self.images[k]), self.tf(self.images[k])


def time_torchvision(images: torch.Tensor, size: int, batch: int, workers: int) -> float:
    loader = DataLoader(TwoViews(images, size), batch_size=batch, num_workers=workers)
    start = time.perf_counter()
    n = sum(len(v1) for v1, _ in loader)
    return n / (time.perf_counter() - start)


def _rate(fn: Callable[[torch.Tensor], object], images: torch.Tensor, batch: int, device: str) -> float:
    """Images/s of ``fn`` over ``images`` in batches (uint8 moved to ``device`` per batch), after a warm-up."""
    fn(images[:batch].to(device))
    _sync(device)
    start = time.perf_counter()
    for k in range(0, len(images), batch):
        fn(images[k : k + batch].to(device, non_blocking=True))
    _sync(device)
    return len(images) / (time.perf_counter() - start)


def time_engine(images: torch.Tensor, size: int, batch: int, device: str) -> float:
    aug = VisionAugment(G, size).to(device)
    return _rate(lambda x: aug(x, ALL_ON), images, batch, device)


def time_torchaug(images: torch.Tensor, size: int, batch: int, device: str) -> float | None:
    try:
        import torchaug.transforms as T
    except ImportError:
        return None
    tf = T.Compose(
        [
            T.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True, num_chunks=8, batch_transform=True),
            T.RandomHorizontalFlip(batch_transform=True),
            T.RandomColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8, num_chunks=8, batch_transform=True),
            T.RandomGrayscale(p=0.2, batch_transform=True),
            T.RandomGaussianBlur(blur_kernel_size(size), sigma=(0.1, 2.0), p=0.5, batch_transform=True),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(list(IMAGENET_MEAN), list(IMAGENET_STD)),
        ]
    )
    to_batch = T.ToBatchImages()
    return _rate(lambda x: (tf(to_batch(x)), tf(to_batch(x))), images, batch, device)


def op_breakdown(size: int, batch: int = 256, repeats: int = 5, rounds: int = 3) -> dict[str, float]:
    """Milliseconds per view of a batch for each stage of the engine alone (parameters of the full recipe):
    the mean of ``repeats`` calls, the best of ``rounds`` interleaved rounds."""
    from dataclasses import fields

    from amortinv.augment.params import ViewParams

    aug = VisionAugment(G, size)
    x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    full = aug.sample(x, ALL_ON)
    stages = {
        "base + normalise": (),
        "crop + flip": ("boxes", "flip"),
        "colour jitter": ("jitter", "jitter_factors", "jitter_order"),
        "grayscale": ("grayscale",),
        "blur": ("blur", "blur_sigma"),
        "all": tuple(f.name for f in fields(ViewParams)),
    }
    hue_off = full.jitter_factors.clone()
    hue_off[:, 3] = 0  # the same jitter with every hue shift 0 (skipped): what the exact HSV hue costs
    params = {}
    for name, keep in {**stages, "colour jitter, hue off": stages["colour jitter"]}.items():
        params[name] = ViewParams(**{k: getattr(full, k) for k in keep})
        params[name].jitter_factors = hue_off if name.endswith("hue off") else params[name].jitter_factors
        aug.apply(x, params[name])
    out = {name: float("inf") for name in params}
    for _ in range(rounds):
        for name, p in params.items():
            start = time.perf_counter()
            for _ in range(repeats):
                aug.apply(x, p)
            out[name] = min(out[name], round(1e3 * (time.perf_counter() - start) / repeats, 2))
    return out


def cpu_table(args: argparse.Namespace) -> dict[str, dict]:
    table = {}
    for size, n in ((32, args.images), (96, args.images // 4)):
        images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8)
        runs = [
            (
                time_torchvision(images, size, args.batch, args.workers),
                time_engine(images, size, args.batch, "cpu"),
                time_torchaug(images, size, args.batch, "cpu"),
            )
            for _ in range(args.repeats)
        ]
        tv, eng = max(r[0] for r in runs), max(r[1] for r in runs)
        ta = None if runs[0][2] is None else max(r[2] for r in runs)
        table[f"{size}x{size}"] = {
            "images": n,
            "batch": args.batch,
            "repeats": args.repeats,
            "engine_images_per_s_each_run": [round(r[1], 1) for r in runs],
            "torchvision_images_per_s_each_run": [round(r[0], 1) for r in runs],
            "engine_images_per_s": round(eng, 1),
            "torchvision_dataloader_images_per_s": round(tv, 1),
            "engine_over_torchvision": round(eng / tv, 2),
            "torchaug_images_per_s": None if ta is None else round(ta, 1),
            "engine_ms_per_view_by_stage": op_breakdown(size, args.batch),
        }
        print(
            f"CPU {size}x{size}: engine {eng:8.1f} img/s | torchvision v2 DataLoader ({args.workers} workers) "
            f"{tv:8.1f} | torchaug {ta or float('nan'):8.1f} | engine/torchvision {eng / tv:.2f}",
            flush=True,
        )
    return table


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def step_share(batch: int = 512, steps: int = 20, device: str = "cuda", **encoder_options: object) -> dict[str, float]:
    """Share of augmentation in an AI-SimCLR CIFAR-10 step: step time with the engine vs with copies."""
    from amortinv.encoders import build_encoder
    from amortinv.ssl.methods import SimCLR

    encoder = build_encoder("hyper_resnet18", G.dim, cifar_stem=True, **encoder_options)
    model = SimCLR(encoder, G, image_size=32, schedule=(100, 10)).to(device)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, device=device)
    copies = lambda x, d: (x.float().div(255), x.float().div(255))

    def step_time(augment: Callable) -> float:
        for k in range(steps + 5):
            if k == 5:
                _sync(device)
                start = time.perf_counter()
            v1, v2_ = augment(images, model._host_descriptors[k % 3])
            loss = model.loss((v1, v2_), k % 3, model.descriptors[k % 3])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(device)
        return (time.perf_counter() - start) / steps

    with_engine, with_copies = step_time(model.augment), step_time(copies)
    return {
        "batch": batch,
        "step_ms_engine": round(1e3 * with_engine, 2),
        "step_ms_copies": round(1e3 * with_copies, 2),
        "augmentation_share": round(1 - with_copies / with_engine, 3),
    }


def gpu_table() -> dict[str, dict]:
    table = {}
    for out, src, batch in ((32, 32, 512), (224, 256, 128)):
        images = torch.randint(0, 256, (batch * 20, 3, src, src), dtype=torch.uint8).pin_memory()
        rate = time_engine(images, out, batch, "cuda")
        table[f"{out}x{out}"] = {"source": f"{src}x{src}", "batch": batch, "engine_images_per_s": round(rate, 1)}
        print(f"CUDA {out}x{out} (from {src}x{src}, batch {batch}): engine {rate:10.1f} img/s", flush=True)
    table["pretrain_step"] = step_share()
    print(f"CUDA AI-SimCLR step: {table['pretrain_step']}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--images", type=int, default=4096, help="images at 32x32; 96x96 uses a quarter")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="CPU: runs of each engine, interleaved; the best of each is reported (the machine's speed drifts)",
    )
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "augment/vision_cpu.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    results: dict[str, object] = {
        "cpu": os.cpu_count(),
        "cpu_threads": torch.get_num_threads(),
        "dataloader_workers": args.workers,
        "cpu_table": cpu_table(args),
    }
    if args.device == "cuda":
        results["gpu"] = torch.cuda.get_device_name()
        results["gpu_table"] = gpu_table()
    write_json(args.out, results)


if __name__ == "__main__":
    main()
