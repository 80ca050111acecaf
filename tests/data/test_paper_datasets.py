"""Readers of the paper's datasets in their authors' formats, on fixtures written here in those formats."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from amortinv.cli import main
from amortinv.data import build_dataset
from amortinv.data.fewshot_sets import FC100_SUPERCLASSES


def _image(path, w: int, h: int, value: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((h, w, 3), value, np.uint8)
    arr[: h // 2, : w // 2] = 255 - value  # a corner that shows where crops and resizes land
    Image.fromarray(arr).save(path)


def _pts(path, points) -> None:
    body = "\n".join(f"{x} {y}" for x, y in points)
    path.write_text(f"version: 1\nn_points: {len(points)}\n{{\n{body}\n}}\n")


@pytest.fixture
def w300(tmp_path):
    rng = np.random.default_rng(0)
    for folder in ("01_Indoor", "02_Outdoor"):
        for k in range(5):
            _image(tmp_path / folder / f"{folder[3:]}_{k:03d}.png", 120, 100)
            _pts(tmp_path / folder / f"{folder[3:]}_{k:03d}.pts", rng.uniform(20, 80, (68, 2)).round(3))
    return tmp_path


def test_300w_split_crop_and_normalised_targets(w300):
    train, test = (
        build_dataset("300w", w300, "train", image_size=32),
        build_dataset("300w", w300, "test", image_size=32),
    )
    assert (len(train), len(test)) == (6, 4)  # 40% of each folder's 5 images to test (the paper's Appendix A.2)
    order = np.random.RandomState(0).permutation(5)
    expected = [sorted((w300 / f).glob("*.png"))[k].name for f in ("01_Indoor", "02_Outdoor") for k in order[3:]]
    assert [p.name for p in test.paths] == expected
    x, y = train[0]
    assert x.dtype == torch.uint8 and x.shape == (3, 32, 32) and y.shape == (136,)
    pts = np.loadtxt(train.paths[0].with_suffix(".pts"), skiprows=3, max_rows=68)
    lo, hi = pts.min(0), pts.max(0)
    side = (hi - lo).max() * 1.1
    expected = (pts - ((lo + hi) / 2 - side / 2)) / side  # the square around the landmarks, 10% margin
    torch.testing.assert_close(y, torch.tensor(expected.reshape(-1), dtype=torch.float32))
    assert float(y.min()) >= 0 and float(y.max()) <= 1


def test_300w_bad_pts_names_file_and_line(w300):
    bad = next((w300 / "01_Indoor").glob("*.pts"))
    lines = bad.read_text().splitlines()
    lines[10] = "12.5 oops"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"{bad.name}, line 11: expected 'x y'"):
        for split in ("train", "test"):  # the bad file is in one of the two splits
            build_dataset("300w", w300, split)


def test_lsp_paper_split_and_targets_normalised_by_image_size(tmp_path):
    from scipy.io import savemat

    n = 1003  # a seeded 60/40 split (the paper's Appendix A.2): 602 train, 401 test
    joints = np.zeros((3, 14, n))
    joints[0], joints[1] = np.arange(14)[:, None] * 5.0, np.arange(n)[None, :] % 90
    savemat(tmp_path / "joints.mat", {"joints": joints})
    order = np.random.RandomState(0).permutation(n)
    first_test = int(order[602])
    for k in range(n):
        (tmp_path / "images").mkdir(exist_ok=True)
        if k == first_test:
            _image(tmp_path / "images" / f"im{k + 1:04d}.jpg", 80, 100)
        else:
            (tmp_path / "images" / f"im{k + 1:04d}.jpg").write_bytes(b"")  # only read when an item is
    train, test = (
        build_dataset("lsp", tmp_path, "train", image_size=32),
        build_dataset("lsp", tmp_path, "test", image_size=32),
    )
    assert (len(train), len(test)) == (602, 401)
    assert sorted(p.name for p in train.paths + test.paths) == sorted(f"im{k + 1:04d}.jpg" for k in range(n))
    x, y = test[0]  # x = 5j / 80, y = (k % 90) / 100
    expected = np.stack([np.arange(14) * 5.0 / 80, np.full(14, (first_test % 90) / 100)], 1).reshape(-1)
    assert x.shape == (3, 32, 32) and y.shape == (28,)
    torch.testing.assert_close(y, torch.tensor(expected, dtype=torch.float32))
    savemat(tmp_path / "joints.mat", {"joints": np.zeros((2, 14, 3))})
    with pytest.raises(ValueError, match=r"joints.mat: 'joints' has shape \(2, 14, 3\)"):
        build_dataset("lsp", tmp_path, "train")


def test_celeba_landmarks_official_partition_and_targets(tmp_path):
    base = tmp_path / "celeba"
    names = [f"{k:06d}.jpg" for k in range(1, 7)]
    for n in names:
        _image(base / "img_align_celeba" / n, 178, 218)
    (base / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in zip(names, (0, 0, 0, 1, 2, 2))))
    marks = {n: [70 + k, 110, 108, 112, 90, 130, 72, 150, 106, 152] for k, n in enumerate(names)}
    (base / "list_landmarks_align_celeba.txt").write_text(
        "6\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y\n"
        + "".join(f"{n} " + " ".join(map(str, v)) + "\n" for n, v in marks.items())
    )
    train, val, test = (
        build_dataset("celeba_landmarks", tmp_path, s, image_size=32) for s in ("train", "valid", "test")
    )
    assert (len(train), len(val), len(test)) == (3, 1, 2)
    _, y = test[1]
    v = np.array(marks["000006.jpg"], dtype=np.float64).reshape(5, 2) / np.array([178, 218])
    torch.testing.assert_close(y, torch.tensor(v.reshape(-1), dtype=torch.float32))
    (base / "list_landmarks_align_celeba.txt").write_text("1\nheader\n000001.jpg 1 2 3\n")
    with pytest.raises(ValueError, match="list_landmarks_align_celeba.txt, line 3: expected 11 fields, got 4"):
        build_dataset("celeba_landmarks", tmp_path, "train")


def test_cub200_distributed_split_labels_and_bad_files(tmp_path):
    base = tmp_path / "CUB_200_2011"
    paths = [f"{c:03d}.Bird_{c}/img_{k}.jpg" for c in (1, 2, 200) for k in range(2)]
    for p in paths:
        _image(base / "images" / p, 60, 40)
    (base / "images.txt").write_text("".join(f"{i + 1} {p}\n" for i, p in enumerate(paths)))
    (base / "image_class_labels.txt").write_text("".join(f"{i + 1} {int(p[:3])}\n" for i, p in enumerate(paths)))
    (base / "train_test_split.txt").write_text("".join(f"{i + 1} {1 - i % 2}\n" for i in range(len(paths))))
    train, test = (
        build_dataset("cub200", tmp_path, "train", image_size=24),
        build_dataset("cub200", tmp_path, "test", image_size=24),
    )
    assert train.targets.tolist() == [0, 1, 199] and test.targets.tolist() == [0, 1, 199]
    assert [p.name for p in train.paths] == ["img_0.jpg"] * 3 and train[0][0].shape == (3, 24, 24)
    (base / "train_test_split.txt").write_text("1 1\n2 maybe\n")
    with pytest.raises(
        ValueError, match="train_test_split.txt, line 2|train_test_split.txt: image 2 has the value 'maybe'"
    ):
        build_dataset("cub200", tmp_path, "train")


def test_fc100_splits_by_superclass(tmp_path):
    base = tmp_path / "cifar-100-python"
    base.mkdir()
    for name, n in (("train", 200), ("test", 100)):
        fine = np.arange(n) % 100
        coarse = fine // 5  # a stand-in fine -> superclass map: 5 fine classes per superclass
        part = {"data": np.full((n, 3072), 7, np.uint8), "fine_labels": fine.tolist(), "coarse_labels": coarse.tolist()}
        (base / name).write_bytes(pickle.dumps(part))
    sizes = {}
    for split, supers in FC100_SUPERCLASSES.items():
        ds = build_dataset("fc100", tmp_path, split)
        assert set((ds.targets // 5).tolist()) == set(supers) and ds.images.shape[1:] == (3, 32, 32)
        sizes[split] = len(ds)
    assert sizes == {"train": 180, "val": 60, "test": 60}  # 3 images per fine class, 5 fine classes per superclass


def test_plant_disease_class_folders_are_the_few_shot_pool(tmp_path):
    for c in ("Apple___healthy", "Tomato___Late_blight"):
        for k in range(3):
            _image(tmp_path / c / f"{k}.JPG", 50, 50)
    ds = build_dataset("plant_disease", tmp_path, "test", image_size=16)
    assert (
        len(ds) == 6
        and ds.targets.tolist() == [0, 0, 0, 1, 1, 1]
        and ds.classes == ["Apple___healthy", "Tomato___Late_blight"]
    )
    with pytest.raises(ValueError, match="--split test"):
        build_dataset("plant_disease", tmp_path, "train")


def test_landmark_regression_is_a_transfer_task(w300, tmp_path):
    from amortinv.encoders import build_encoder, save_encoder
    from amortinv.spaces import load_space

    save_encoder(
        tmp_path / "enc" / "encoder",
        build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.0625),
        metadata={"space": load_space("groups2").to_config()},
    )
    for folder in ("01_Indoor", "02_Outdoor"):  # 24 images: enough for a validation split
        for k in range(5, 12):
            _image(w300 / folder / f"{folder[3:]}_{k:03d}.png", 120, 100)
            _pts(w300 / folder / f"{folder[3:]}_{k:03d}.pts", np.random.default_rng(k).uniform(20, 80, (68, 2)))
    main(
        [
            "transfer",
            "--encoder",
            str(tmp_path / "enc"),
            "--data",
            "300w",
            "--data-root",
            str(w300),
            "--task",
            "regression",
            "--image-size",
            "32",
            "--i-steps",
            "1",
            "--eval-every",
            "1",
            "--i-batch-size",
            "8",
            "--val-fraction",
            "0.3",
            "--out",
            str(tmp_path / "t"),
        ]
    )
    import json

    result = json.loads((tmp_path / "t" / "result.json").read_text())["tasks"]["300w:regression"]
    assert result["data"]["outputs"] == 136 and "r2" in result["methods"]["ai_forward"]["test"]
