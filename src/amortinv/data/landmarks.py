"""Landmark regression sets of the paper's Table 1, read as their authors distribute them: 300-W, Leeds Sports Pose, CelebA.

Each item is ``(uint8 image (3, S, S), float32 targets (2P,))``: the P landmarks' (x, y), in order,
as fractions of the S x S image the encoder sees (0 = left/top edge, 1 = right/bottom), so a
``regression`` transfer task reads them directly and R^2 is the mean over the 2P outputs. Images
are decoded when an item is read. Bad annotation files raise ``ValueError`` naming file and line.

- ``300w``: the 300-W challenge folders ``01_Indoor`` and ``02_Outdoor`` (300 + 300 ``.png``
  images, each with a ``.pts`` file of 68 points). Split as the paper says (its Appendix A.2: 40% of
  the images of each set form the test set): per folder, a seeded permutation (NumPy seed 0) of
  its sorted images, the first 60% for training and the last 40% for test. Crop: the square centred on the landmarks' bounding box, of side
  ``(1 + margin)`` times its longer side (margin 0.1; the paper's code took the box's top-left
  square with no margin, which cuts the chin off).
- ``lsp``: Leeds Sports Pose, ``images/im0001.jpg`` ... and ``joints.mat`` (``joints``: 3 x 14 x N,
  rows x, y, visibility; LSP-extended's 14 x 3 x N is read too). Split as the paper says (Appendix
  A.2: 40% of the images for testing; the distribution's own 1,000 / 1,000 split is not what its
  Table 1 used): a seeded permutation (NumPy seed 0), the first 60% train, the last 40% test. The whole image is resized to S x S, so the 28 targets are
  x / width and y / height (visibility is not a target).
- ``celeba_landmarks``: CelebA in torchvision's layout (``celeba/img_align_celeba/*.jpg``,
  ``list_landmarks_align_celeba.txt``, ``list_eval_partition.txt``), the 5 aligned landmarks
  (10 targets, x / 178 and y / 218 of the aligned image, resized to S x S) and the official
  train / valid / test partition. Read directly (torchvision's reader insists on the original
  files' checksums).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

__all__ = ["LandmarkDataset", "load_300w", "load_lsp", "load_celeba_landmarks", "read_pts"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


class LandmarkDataset(Dataset):
    """Images with landmark targets: the crop box (left, top, side) of each image in pixels and its landmarks (P, 2) in pixels.

    ``box`` None means the whole image (stretched to a square, landmarks divided by its width and height).
    """

    def __init__(
        self,
        paths: Sequence[Path],
        points: Sequence[np.ndarray],
        boxes: Sequence[tuple[float, float, float] | None],
        size: int,
    ) -> None:
        if not paths:
            raise ValueError("the landmark dataset is empty")
        self.paths, self.points, self.boxes, self.size = list(paths), list(points), list(boxes), int(size)

    def __len__(self) -> int:
        return len(self.paths)

    def _target(self, k: int, image_size: tuple[int, int] | None = None) -> torch.Tensor:
        box, pts = self.boxes[k], self.points[k].astype(np.float64)
        if box is None:
            w, h = image_size
            scaled = pts / np.array([w, h])
        else:
            left, top, side = box
            scaled = (pts - np.array([left, top])) / side
        return torch.as_tensor(scaled.reshape(-1), dtype=torch.float32)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        with Image.open(self.paths[k]) as im:
            image = im.convert("RGB")
        box = self.boxes[k]
        if box is not None:
            left, top, side = box
            image = image.crop(
                (round(left), round(top), round(left + side), round(top + side))
            )  # outside the image: black
        target = self._target(k, image.size)
        pixels = TF.resize(TF.pil_to_tensor(image), [self.size, self.size], antialias=True)
        return pixels, target


def read_pts(path: Path) -> np.ndarray:
    """The (P, 2) points of an IBUG ``.pts`` file (``version: 1``, ``n_points: P``, ``{``, P lines ``x y``, ``}``)."""
    lines = [line.strip() for line in Path(path).read_text().splitlines()]
    try:
        count_line = next(k for k, line in enumerate(lines) if line.startswith("n_points"))
        count = int(lines[count_line].split(":")[1])
        start = lines.index("{") + 1
    except (StopIteration, ValueError, IndexError):
        raise ValueError(f"{path}: not a .pts file (needs 'n_points: N' and a '{{' line)") from None
    points = []
    for k in range(start, start + count):
        try:
            x, y = (float(v) for v in lines[k].split())
        except (ValueError, IndexError):
            raise ValueError(
                f"{path}, line {k + 1}: expected 'x y', got {lines[k]!r}"
                if k < len(lines)
                else f"{path}: {count} points announced, the file ends after {k - start}"
            ) from None
        points.append((x, y))
    if start + count >= len(lines) or lines[start + count] != "}":
        raise ValueError(f"{path}, line {start + count + 1}: expected '}}' after {count} points")
    return np.array(points)


def _square_box(points: np.ndarray, margin: float) -> tuple[float, float, float]:
    lo, hi = points.min(0), points.max(0)
    side = float((hi - lo).max()) * (1 + margin)
    centre = (lo + hi) / 2
    return float(centre[0] - side / 2), float(centre[1] - side / 2), side


def load_300w(root: str | Path, split: str = "train", size: int = 96, margin: float = 0.1) -> LandmarkDataset:
    """300-W (see the module docstring): ``root`` holds ``01_Indoor`` and ``02_Outdoor``."""
    root = Path(root)
    folders = [root / f for f in ("01_Indoor", "02_Outdoor") if (root / f).is_dir()]
    if not folders:
        raise FileNotFoundError(f"300-W: {root} holds neither 01_Indoor nor 02_Outdoor")
    if split not in ("train", "test"):
        raise ValueError(f"dataset '300w' has no split '{split}'; choose from ['test', 'train']")
    chosen = []
    for folder in folders:
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        missing = [p for p in images if not p.with_suffix(".pts").is_file()]
        if missing:
            raise FileNotFoundError(
                f"300-W: {missing[0].with_suffix('.pts')} is missing ({len(missing)} images without landmarks)"
            )
        chosen += [images[k] for k in _split_60_40(len(images), split)]
    points = [read_pts(p.with_suffix(".pts")) for p in chosen]
    return LandmarkDataset(chosen, points, [_square_box(p, margin) for p in points], size)


def _split_60_40(n: int, split: str) -> np.ndarray:
    """Indices of ``split`` in the paper's split of n items: a seeded permutation (NumPy seed 0), 60% train, 40% test."""
    order = np.random.RandomState(0).permutation(n)
    cut = n - int(round(0.4 * n))
    return order[:cut] if split == "train" else order[cut:]


def load_lsp(root: str | Path, split: str = "train", size: int = 96) -> LandmarkDataset:
    """Leeds Sports Pose (see the module docstring): ``root`` holds ``images/`` and ``joints.mat``."""
    from scipy.io import loadmat

    root = Path(root)
    mat = root / "joints.mat"
    if not mat.is_file():
        raise FileNotFoundError(f"LSP: no {mat}")
    try:
        joints = np.asarray(loadmat(str(mat))["joints"], dtype=np.float64)
    except (KeyError, ValueError, TypeError, OSError) as err:
        raise ValueError(f"{mat}: not LSP's joints.mat (needs a 'joints' array): {err}") from None
    if joints.ndim == 3 and joints.shape[:2] == (3, 14):
        xy = joints[:2].transpose(2, 1, 0)  # LSP: (3, 14, N) -> (N, 14, 2)
    elif joints.ndim == 3 and joints.shape[:2] == (14, 3):
        xy = joints[:, :2].transpose(2, 0, 1)  # LSP-extended: (14, 3, N)
    else:
        raise ValueError(f"{mat}: 'joints' has shape {joints.shape}; LSP's is (3, 14, N) and LSP-extended's (14, 3, N)")
    paths = [root / "images" / f"im{k + 1:04d}.jpg" for k in range(len(xy))]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"LSP: {missing[0]} is missing ({len(missing)} of the {len(paths)} images joints.mat describes)"
        )
    if split not in ("train", "test"):
        raise ValueError(f"dataset 'lsp' has no split '{split}'; choose from ['test', 'train']")
    chosen = _split_60_40(len(xy), split)
    return LandmarkDataset([paths[k] for k in chosen], [xy[k] for k in chosen], [None] * len(chosen), size)


def _table(path: Path, columns: int) -> list[list[str]]:
    """Rows of a whitespace-separated CelebA text file (header lines skipped), each checked for ``columns`` fields."""
    if not path.is_file():
        raise FileNotFoundError(f"CelebA: no {path}")
    rows = []
    for k, line in enumerate(path.read_text().splitlines()):
        fields = line.split()
        if not fields or not fields[0].endswith(".jpg"):
            continue  # the count line and the column header
        if len(fields) != columns:
            raise ValueError(f"{path}, line {k + 1}: expected {columns} fields, got {len(fields)}")
        rows.append(fields)
    return rows


def load_celeba_landmarks(root: str | Path, split: str = "train", size: int = 96) -> LandmarkDataset:
    """CelebA's 5 aligned landmarks (see the module docstring): ``root`` holds ``celeba/`` (or is it)."""
    root = Path(root)
    base = root / "celeba" if (root / "celeba").is_dir() else root
    part = {"train": "0", "valid": "1", "val": "1", "test": "2"}.get(split)
    if part is None:
        raise ValueError(f"dataset 'celeba_landmarks' has no split '{split}'; choose from ['test', 'train', 'valid']")
    partition = {name: p for name, p in _table(base / "list_eval_partition.txt", 2)}
    rows = _table(base / "list_landmarks_align_celeba.txt", 11)
    try:
        points = {r[0]: np.array([float(v) for v in r[1:]]).reshape(5, 2) for r in rows}
    except ValueError:
        raise ValueError(f"{base / 'list_landmarks_align_celeba.txt'}: a landmark is not a number") from None
    names = sorted(n for n, p in partition.items() if p == part and n in points)
    paths = [base / "img_align_celeba" / n for n in names]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"CelebA: {missing[0]} is missing ({len(missing)} images of the '{split}' split)")
    return LandmarkDataset(paths, [points[n] for n in names], [None] * len(names), size)
