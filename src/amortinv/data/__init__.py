"""Datasets: the registry, image array readers, the decode cache, the built-in shapes and audio readers."""

from amortinv.data.arrays import ImageArrayDataset, cache_dir, load_jpeg_npz, load_npz
from amortinv.data.audio import WaveformDataset, load_audio_folder, load_audio_npz, load_fsdd
from amortinv.data.registry import AUDIO_DATASETS, DATASETS, build_dataset, dataset_modality, dataset_targets
from amortinv.data.shapes import SHAPE_TASKS, make_shapes, shapes_dataset

__all__ = [
    "ImageArrayDataset",
    "build_dataset",
    "dataset_targets",
    "dataset_modality",
    "DATASETS",
    "AUDIO_DATASETS",
    "load_npz",
    "load_jpeg_npz",
    "cache_dir",
    "make_shapes",
    "shapes_dataset",
    "SHAPE_TASKS",
    "WaveformDataset",
    "load_fsdd",
    "load_audio_folder",
    "load_audio_npz",
]
