import json

import pytest
import torch

from amortinv.data import build_dataset, make_shapes, shapes_dataset


def test_shapes_are_deterministic_and_carry_their_factors():
    a, fa = make_shapes(16, seed=3)
    b, fb = make_shapes(16, seed=3)
    c, _ = make_shapes(16, seed=4)
    assert a.dtype == torch.uint8 and a.shape == (16, 3, 32, 32)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert all(torch.equal(fa[k], fb[k]) for k in fa)
    assert fa["orientation"].shape == (16, 1) and fa["orientation"].abs().max() <= 1 and fa["orientation"].std() > 0.3
    assert ((fa["position"] > 0.25) & (fa["position"] < 0.75)).all()
    ds = shapes_dataset("train", n=200)
    assert ds.task == "classification" and set(ds.targets.tolist()) == {0, 1, 2, 3}
    test = build_dataset("shapes", None, "test", image_size=32)
    assert len(test) == 2000 and not torch.equal(test.images[:200], ds.images)
    with pytest.raises(ValueError, match="splits"):
        shapes_dataset("val")


def test_colour_target_matches_the_drawn_shape():
    """The pixel at the shape's centre has (about) the foreground colour kept as the target."""
    imgs, f = make_shapes(64, seed=0)
    centre = (f["position"] * 32).long().clamp(0, 31)
    near = 0
    for k in range(64):
        pixel = imgs[k, :, centre[k, 1], centre[k, 0]].float() / 255
        near += int((pixel - f["colour"][k]).abs().max() < 0.2)
    assert near > 32  # most centres lie inside their shape (some shapes, like the ell, are hollow there)


def test_demo_quick_writes_a_parsable_report(tmp_path):
    from amortinv.cli import main

    out = tmp_path / "demo"
    main(["demo", "--quick", "--out", str(out), "--device", "cpu"])
    result = json.loads((out / "result.json").read_text())
    assert set(result["transfer"]) == {"shape", "orientation", "position", "colour"}
    for rec in result["transfer"].values():
        assert set(rec["ai"]["ai_forward"]["i"]) == {"spatial", "appearance"}
        assert "probe[plain]" in rec["plain"]
    assert set(result["learned_i"]) == set(result["transfer"])
    smoke, table = (out / "table.md").read_text().split("\n\n", 1)  # a quick run says it is a smoke test, first
    assert smoke.startswith("> **SMOKE TEST (--quick: 25 pre-training steps)") and result["smoke_test"] is True
    transfer_rows, fewshot_rows = (part.strip().splitlines() for part in table.split("\n\n"))
    assert len(transfer_rows) == 2 + 4 and "orientation" in table
    assert len(fewshot_rows) == 2 + 2 and "4-way 1-shot" in table and "4-way 5-shot" in table
    assert set(result["fewshot"]) == {"1shot", "5shot"}
    assert result["fewshot"]["5shot"]["accuracy"]["ai_learned"]["n"] == 10
    for png in ("learned_i.png", "radar.png"):
        assert (out / png).stat().st_size > 5000
    assert "baseline SimCLR" in result["invariance"]["results"]
