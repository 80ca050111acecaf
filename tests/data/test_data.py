from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from amortinv.data import build_dataset, dataset_targets, load_npz


def test_shared_cifar10_npz_decodes_and_caches(cifar_root, tmp_path, monkeypatch):
    monkeypatch.setenv("AMORTINV_CACHE", str(tmp_path / "c"))
    ds = build_dataset("cifar10", cifar_root, "test")
    assert len(ds) == 10_000 and ds.classes[0] == "airplane" and ds.task == "classification"
    img, label = ds[0]
    assert img.shape == (3, 32, 32) and img.dtype == torch.uint8 and int(label) == 0
    assert torch.bincount(ds.targets).tolist() == [1000] * 10
    cached = list((tmp_path / "c").glob("cifar10-test-*.npy"))
    assert len(cached) == 1
    # the second load reads the cache: corrupting the decode path would not matter
    np.save(cached[0], np.zeros((10_000, 32, 32, 3), np.uint8))
    again = build_dataset("cifar10", cifar_root, "test")
    assert again.images.sum() == 0
    resized = build_dataset("cifar10", cifar_root, "test", image_size=16)
    assert resized[0][0].shape == (3, 16, 16)


def _write_folder(root, classes=("cat", "dog"), n=3, size=(20, 28)):
    for c in classes:
        (root / c).mkdir(parents=True)
        for k in range(n):
            arr = np.full((*size, 3), 40 * k, np.uint8)
            Image.fromarray(arr).save(root / c / f"{k}.png")


def test_imagefolder(tmp_path):
    _write_folder(tmp_path / "train")
    _write_folder(tmp_path / "test", n=2)
    ds = build_dataset("imagefolder", tmp_path, "train", image_size=16)
    assert len(ds) == 6
    img, label = ds[4]
    assert img.shape == (3, 16, 16) and img.dtype == torch.uint8 and label == 1
    assert dataset_targets(ds).tolist() == [0, 0, 0, 1, 1, 1]
    assert len(build_dataset("imagefolder", tmp_path, "test", image_size=16)) == 4
    with pytest.raises(FileNotFoundError, match="no 'val'"):
        build_dataset("imagefolder", tmp_path, "val")


def test_generic_npz_classification_and_regression(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cls.npz", images=rng.integers(0, 255, (5, 8, 8, 3), dtype=np.uint8), labels=np.arange(5))
    ds = build_dataset("npz", tmp_path / "cls.npz")
    assert ds[0][0].shape == (3, 8, 8) and ds.task == "classification"
    np.savez(
        tmp_path / "train.npz",
        images=rng.integers(0, 255, (5, 3, 8, 8), dtype=np.uint8),
        targets=rng.normal(size=(5, 4)),
    )
    reg = build_dataset("npz", tmp_path, "train")
    assert reg.task == "regression" and reg.targets.shape == (5, 4) and reg.targets.dtype == torch.float32
    np.savez(tmp_path / "grey.npz", images=np.zeros((2, 8, 8), np.uint8), targets=np.ones(2))
    assert load_npz(tmp_path / "grey.npz").images.shape == (2, 3, 8, 8)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"images": np.zeros((4, 8, 8, 3), np.float32), "labels": np.zeros(4, int)}, "must be uint8"),
        ({"images": np.zeros((4, 8, 8, 5), np.uint8), "labels": np.zeros(4, int)}, "1 or 3 channels"),
        ({"images": np.zeros((4, 8), np.uint8), "labels": np.zeros(4, int)}, "must be"),
        ({"images": np.zeros((4, 8, 8, 3), np.uint8), "labels": np.zeros(3, int)}, r"shape \(4,\)"),
        ({"images": np.zeros((4, 8, 8, 3), np.uint8), "labels": np.zeros(4)}, "integers"),
        ({"images": np.zeros((4, 8, 8, 3), np.uint8), "targets": np.array([1, np.nan, 0, 0])}, "NaN"),
        ({"images": np.zeros((4, 8, 8, 3), np.uint8)}, "exactly one of"),
        ({"labels": np.zeros(4, int)}, "lacks arrays"),
    ],
)
def test_npz_bad_arrays_are_clear_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        build_dataset("npz", tmp_path / "bad.npz")


def test_missing_and_corrupt_files(tmp_path, cifar_root):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_dataset("cifar10", tmp_path / "nope")
    with pytest.raises(ValueError, match="needs a data root"):
        build_dataset("cifar10", None)
    with pytest.raises(ValueError, match="unknown dataset"):
        build_dataset("imagenet-22k", tmp_path)
    (tmp_path / "x.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="corrupt"):
        build_dataset("npz", tmp_path / "x.npz")
    with pytest.raises(FileNotFoundError, match="test.npz"):
        build_dataset("npz", tmp_path, "test")
    # a truncated copy of the shared archive
    data = (cifar_root / "test.npz").read_bytes()
    (tmp_path / "test.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt"):
        build_dataset("cifar10", tmp_path, "test")
    # torchvision layout absent: a clear message, no download
    with pytest.raises(FileNotFoundError, match="not found or corrupt"):
        build_dataset("cifar100", tmp_path)
    with pytest.raises(ValueError, match="no split"):
        build_dataset("cifar100", tmp_path, "val")


def test_corrupt_jpeg_inside_archive(tmp_path):
    jpeg = np.frombuffer(b"\xff\xd8garbage" * 10, np.uint8)
    np.savez(tmp_path / "train.npz", jpeg=jpeg, offsets=np.array([0, 50, len(jpeg)]), labels=np.array([0, 1]))
    with pytest.raises(ValueError, match="not a decodable JPEG"):
        build_dataset("cifar10", tmp_path, "train")


def test_a_single_npz_file_is_never_its_own_test_split(tiny_npz, tmp_path, capsys):
    from amortinv.cli import main
    from amortinv.data import build_dataset
    from amortinv.ssl.pretrain import PretrainConfig, run_pretrain

    single = tiny_npz / "train.npz"
    assert len(build_dataset("npz", str(single), "train")) == 96
    with pytest.raises(ValueError, match="has no 'test' split"):
        build_dataset("npz", str(single), "test")
    result = run_pretrain(
        PretrainConfig(
            data="npz",
            data_root=str(single),
            batch_size=16,
            max_steps=2,
            progress=False,
            encoder_options={"cifar_stem": True, "width": 0.0625},
            proj_hidden=32,
            proj_dim=16,
            out=str(tmp_path / "pre"),
        )
    )
    assert "knn_top1" not in result  # no test split, so no kNN accuracy (never measured on the training images)
    assert "no kNN evaluation" in capsys.readouterr().err  # and the run says so
    with pytest.raises(SystemExit):
        main(
            [
                "transfer",
                "--encoder",
                str(tmp_path / "pre"),
                "--data",
                "npz",
                "--data-root",
                str(single),
                "--out",
                str(tmp_path / "t"),
            ]
        )
    assert "has no 'test' split" in capsys.readouterr().err and not (tmp_path / "t").exists()


def test_imagefolder_without_splits_is_train_only_and_names_a_corrupt_image(tmp_path):
    _write_folder(tmp_path / "flat")
    assert len(build_dataset("imagefolder", tmp_path / "flat", "train", image_size=16)) == 6
    with pytest.raises(ValueError, match="has no 'test' split"):
        build_dataset("imagefolder", tmp_path / "flat", "test", image_size=16)
    ds = build_dataset("imagefolder", tmp_path / "flat", "train", image_size=16)
    broken = Path(ds.samples[2][0])
    broken.write_bytes(b"not an image")
    with pytest.raises(ValueError, match=f"unreadable image {broken}"):
        ds[2]
