"""Dataset registry: a name and a local root -> a dataset of ``(uint8 image (3, H, W), target)``.

Names: ``shapes`` (built in, generated on the fly; no root needed), ``cifar10`` (the shared JPEG ``.npz`` layout when the root holds ``train.npz``, else
torchvision's), ``cifar100``, ``stl10``, ``flowers102``, ``dtd``, ``pets``, ``caltech101``
(through torchvision, from a local root), ``imagefolder`` (any ``class/image`` tree),
``npz`` (a generic file, see ``load_npz``), and the paper's sets in their own formats: landmark
regression ``300w``, ``lsp``, ``celeba_landmarks`` (``amortinv.data.landmarks``) and few-shot
``cub200``, ``fc100``, ``plant_disease`` (``amortinv.data.fewshot_sets``). Nothing is downloaded unless ``download=True``,
which is passed to torchvision's own flag.

Audio (``amortinv.data.audio``; items are float waveforms (1, L)): ``fsdd`` (spoken digits, the
shared ``fsdd.npz``), ``fsdd_speaker`` (the same clips labelled by speaker), ``audiofolder``
(``.wav``/``.flac`` files) and ``audionpz``. ``dataset_modality(name)`` says which a name is.

Variable-size images are resized (shorter side) and centre-cropped to ``image_size`` so that
batches stack; the datasets of fixed size keep their own unless ``image_size`` is given.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torchvision.datasets as tvd
from torch.utils.data import Dataset
from torchvision.transforms import v2

from amortinv.data.arrays import ImageArrayDataset, load_jpeg_npz, load_npz
from amortinv.data.audio import load_audio_folder, load_audio_npz, load_fsdd
from amortinv.data.fewshot_sets import load_cub200, load_fc100, load_plant_disease
from amortinv.data.landmarks import load_300w, load_celeba_landmarks, load_lsp
from amortinv.data.shapes import shapes_dataset

__all__ = ["build_dataset", "DATASETS", "AUDIO_DATASETS", "dataset_targets", "dataset_modality"]

DEFAULT_VARIABLE_SIZE = 96


def _uint8_transform(image_size: int | None) -> Callable[[Any], torch.Tensor]:
    steps: list[Any] = [v2.Lambda(lambda im: im.convert("RGB") if hasattr(im, "convert") else im), v2.ToImage()]
    if image_size is not None:
        steps += [v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)]
    steps.append(v2.ToDtype(torch.uint8))
    return v2.Compose(steps)


def _check_root(name: str, root: Path | None) -> Path:
    if root is None:
        raise ValueError(f"dataset '{name}' needs a data root (--data-root PATH)")
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"data root for '{name}' does not exist: {root}")
    return root


def _torchvision(name: str, factory: Callable[..., Dataset], root: Path, download: bool) -> Dataset:
    try:
        return factory(root=str(root), download=download)
    except RuntimeError as err:
        if "not found" in str(err).lower() or "corrupt" in str(err).lower():
            raise FileNotFoundError(
                f"dataset '{name}' not found or corrupt under {root}: place torchvision's layout there, "
                "(is --data-root one level too high or low?), or pass --download true (download=True in Python; needs internet)"
            ) from err
        raise


def _split_for(name: str, split: str) -> str:
    table = {
        "stl10": {"train": "train", "test": "test", "unlabeled": "unlabeled", "train+unlabeled": "train+unlabeled"},
        "flowers102": {"train": "train", "val": "val", "test": "test"},
        "dtd": {"train": "train", "val": "val", "test": "test"},
        "pets": {"train": "trainval", "trainval": "trainval", "test": "test"},
    }[name]
    if split not in table:
        raise ValueError(f"dataset '{name}' has no split '{split}'; choose from {sorted(table)}")
    return table[split]


def _caltech101(root: Path, split: str, download: bool, tf: Callable, per_class: int = 30) -> Dataset:
    """Caltech-101 with the paper's protocol: 30 random images per class train (seed 0), rest test."""
    if split not in ("train", "test"):
        raise ValueError(f"dataset 'caltech101' has no split '{split}'; choose from ['test', 'train']")
    full = _torchvision(
        "caltech101", lambda **kw: tvd.Caltech101(target_type="category", transform=tf, **kw), root, download
    )
    labels = torch.as_tensor(full.y)
    gen = torch.Generator().manual_seed(0)
    train_idx = []
    for c in labels.unique():
        idx = torch.nonzero(labels == c).flatten()
        train_idx += idx[torch.randperm(len(idx), generator=gen)[:per_class]].tolist()
    chosen = sorted(train_idx) if split == "train" else sorted(set(range(len(labels))) - set(train_idx))
    return torch.utils.data.Subset(full, chosen)


def _load_image(path: str) -> Any:
    """Open one image as RGB; an unreadable file is a clear error naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError) as err:
        raise ValueError(f"unreadable image {path}: {err}") from None


def _imagefolder(root: Path, split: str, tf: Callable) -> Dataset:
    folder = root / split if (root / split).is_dir() else root
    if folder is root and any((root / s).is_dir() for s in ("train", "test", "val")):
        raise FileNotFoundError(f"image folder {root} has split folders but no '{split}'")
    if folder is root and split != "train":  # one folder is one split: it is never also the test split
        raise ValueError(
            f"image folder {root} has no split folders, so it is the train split only and has no '{split}' split; "
            f"give a folder holding train/ and {split}/"
        )
    try:
        return tvd.ImageFolder(str(folder), transform=tf, loader=_load_image)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"image folder {folder}: {err}") from err


def _npz(root: Path, split: str) -> ImageArrayDataset:
    if root.is_file():  # one file is one split: it is never also the test split
        if split != "train":
            raise ValueError(
                f"npz dataset: the single file {root} is the train split and has no '{split}' split; "
                f"give a folder holding train.npz and {split}.npz"
            )
        return load_npz(root)
    path = root / f"{split}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"npz dataset: no file {path} (give a .npz file or a folder with {split}.npz)")
    return load_npz(path)


def _cifar10(root: Path, split: str, download: bool, tf: Callable) -> Dataset:
    if (root / f"{split}.npz").is_file():
        return load_jpeg_npz(root / f"{split}.npz")
    if split not in ("train", "test"):
        raise ValueError(f"dataset 'cifar10' has no split '{split}'; choose from ['test', 'train']")
    return _torchvision("cifar10", lambda **kw: tvd.CIFAR10(train=split == "train", transform=tf, **kw), root, download)


def build_dataset(
    name: str,
    root: str | Path | None,
    split: str = "train",
    *,
    image_size: int | None = None,
    download: bool = False,
    sample_rate: int | None = None,
    clip_seconds: float | None = None,
    crop: str = "center",
    labels: str = "folder",
) -> Dataset:
    """Return the dataset ``name`` read from ``root``.

    Args:
        name: one of ``DATASETS``.
        root: a local folder (or file, for ``npz``).
        split: ``train`` or ``test`` (and ``val`` where the dataset has one).
        image_size: resize + centre-crop side; defaults to the native size for CIFAR, STL-10
            and ``.npz`` files, and to 96 for variable-size datasets.
        download: pass-through to torchvision's ``download`` flag (off by default).
        sample_rate, clip_seconds, crop, labels: audio only: resample to this rate (default: the
            files' own), window length (default 1 s), ``center`` or ``random`` windows, and
            ``audiofolder``'s label source (``folder``, a ``.csv`` or a ``(?P<label>...)`` pattern).
    Returns:
        A dataset of ``(uint8 tensor (3, H, W), target)``, or ``(float waveform (1, L), target)`` for audio.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset '{name}'; choose from {sorted(DATASETS)}")
    if name in AUDIO_DATASETS:
        if image_size is not None:
            raise ValueError(f"dataset '{name}' is audio: --image-size does not apply (set the clip length in seconds)")
        return _audio(
            name,
            _check_root(name, None if root is None else Path(root)),
            split,
            dict(sample_rate=sample_rate, clip_seconds=1.0 if clip_seconds is None else clip_seconds, crop=crop),
            labels,
        )
    if sample_rate is not None or clip_seconds is not None:
        raise ValueError(
            f"dataset '{name}' holds images: audio settings (sample rate {sample_rate}, clip length {clip_seconds} s) "
            "do not apply (is the encoder or config meant for audio?)"
        )
    if image_size is not None and image_size < 8:
        raise ValueError(f"--image-size must be >= 8 pixels (or unset: the images' own size), got {image_size}")
    if name == "shapes":
        return shapes_dataset(split, size=image_size or 32)
    root = _check_root(name, None if root is None else Path(root))
    fixed = name in ("cifar10", "cifar100", "stl10", "npz", "fc100")
    tf = _uint8_transform(image_size if (image_size or fixed) else DEFAULT_VARIABLE_SIZE)
    if name == "cifar10":
        ds = _cifar10(root, split, download, tf)
    elif name == "npz":
        ds = _npz(root, split)
    elif name == "imagefolder":
        ds = _imagefolder(root, split, tf)
    elif name == "caltech101":
        ds = _caltech101(root, split, download, tf)
    elif name in PAPER_SETS:
        ds = PAPER_SETS[name](root, split, image_size or DEFAULT_VARIABLE_SIZE, tf)
    else:
        ds = _torchvision(name, lambda **kw: _TORCHVISION[name](split, tf, **kw), root, download)
    if image_size is not None and isinstance(ds, ImageArrayDataset) and ds.image_size != (image_size, image_size):
        ds = ImageArrayDataset(
            v2.functional.center_crop(v2.functional.resize(ds.images, [image_size], antialias=True), [image_size]),
            ds.targets,
            classes=ds.classes,
            target_names=ds.target_names,
        )
    return ds


def _tv_split(cls: type, name: str, key: str, **extra: Any) -> Callable[..., Dataset]:
    return lambda split, tf, **kw: cls(**{key: _split_for(name, split)}, transform=tf, **extra, **kw)


def _cifar100(split: str, tf: Callable, **kw: Any) -> Dataset:
    if split not in ("train", "test"):
        raise ValueError(f"dataset 'cifar100' has no split '{split}'; choose from ['test', 'train']")
    return tvd.CIFAR100(train=split == "train", transform=tf, **kw)


_TORCHVISION: dict[str, Callable[..., Dataset]] = {
    "cifar100": _cifar100,
    "stl10": _tv_split(tvd.STL10, "stl10", "split"),
    "flowers102": _tv_split(tvd.Flowers102, "flowers102", "split"),
    "dtd": _tv_split(tvd.DTD, "dtd", "split"),
    "pets": _tv_split(tvd.OxfordIIITPet, "pets", "split", target_types="category"),
}
PAPER_SETS: dict[
    str, Callable[[Path, str, int, Callable], Dataset]
] = {  # the paper's Tables 1 and 2, in their own formats
    "300w": lambda root, split, size, tf: load_300w(root, split, size),
    "lsp": lambda root, split, size, tf: load_lsp(root, split, size),
    "celeba_landmarks": lambda root, split, size, tf: load_celeba_landmarks(root, split, size),
    "cub200": lambda root, split, size, tf: load_cub200(root, split, tf),
    "fc100": lambda root, split, size, tf: load_fc100(root, split),
    "plant_disease": lambda root, split, size, tf: load_plant_disease(root, split, tf),
}
AUDIO_DATASETS: tuple[str, ...] = ("fsdd", "fsdd_speaker", "audiofolder", "audionpz")
DATASETS: tuple[str, ...] = (
    "shapes",
    "cifar10",
    *_TORCHVISION,
    "caltech101",
    "imagefolder",
    "npz",
    *PAPER_SETS,
    *AUDIO_DATASETS,
)


def dataset_modality(name: str) -> str:
    """``audio`` or ``vision``: the modality of a registry dataset name."""
    return "audio" if name in AUDIO_DATASETS else "vision"


def _audio(name: str, root: Path, split: str, opts: dict[str, Any], labels: str) -> Dataset:
    if opts["clip_seconds"] <= 0:
        raise ValueError(f"clip length must be > 0 seconds, got {opts['clip_seconds']}")
    if name in ("fsdd", "fsdd_speaker"):
        return load_fsdd(root, split, "speaker" if name == "fsdd_speaker" else "digit", **opts)
    if name == "audiofolder":
        return load_audio_folder(root, split, labels, **opts)
    if root.is_file():
        if split != "train":
            raise ValueError(
                f"audionpz dataset: the single file {root} is the train split and has no '{split}' split; "
                f"give a folder holding train.npz and {split}.npz"
            )
        return load_audio_npz(root, **opts)
    if not (root / f"{split}.npz").is_file():
        raise FileNotFoundError(
            f"audionpz dataset: no file {root / f'{split}.npz'} (give a .npz file or a folder with {split}.npz)"
        )
    return load_audio_npz(root / f"{split}.npz", **opts)


def dataset_targets(ds: Dataset) -> torch.Tensor:
    """All targets of a registry dataset as a tensor (labels (N,) or regression targets (N, D))."""
    if isinstance(ds, ImageArrayDataset):
        return ds.targets
    if isinstance(ds, torch.utils.data.Subset):
        return dataset_targets(ds.dataset)[torch.as_tensor(ds.indices)]
    for attr in ("targets", "labels", "_labels", "y"):
        if hasattr(ds, attr):
            return torch.as_tensor(getattr(ds, attr))
    return torch.as_tensor([ds[k][1] for k in range(len(ds))])
