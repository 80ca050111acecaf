"""Images/s of the batched augmentation engine vs a per-image torchvision.transforms.v2 DataLoader.

Both make two views of every image with the full SimCLR recipe (descriptor [1, 1] of groups2),
measured side by side in one run on 32x32 and 96x96 images. Writes
benchmarks/results/augment.json. Run by hand: ``python benchmarks/augment.py [--device cuda]``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision.transforms import v2

from amortinv import InvarianceSpace
from amortinv.augment import VisionAugment
from amortinv.augment.vision import IMAGENET_MEAN, IMAGENET_STD, blur_kernel_size
from amortinv.results import write_json


class TwoViews(Dataset):
    """Per-image pipeline, the usual way: each worker augments one image at a time."""

    def __init__(self, images: torch.Tensor, size: int) -> None:
        self.images = images
        self.tf = v2.Compose([
            v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            v2.RandomGrayscale(p=0.2),
            v2.RandomApply([v2.GaussianBlur(blur_kernel_size(size), sigma=(0.1, 2.0))], p=0.5),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.tf(self.images[k]), self.tf(self.images[k])


def time_torchvision(images: torch.Tensor, size: int, batch: int, workers: int) -> float:
    loader = DataLoader(TwoViews(images, size), batch_size=batch, num_workers=workers, persistent_workers=False)
    start = time.perf_counter()
    n = sum(len(v1) for v1, _ in loader)
    return n / (time.perf_counter() - start)


def time_engine(images: torch.Tensor, size: int, batch: int, device: str) -> float:
    aug = VisionAugment(InvarianceSpace.from_name("groups2"), size).to(device)
    loader = DataLoader(TensorDataset(images), batch_size=batch)  # the loader only hands over uint8
    d = torch.tensor([1.0, 1.0])
    aug(images[:batch].to(device), d)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    n = 0
    for (x,) in loader:
        v1, v2_ = aug(x.to(device, non_blocking=True), d)
        n += len(v1)
    if device == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=4096, help="images per size (32x32); 96x96 uses a quarter")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "augment.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    results: dict[str, object] = {
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "cpu_threads": torch.get_num_threads(),
        "dataloader_workers": args.workers,
        "batch": args.batch,
    }
    for size, n in ((32, args.images), (96, args.images // 4)):
        images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8)
        tv = time_torchvision(images, size, args.batch, args.workers)
        eng = time_engine(images, size, args.batch, args.device)
        results[f"{size}x{size}"] = {
            "images": n,
            "engine_images_per_s": round(eng, 1),
            "torchvision_dataloader_images_per_s": round(tv, 1),
            "engine_over_torchvision": round(eng / tv, 2),
        }
        print(f"{size}x{size}: engine {eng:9.1f} img/s | torchvision v2 DataLoader ({args.workers} workers) "
              f"{tv:9.1f} img/s | ratio {eng / tv:.2f}")
    write_json(args.out, results)


if __name__ == "__main__":
    main()
