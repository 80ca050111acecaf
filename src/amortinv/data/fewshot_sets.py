"""Few-shot sets of the paper's Table 2, read as their authors distribute them: CUB-200-2011, FC100, Plant Disease.

Items are ``(uint8 image (3, S, S), int label)``; variable-size images are resized (shorter side)
and centre-cropped to S, as every registry dataset is.

- ``cub200``: the ``CUB_200_2011`` folder (``images.txt``: ``id path``; ``image_class_labels.txt``:
  ``id class`` with classes 1-200; ``train_test_split.txt``: ``id is_training``; ``images/``), the
  distributed train/test split, labels 0-199.
- ``fc100``: CIFAR-100 (torchvision's ``cifar-100-python`` folder) with FC100's split of the 20
  superclasses (Oreshkin et al., 2018): train 12 (fish, flowers, food containers, fruit and
  vegetables, household electrical devices, household furniture, large man-made outdoor things,
  large natural outdoor scenes, reptiles, trees, vehicles 1 and 2), val 4 (large carnivores, large
  omnivores and herbivores, non-insect invertebrates, small mammals), test 4 (aquatic mammals,
  insects, medium-sized mammals, people). A split holds every image (CIFAR's train and test files)
  of its superclasses' fine classes, 600 per class; few-shot episodes use ``test``. Labels are the
  CIFAR-100 fine labels.
- ``plant_disease``: PlantVillage as class folders (``root/<class>/*.jpg``, e.g. 38 classes). With
  ``train/`` and ``test/`` sub-folders those are the splits; without, every image is the
  ``test`` split, the pool Ericsson et al. (2021) draw few-shot episodes from.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from amortinv.data.arrays import ImageArrayDataset

__all__ = ["FileListDataset", "load_cub200", "load_fc100", "load_plant_disease", "FC100_SUPERCLASSES"]

FC100_SUPERCLASSES = {
    "train": (1, 2, 3, 4, 5, 6, 9, 10, 15, 17, 18, 19),
    "val": (8, 11, 13, 16),
    "test": (0, 7, 12, 14),
}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


class FileListDataset(Dataset):
    """Image files with integer labels, decoded (RGB) and transformed to uint8 (3, S, S) when read."""

    def __init__(
        self, paths: list[Path], labels: list[int], transform: Callable, classes: list[str] | None = None
    ) -> None:
        if not paths:
            raise ValueError("the dataset is empty")
        self.paths, self.targets, self.transform, self.classes = paths, torch.as_tensor(labels), transform, classes

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, int]:
        try:
            with Image.open(self.paths[k]) as im:
                image = im.convert("RGB")
        except OSError as err:
            raise ValueError(f"unreadable image {self.paths[k]}: {err}") from None
        return self.transform(image), int(self.targets[k])


def _id_table(path: Path) -> dict[int, str]:
    """``id value`` lines of a CUB text file, each checked."""
    if not path.is_file():
        raise FileNotFoundError(f"CUB-200-2011: no {path}")
    table = {}
    for k, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        fields = line.split(maxsplit=1)
        if len(fields) != 2 or not fields[0].isdigit():
            raise ValueError(f"{path}, line {k + 1}: expected 'id value', got {line!r}")
        table[int(fields[0])] = fields[1].strip()
    return table


def load_cub200(root: str | Path, split: str, transform: Callable) -> FileListDataset:
    """CUB-200-2011 (see the module docstring): ``root`` is ``CUB_200_2011`` or holds it."""
    root = Path(root)
    base = root / "CUB_200_2011" if (root / "CUB_200_2011").is_dir() else root
    if split not in ("train", "test"):
        raise ValueError(f"dataset 'cub200' has no split '{split}'; choose from ['test', 'train']")
    images = _id_table(base / "images.txt")
    labels, is_train = _id_table(base / "image_class_labels.txt"), _id_table(base / "train_test_split.txt")
    for name, table, allowed in (
        ("image_class_labels.txt", labels, None),
        ("train_test_split.txt", is_train, {"0", "1"}),
    ):
        bad = next(
            (
                i
                for i, v in table.items()
                if (allowed is not None and v not in allowed) or (allowed is None and not v.isdigit())
            ),
            None,
        )
        if bad is not None:
            raise ValueError(f"{base / name}: image {bad} has the value {table[bad]!r}")
        if set(table) != set(images):
            raise ValueError(
                f"{base / name} and images.txt list different image ids ({len(set(table) ^ set(images))} differ)"
            )
    chosen = sorted(i for i in images if is_train[i] == ("1" if split == "train" else "0"))
    classes = sorted({int(v) for v in labels.values()})
    paths = [base / "images" / images[i] for i in chosen]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"CUB-200-2011: {missing[0]} is missing ({len(missing)} images)")
    return FileListDataset(paths, [int(labels[i]) - 1 for i in chosen], transform, [str(c) for c in classes])


def _cifar100_part(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"FC100: no {path} (CIFAR-100's python version, as torchvision unpacks it)")
    with open(path, "rb") as f:
        try:
            part = pickle.load(f, encoding="latin1")  # CIFAR's own format (as torchvision reads it)
        except (pickle.UnpicklingError, EOFError) as err:
            raise ValueError(f"{path}: not a CIFAR-100 batch file ({err})") from None
    missing = [k for k in ("data", "fine_labels", "coarse_labels") if k not in part]
    if missing:
        raise ValueError(
            f"{path}: a CIFAR-100 batch file has 'data', 'fine_labels' and 'coarse_labels'; this one lacks {missing}"
        )
    return part


def load_fc100(root: str | Path, split: str) -> ImageArrayDataset:
    """FC100 (see the module docstring): ``root`` is ``cifar-100-python`` or holds it."""
    root = Path(root)
    base = root / "cifar-100-python" if (root / "cifar-100-python").is_dir() else root
    if split not in FC100_SUPERCLASSES:
        raise ValueError(f"dataset 'fc100' has no split '{split}'; choose from {sorted(FC100_SUPERCLASSES)}")
    parts = [_cifar100_part(base / name) for name in ("train", "test")]
    data = np.concatenate([p["data"] for p in parts]).reshape(-1, 3, 32, 32)
    fine, coarse = (np.concatenate([np.asarray(p[k]) for p in parts]) for k in ("fine_labels", "coarse_labels"))
    keep = np.isin(coarse, FC100_SUPERCLASSES[split])
    return ImageArrayDataset(torch.from_numpy(np.ascontiguousarray(data[keep])), torch.from_numpy(fine[keep]).long())


def load_plant_disease(root: str | Path, split: str, transform: Callable) -> FileListDataset:
    """PlantVillage class folders (see the module docstring)."""
    root = Path(root)
    has_splits = (root / "train").is_dir() and (root / "test").is_dir()
    if not has_splits and split != "test":
        raise ValueError(
            f"plant_disease: {root} has no train/ and test/ folders, so all its images are the 'test' split "
            "(the few-shot pool); pass --split test"
        )
    folder = root / split if has_splits else root
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not classes:
        raise FileNotFoundError(f"plant_disease: {folder} holds no class folders")
    files = [
        (p, c)
        for c, name in enumerate(classes)
        for p in sorted((folder / name).iterdir())
        if p.suffix.lower() in IMAGE_EXTENSIONS
    ]
    return FileListDataset([p for p, _ in files], [c for _, c in files], transform, classes)
