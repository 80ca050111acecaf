import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.distance import mahalanobis as scipy_mahalanobis
from sklearn.covariance import LedoitWolf

from amortinv.encoders import build_encoder
from amortinv.encoders.base import Encoder
from amortinv.measure import (
    GRIDS,
    IDENTITY,
    TRANSFORMS,
    apply_transform,
    invariance_grid,
    invariance_path,
    ledoit_wolf,
    mahalanobis,
    measure_invariance,
)
from amortinv.theory import bounds_for_run, descriptor_count, generalisation_bound, linear_readout_bound
from amortinv.viz.measure import grid_plot, path_plot, radar_plot


class MeanColour(Encoder):
    """Global mean colour plus a spatial moment: exactly invariant to flips of the moment's sign only via abs."""

    def __init__(self) -> None:
        super().__init__(0)
        self.arch = {"in_channels": 3}
        self.w = torch.nn.Parameter(torch.ones(1))

    @property
    def feature_dim(self) -> int:
        return 4

    def forward(self, x, i=None):
        self.check_inputs(x, i)
        mean = x.mean((2, 3)) * self.w
        col = torch.linspace(-1, 1, x.shape[-1])
        moment = (x.mean((1, 2)) * col).sum(1, keepdim=True).abs()  # |horizontal moment|: flip-invariant
        return torch.cat([mean, moment], 1)


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_identity_parameter_returns_the_input(name):
    x = torch.rand(3, 3, 24, 24)
    assert torch.allclose(apply_transform(name, x, IDENTITY[name]), x, atol=1e-5)
    other = next(p for p in GRIDS[name] if p != IDENTITY[name])
    assert not torch.allclose(apply_transform(name, x, other), x, atol=1e-3)


def test_exactly_invariant_encoder_scores_one_and_zero():
    torch.manual_seed(0)
    images = (torch.rand(20, 3, 16, 16) * 255).to(torch.uint8)
    table = measure_invariance(MeanColour(), images, [None], ["hflip", "brightness"], images, labels=["mean"])
    hflip = table["results"]["mean"]["transforms"]["hflip"]
    assert hflip["cosine"] == pytest.approx(1.0, abs=1e-5) and hflip["mahalanobis"] == pytest.approx(0.0, abs=1e-3)
    bright = table["results"]["mean"]["transforms"]["brightness"]
    assert bright["mahalanobis"] > 0.5  # brightness does change the mean colour
    assert "per_parameter" in bright and "1" not in bright["per_parameter"]  # identity excluded


def test_mahalanobis_and_ledoit_wolf_match_scipy_and_sklearn():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    vi = np.linalg.inv(np.cov(rng.normal(size=(50, 4)), rowvar=False))
    ours = mahalanobis(torch.tensor(a), torch.tensor(b), torch.tensor(vi))
    assert ours.numpy() == pytest.approx([scipy_mahalanobis(u, v, vi) for u, v in zip(a, b)], rel=1e-10)
    x = rng.normal(size=(30, 8)) @ rng.normal(size=(8, 8))
    cov, shrink = ledoit_wolf(torch.tensor(x))
    lw = LedoitWolf().fit(x)
    assert shrink == pytest.approx(lw.shrinkage_, rel=1e-8)
    assert cov.numpy() == pytest.approx(lw.covariance_, rel=1e-8)


def test_small_reference_set_is_reported_and_bad_descriptors_rejected():
    enc = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.0625).eval()
    images = (torch.rand(6, 3, 16, 16) * 255).to(torch.uint8)
    table = measure_invariance(enc, images, [torch.tensor([1.0, 0.0])], ["hflip"], images[:4])
    assert any("shrinkage" in n for n in table["notes"])
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        measure_invariance(enc, images, [torch.tensor([1.0, 0.0, 1.0])], ["hflip"], images)
    with pytest.raises(ValueError, match="needs descriptors"):
        measure_invariance(enc, images, [None], ["hflip"], images)
    with pytest.raises(ValueError, match="unknown vision transform 'zoom'"):
        apply_transform("zoom", images.float(), 1.0)
    path = invariance_path(enc, images, "hflip", [1, 0], [0, 1], steps=3)
    assert [p["i"] for p in path] == [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]] and all(-1 <= p["cosine"] <= 1 for p in path)
    grid = invariance_grid(enc, images, "grayscale", steps=2)
    assert grid.shape == (2, 2)
    with pytest.raises(ValueError, match="K = 2"):
        invariance_grid(
            build_encoder("hyper_resnet18", invariance_dim=3, cifar_stem=True, width=0.0625), images, "hflip"
        )


def test_bound_matches_hand_computation():
    b = generalisation_bound(0.1, n=50000, c=10, x_norm=1.0, b_norm=10.0, num_descriptors=4, m=1.0, delta=0.05)
    assert b.complexity == pytest.approx(2 * math.sqrt(20) * 10 / math.sqrt(50000))
    assert b.confidence == pytest.approx(3 * math.sqrt(math.log(4 / 0.05) / 100000))
    assert b.bound == pytest.approx(0.1 + 0.4 + 0.019857, abs=1e-5)
    lin = linear_readout_bound(0.1, n=50000, c=10, x_norm=1.0, b_norm=10.0)
    assert lin.confidence == pytest.approx(3 * math.sqrt(math.log(2 / 0.05) / 100000))
    assert descriptor_count(2, 3) == 64
    run = bounds_for_run(
        torch.tensor([[3.0, 4.0], [1.0, 0.0]]), torch.tensor([[1.0, 2.0], [2.0, 4.0]]), 0.0, 2, k=2, bits=2
    )
    assert run["X"] == 5.0 and run["B"] == pytest.approx(5.0) and run["num_descriptors"] == 16
    assert run["amortised"]["bound"] > run["linear_readout"]["bound"]
    with pytest.raises(ValueError, match="delta"):
        generalisation_bound(0.1, 10, 2, 1, 1, 4, delta=1.5)


def test_plots_are_written(tmp_path):
    radar_plot(
        {"[1,0]": {"hflip": 0.9, "rotation": 0.5, "hue": 0.2}, "baseline": {"hflip": 0.8, "rotation": 0.6, "hue": 0.7}},
        tmp_path / "r.png",
    )
    path_plot({"hflip": [{"t": 0.0, "cosine": 0.5}, {"t": 1.0, "cosine": 0.9}]}, tmp_path / "p.png", "[1,0]", "[0,1]")
    grid_plot(torch.rand(4, 4), tmp_path / "g.png", ("spatial", "appearance"), "hflip")
    for name in ("r", "p", "g"):
        with Image.open(tmp_path / f"{name}.png") as im:
            assert im.size[0] > 200 and len(set(im.convert("L").getdata())) > 20


def test_measure_and_bound_cli(tiny_npz, tmp_path, capsys, saved_encoders):
    from amortinv.cli import main

    run, base = saved_encoders["ai"], saved_encoders["plain"]  # saved weights are all measure and bound need
    out = tmp_path / "m"
    main(
        [
            "measure",
            "--encoder",
            str(run),
            "--data",
            "npz",
            "--data-root",
            str(tiny_npz),
            "--split",
            "train",
            "--descriptors",
            "1,0;0,1;1,1",
            "--transforms",
            "hflip,rotation,grayscale",
            "--baseline",
            str(base),
            "--num-images",
            "20",
            "--reference-images",
            "40",
            "--interpolate",
            "1,0->0,1",
            "--interpolate-transforms",
            "hflip",
            "--steps",
            "3",
            "--grid-transform",
            "hflip",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    table = json.loads((out / "invariance.json").read_text())
    assert set(table["results"]) == {
        "[1,0] spatial",
        "[0,1] appearance",
        "[1,1] spatial+appearance",
        "baseline resnet18",
    }
    assert len((out / "invariance.csv").read_text().splitlines()) == 1 + 4 * 3
    for png in ("radar.png", "interpolation.png", "grid.png"):
        assert (out / png).stat().st_size > 5000
    main(
        [
            "bound",
            "--encoder",
            str(run),
            "--data",
            "npz",
            "--data-root",
            str(tiny_npz),
            "--descriptor",
            "0.2,0.8",
            "--bits",
            "1",
            "--out",
            str(out / "b.json"),
        ]
    )
    bound = json.loads((out / "b.json").read_text())  # a .json --out is the file itself
    assert bound["descriptor"] == [0.0, 1.0] and bound["num_descriptors"] == 4 and bound["n"] > 0
    printed = capsys.readouterr().out
    assert "inputs: empirical error" in printed and "|I| 4" in printed and "descriptor [0.0, 1.0]" in printed
    assert "files written" in printed and "interpolation.png" in printed
    with pytest.raises(SystemExit):
        main(
            [
                "measure",
                "--encoder",
                str(run),
                "--data",
                "npz",
                "--data-root",
                str(tiny_npz),
                "--descriptors",
                "1,0,1",
                "--out",
                str(out),
            ]
        )
    assert "shape (2,)" in capsys.readouterr().err
