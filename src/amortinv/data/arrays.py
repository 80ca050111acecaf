"""In-memory uint8 image datasets and the ``.npz`` readers (shared CIFAR-10 JPEG archives, generic arrays).

Every dataset in amortinv yields ``(image, target)`` with ``image`` a uint8 tensor (3, H, W):
the data loader only decodes, and augmentation runs batched on the training device.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

__all__ = ["ImageArrayDataset", "load_npz", "load_jpeg_npz", "cache_dir", "read_npz"]


def cache_dir() -> Path:
    """Where decoded arrays are cached: ``$AMORTINV_CACHE`` or ``~/.cache/amortinv``."""
    return Path(os.environ.get("AMORTINV_CACHE", Path.home() / ".cache" / "amortinv"))


class ImageArrayDataset(Dataset):
    """A dataset of uint8 images held in memory.

    Args:
        images: uint8 tensor (N, 3, H, W).
        targets: int64 labels (N,) for classification, or float32 targets (N, D) for regression.
        classes: class names for labels, if known.
        target_names: names of the D regression outputs, if known.
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        classes: list[str] | None = None,
        target_names: list[str] | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be uint8 (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(targets) != len(images):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        self.images = images
        self.targets = targets
        self.classes = classes
        self.target_names = target_names

    @property
    def task(self) -> str:
        """``classification`` for integer labels, ``regression`` for float targets."""
        return "regression" if torch.is_floating_point(self.targets) else "classification"

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.targets[index]


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file (no pickles), with clear errors for missing or corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as err:
        raise ValueError(f"{path} is not a readable .npz file (corrupt or wrong format): {err}") from err


def _require(arrays: dict[str, np.ndarray], path: Path, *keys: str) -> None:
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise ValueError(f"{path} lacks arrays {missing}; it has {sorted(arrays)}")


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _decode_jpegs(jpeg: np.ndarray, offsets: np.ndarray, path: Path) -> np.ndarray:
    images = []
    for k in range(len(offsets) - 1):
        blob = jpeg[offsets[k] : offsets[k + 1]].tobytes()
        try:
            images.append(np.asarray(Image.open(io.BytesIO(blob)).convert("RGB")))
        except OSError as err:
            raise ValueError(f"{path}: image {k} is not a decodable JPEG: {err}") from err
    if len({im.shape for im in images}) > 1:
        raise ValueError(f"{path}: the JPEG images differ in size")
    return np.stack(images)


def load_jpeg_npz(path: Path, use_cache: bool = True) -> ImageArrayDataset:
    """Load an archive of concatenated JPEG bytes (``jpeg``, ``offsets``, ``labels``, ``classes``).

    This is the layout of ``shared/data/cifar10/{train,test}.npz``. The images are decoded once
    with Pillow and the uint8 array (N, H, W, 3) is cached under ``cache_dir()``, keyed by the
    file's content hash.
    """
    path = Path(path)
    arrays = read_npz(path)
    _require(arrays, path, "jpeg", "offsets", "labels")
    jpeg, offsets, labels = arrays["jpeg"], arrays["offsets"], arrays["labels"]
    if jpeg.dtype != np.uint8 or jpeg.ndim != 1 or offsets.ndim != 1 or len(offsets) != len(labels) + 1:
        raise ValueError(f"{path}: expected uint8 'jpeg' bytes and len(offsets) == len(labels) + 1")
    cached = cache_dir() / f"{path.parent.name}-{path.stem}-{_file_digest(path)}.npy"
    images = None
    if use_cache and cached.is_file():
        try:
            images = np.load(cached, allow_pickle=False)
        except (ValueError, OSError):
            images = None  # a broken cache entry is rebuilt below
        if images is not None and images.shape[0] != len(labels):
            images = None
    if images is None:
        note = f" (once; cached in {cached.parent})" if use_cache else ""
        print(f"decoding {len(labels):,} JPEG images of {path}{note}: this takes a while", file=sys.stderr, flush=True)
        images = _decode_jpegs(jpeg, offsets, path)
        if use_cache:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, images)
            os.replace(tmp, cached)  # atomic: safe when several ranks decode at once
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else None
    return ImageArrayDataset(
        torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))),
        torch.from_numpy(labels.astype(np.int64)),
        classes=classes,
    )


def _images_to_nchw(images: np.ndarray, path: Path) -> np.ndarray:
    if images.ndim == 3:
        images = images[:, None]  # grayscale (N, H, W)
    if images.ndim != 4:
        raise ValueError(f"{path}: 'images' must be (N, H, W, 3) or (N, 3, H, W), got shape {images.shape}")
    if images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3):
        nchw = images
    elif images.shape[-1] in (1, 3):
        nchw = images.transpose(0, 3, 1, 2)
    else:
        raise ValueError(f"{path}: 'images' must have 1 or 3 channels, got shape {images.shape}")
    if nchw.shape[1] == 1:
        nchw = np.repeat(nchw, 3, axis=1)
    return np.ascontiguousarray(nchw)


def load_npz(path: Path) -> ImageArrayDataset:
    """Load a generic ``.npz`` with ``images`` and ``labels`` (classification) or ``targets`` (regression).

    ``images``: uint8, (N, H, W, 3), (N, 3, H, W) or grayscale (N, H, W). ``labels``: integers
    (N,). ``targets``: finite floats (N,) or (N, D). Optional ``classes`` and ``target_names``.
    """
    path = Path(path)
    arrays = read_npz(path)
    _require(arrays, path, "images")
    images = arrays["images"]
    if images.dtype != np.uint8:
        raise ValueError(
            f"{path}: 'images' must be uint8, got {images.dtype}; "
            "convert float images in [0, 1] with (x * 255).round().astype(np.uint8)"
        )
    nchw = _images_to_nchw(images, path)
    n = len(nchw)
    if n == 0:
        raise ValueError(f"{path} holds no images")
    if ("labels" in arrays) == ("targets" in arrays):
        raise ValueError(f"{path} must hold exactly one of 'labels' or 'targets'; it has {sorted(arrays)}")
    if "labels" in arrays:
        labels = arrays["labels"]
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{path}: 'labels' must be integers of shape ({n},), got {labels.dtype} {labels.shape}")
        if (labels < 0).any():
            raise ValueError(f"{path}: 'labels' must be >= 0")
        targets = torch.from_numpy(labels.astype(np.int64))
    else:
        raw = arrays["targets"]
        if raw.ndim not in (1, 2) or raw.shape[0] != n or not np.issubdtype(raw.dtype, np.number):
            raise ValueError(
                f"{path}: 'targets' must be numbers of shape ({n},) or ({n}, D), got {raw.dtype} {raw.shape}"
            )
        if not np.isfinite(raw).all():
            raise ValueError(f"{path}: 'targets' contain NaN or infinite values")
        targets = torch.from_numpy(raw.astype(np.float32).reshape(n, -1))
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else None
    names = [str(c) for c in arrays["target_names"]] if "target_names" in arrays else None
    return ImageArrayDataset(torch.from_numpy(nchw), targets, classes=classes, target_names=names)
