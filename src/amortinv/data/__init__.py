"""Datasets of uint8 images: the registry, array readers, the decode cache and the built-in shapes."""

from amortinv.data.arrays import ImageArrayDataset, cache_dir, load_jpeg_npz, load_npz
from amortinv.data.registry import DATASETS, build_dataset, dataset_targets
from amortinv.data.shapes import SHAPE_TASKS, make_shapes, shapes_dataset

__all__ = [
    "ImageArrayDataset", "build_dataset", "dataset_targets", "DATASETS", "load_npz", "load_jpeg_npz", "cache_dir",
    "make_shapes", "shapes_dataset", "SHAPE_TASKS",
]
