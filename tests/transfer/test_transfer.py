import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.metrics import r2_score as sk_r2

from amortinv.encoders import build_encoder
from amortinv.encoders.base import Encoder
from amortinv.spaces import InvarianceSpace, quantise
from amortinv.transfer import (
    SearchSettings,
    TransferSettings,
    classification_metrics,
    derive_task,
    make_task,
    r2_pooled,
    r2_uniform,
    regression_metrics,
    run_transfer,
    search_invariance,
)

G = InvarianceSpace.from_name("groups2")


class ToyEncoder(Encoder):
    """Features: [left-right contrast buried under a nuisance as i0 -> 1, (1 - i1) * noise, ones].
    Factor 0 carries the flip signal."""

    def __init__(self) -> None:
        super().__init__(invariance_dim=2)
        self.arch = {"in_channels": 3}
        self.scale = torch.nn.Parameter(torch.ones(1))

    @property
    def feature_dim(self) -> int:
        return 3

    def forward(self, x, i=None):
        i = self.check_inputs(x, i)
        w = x.shape[-1]
        contrast = (x[..., : w // 2].mean((1, 2, 3)) - x[..., w // 2 :].mean((1, 2, 3))) * self.scale
        noise = torch.sin(1000 * x.sum((1, 2, 3)))  # a deterministic nuisance
        nuisance = torch.sin(1700 * x.sum((1, 2, 3)))
        return torch.stack(
            [(1 - 0.9 * i[0]) * contrast + i[0] * nuisance, (1 - i[1]) * noise * 3, torch.ones_like(contrast)], dim=1
        )


def flip_data(n_train=400, n_test=100, seed=0):
    g = torch.Generator().manual_seed(seed)

    def split(n):
        x = torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8)
        x[..., :4] = x[..., :4] // 2  # left half darker
        return derive_task("flip", x, seed)

    return make_task("flip", "classification", split(n_train), split(n_test), val_fraction=0.25)


QUICK = TransferSettings(
    search=SearchSettings(steps=6, batch_size=64, eval_every=3),
    lrs=(1e-2,),
    weight_decays=(0.0,),
    epochs=2,
    batch_size=16,
    quantise_bits=(1, 2),
)


def test_learned_i_moves_to_the_needed_corner_and_stays_in_range():
    data = flip_data()
    settings = TransferSettings(
        search=SearchSettings(steps=20, lr_i=0.1, batch_size=100, eval_every=5), init="0.5", quantise_bits=()
    )
    res = run_transfer(ToyEncoder(), data, G, ["ai", "probe"], settings, log=lambda m: None)
    ai = res["ai"]
    assert all(0 <= v <= 1 for p in ai["path"] for v in p["i"])
    assert ai["i"]["spatial"] < 0.2, f"the flip factor must become sensitive, got {ai['i']}"
    assert ai["val_score"] > 0.9 and ai["start"] == "0.5 everywhere"
    assert ai["val_score"] >= max(r["val_score"] for k, r in res.items() if k.startswith("probe["))


def test_learned_i_never_scores_below_the_best_fixed_descriptor_on_validation(tiny_npz):
    from amortinv.data import build_dataset
    from amortinv.transfer import stack_dataset

    torch.manual_seed(0)
    enc = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.0625)
    tr, te = (
        stack_dataset(build_dataset("npz", tiny_npz, "train")),
        stack_dataset(build_dataset("npz", tiny_npz, "test")),
    )
    data = make_task("tiny", "classification", tr, te)
    res = run_transfer(enc, data, G, ["ai_forward", "probe"], QUICK, log=lambda m: None)
    best_fixed = max(r["val_score"] for k, r in res.items() if k.startswith("probe["))
    ai = res["ai_forward"]
    assert ai["val_score"] >= best_fixed
    assert ai["candidates_val"][ai["start"]] == pytest.approx(best_fixed, abs=1e-6)
    assert [p["step"] for p in ai["path"]] == list(range(7)) and "val_score" in ai["path"][3]


def test_the_transfer_grid_reaches_every_probe_and_the_search_objective(tiny_npz, monkeypatch):
    """``--lams`` is the grid of the probes (validation) and of the search's ridge objective (leave-one-out)."""
    from dataclasses import replace

    import amortinv.transfer.learn as learn
    from amortinv.data import build_dataset
    from amortinv.transfer import stack_dataset

    grids = []
    choose = learn.best_ridge_lambda
    monkeypatch.setattr(learn, "best_ridge_lambda", lambda f, t, lams: grids.append(tuple(lams)) or choose(f, t, lams))
    enc = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.0625)
    tr, te = (
        stack_dataset(build_dataset("npz", tiny_npz, "train")),
        stack_dataset(build_dataset("npz", tiny_npz, "test")),
    )
    data = make_task("tiny", "classification", tr, te)
    res = run_transfer(enc, data, G, ["ai_forward", "probe"], replace(QUICK, lams=(0.37, 0.05)), log=lambda m: None)
    assert grids == [(0.37, 0.05)]
    assert {r["selected"]["lam"] for r in res.values()} <= {0.37, 0.05}


def test_forward_mode_gives_the_same_search_as_backprop(tiny_npz):
    from amortinv.data import build_dataset
    from amortinv.features import frozen_features
    from amortinv.transfer import fit_probe, stack_dataset

    torch.manual_seed(0)
    enc = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.0625).double()
    tr, te = (
        stack_dataset(build_dataset("npz", tiny_npz, "train")),
        stack_dataset(build_dataset("npz", tiny_npz, "test")),
    )
    data = make_task("tiny", "classification", tr, te)
    probe_at = lambda i: fit_probe(
        frozen_features(enc, data.train[0], i, size=(16, 16)), frozen_features(enc, data.val[0], i, size=(16, 16)), data
    )  # noqa: E731
    runs = [
        search_invariance(
            enc,
            data,
            torch.tensor([0.5, 0.5]),
            probe_at,
            settings=SearchSettings(steps=4, batch_size=32, eval_every=2, gradient=g, chunk_size=10),
        )
        for g in ("backprop", "forward")
    ]
    paths = [[v for p in r.path for v in p["i"]] for r in runs]
    assert paths[0] == pytest.approx(paths[1], abs=1e-6)
    assert runs[0].path[-1]["i"] != [0.5, 0.5]


def test_selection_never_looks_at_the_test_split():
    clean = flip_data()
    poisoned = flip_data()
    poisoned.test = (poisoned.test[0], 1 - poisoned.test[1])  # the test labels are now all wrong
    settings = TransferSettings(search=SearchSettings(steps=4, batch_size=50, eval_every=2), quantise_bits=(1,))
    r1 = run_transfer(ToyEncoder(), clean, G, ["ai", "probe"], settings, log=lambda m: None)
    r2 = run_transfer(ToyEncoder(), poisoned, G, ["ai", "probe"], settings, log=lambda m: None)
    for method in r1:
        assert r1[method]["selected"] == r2[method]["selected"] and r1[method]["val_score"] == r2[method]["val_score"]
    assert (
        r1["ai"]["i"] == r2["ai"]["i"]
        and r1["ai"]["quantised"]["1bit"]["best_on_val"]["i"] == r2["ai"]["quantised"]["1bit"]["best_on_val"]["i"]
    )
    assert r1["ai"]["test"]["top1"] == pytest.approx(1 - r2["ai"]["test"]["top1"])


def test_metrics_match_sklearn():
    y = np.array([[0, 0], [1, 10], [2, 20]], dtype=float)
    yhat = np.array([[1, 0], [1, 10], [1, 20]], dtype=float)
    assert r2_uniform(torch.tensor(yhat), torch.tensor(y)) == pytest.approx(0.5)
    assert r2_uniform(torch.tensor(yhat), torch.tensor(y)) == pytest.approx(sk_r2(y, yhat))
    assert r2_pooled(torch.tensor(yhat), torch.tensor(y)) == pytest.approx(0.99382, abs=1e-5)
    rng = np.random.default_rng(0)
    t, p = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    assert regression_metrics(torch.tensor(p), torch.tensor(t))["r2"] == pytest.approx(sk_r2(t, p))
    assert r2_uniform(torch.tensor(p[:, :1]), torch.tensor(t[:, :1])) == pytest.approx(sk_r2(t[:, 0], p[:, 0]))
    labels = rng.integers(0, 4, 60)
    logits = rng.normal(size=(60, 4))
    m = classification_metrics(torch.tensor(logits), torch.tensor(labels), 4)
    assert m["top1"] == pytest.approx(accuracy_score(labels, logits.argmax(1)))
    assert m["mean_per_class"] == pytest.approx(balanced_accuracy_score(labels, logits.argmax(1)))


def test_protocol_baselines_quantisation_and_costs(tiny_npz):
    from amortinv.data import build_dataset
    from amortinv.transfer import stack_dataset

    torch.manual_seed(0)
    enc = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.0625)
    plain = build_encoder("resnet18", cifar_stem=True, width=0.0625)
    images = stack_dataset(build_dataset("npz", tiny_npz, "train"))[0]
    test_images = stack_dataset(build_dataset("npz", tiny_npz, "test"))[0]
    data = make_task(
        "rotation", "regression", derive_task("rotation", images), derive_task("rotation", test_images, seed=1)
    )
    from dataclasses import replace

    settings = replace(QUICK, finetune_stages=(1, 0), finetune_budget="ai")
    res = run_transfer(
        enc,
        data,
        G,
        ["ai_forward", "probe", "fusion", "finetune"],
        settings,
        plain_encoders={"plain": plain},
        log=lambda m: None,
    )
    expected = {
        "ai_forward",
        "probe[[1,1] spatial+appearance]",
        "probe[[1,0] spatial]",
        "probe[[0,1] appearance]",
        "probe[plain:plain]",
        "fusion",
        "finetune_1_budget",
        "finetune_all_budget",
    }
    assert set(res) == expected
    for rec in res.values():
        assert set(rec["test"]) == {"r2", "r2_pooled_reference"}
        assert rec["time_s"] >= 0 and rec["trainable_params"] > 0 and "peak_memory_mb" in rec
    ai = res["ai_forward"]
    assert set(ai["i"]) == {"spatial", "appearance"} and all(0 <= v <= 1 for v in ai["i"].values())
    assert ai["trainable_params"] == 2 * (enc.feature_dim + 1) + 2
    assert set(ai["quantised"]) == {"1bit", "2bit"}
    for bits, q in ai["quantised"].items():
        levels = 2 ** int(bits[0]) - 1
        for row in q.values():
            assert all(abs(v * levels - round(v * levels)) < 1e-4 for v in row["i"].values())
        assert q["rounded"]["i"] == G.describe(quantise(torch.tensor(list(ai["i"].values())), int(bits[0])))
        assert q["best_on_val"]["val_score"] >= q["rounded"]["val_score"]
    assert (
        res["finetune_all_budget"]["trainable_params"]
        > res["finetune_1_budget"]["trainable_params"]
        > ai["trainable_params"]
    )
    assert res["fusion"]["trainable_params"] == 2 * (3 * enc.feature_dim + plain.feature_dim + 1)


def test_bad_inputs_are_clear():
    x = torch.zeros(10, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="10 images but 9 targets"):
        make_task("t", "regression", (x, torch.zeros(9, 2)), (x, torch.zeros(10, 2)))
    with pytest.raises(ValueError, match="NaN"):
        make_task("t", "regression", (x, torch.full((10, 2), float("nan"))), (x, torch.zeros(10, 2)))
    with pytest.raises(ValueError, match="2 outputs, test targets 3"):
        make_task("t", "regression", (x, torch.zeros(10, 2)), (x, torch.zeros(10, 3)))
    with pytest.raises(ValueError, match="integer labels"):
        make_task("t", "classification", (x, torch.zeros(10, 2)), (x, torch.zeros(10, 2)))
    data = make_task("t", "classification", (x, torch.arange(10) % 2), (x, torch.arange(10) % 2))
    wrong_k = build_encoder("hyper_resnet18", invariance_dim=5, cifar_stem=True, width=0.0625)
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        run_transfer(wrong_k, data, G, ["ai"], TransferSettings(epochs=1), log=lambda m: None)
    with pytest.raises(ValueError, match="conditioned encoder"):
        search_invariance(build_encoder("resnet18", cifar_stem=True, width=0.0625), data, torch.ones(2), lambda i: None)
    with pytest.raises(ValueError, match="unknown derived task"):
        derive_task("zoom", x)


def test_transfer_cli_end_to_end(tiny_npz, tmp_path, capsys, saved_encoders):
    import json

    from PIL import Image

    from amortinv.cli import main

    run = saved_encoders["ai"]  # saved weights are all transfer needs
    out = tmp_path / "transfer"
    main(
        [
            "transfer",
            "--encoder",
            str(run),
            "--data",
            "npz",
            "--data-root",
            str(tiny_npz),
            "--task",
            "classification,rotation",
            "--methods",
            "ai,ai_forward",
            "--baselines",
            "probe",
            "--i-steps",
            "2",
            "--eval-every",
            "1",
            "--i-batch-size",
            "32",
            "--batch-size",
            "16",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    result = json.loads((out / "result.json").read_text())
    printed = capsys.readouterr().out
    assert (
        "== npz:classification" in printed
        and "test top1" in printed
        and "== rotation" in printed
        and "test r2" in printed
    )
    assert "files written:" in printed and "learned_i.png" in printed
    assert set(result["tasks"]) == {"npz:classification", "rotation"}
    cls = result["tasks"]["npz:classification"]["methods"]
    assert {"top1", "mean_per_class"} == set(cls["ai"]["test"]) and set(cls["ai"]["i"]) == {"spatial", "appearance"}
    assert set(result["tasks"]["rotation"]["methods"]["ai_forward"]["test"]) == {"r2", "r2_pooled_reference"}
    assert set(result["learned_i"]) == {"npz:classification", "rotation"}
    with Image.open(out / "learned_i.png") as im:
        assert im.size[0] > 300
    with pytest.raises(SystemExit):
        main(
            [
                "transfer",
                "--encoder",
                str(run),
                "--data",
                "npz",
                "--data-root",
                str(tiny_npz),
                "--task",
                "regression",
                "--out",
                str(out),
            ]
        )
    with pytest.raises(SystemExit):
        main(
            [
                "transfer",
                "--encoder",
                str(run),
                "--data",
                "npz",
                "--data-root",
                str(tiny_npz),
                "--space",
                "individual5",
                "--out",
                str(out),
            ]
        )


def test_batchnorm_statistics_recomputed_at_a_descriptor_and_restored(tiny_npz):
    from amortinv.data import build_dataset
    from amortinv.transfer import stack_dataset
    from amortinv.transfer.batchnorm import bn_buffers, recompute_bn_stats, using_bn_stats
    from amortinv.transfer.data import prepare_batch

    torch.manual_seed(0)
    enc = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.0625).eval()
    images = stack_dataset(build_dataset("npz", tiny_npz, "train"))[0]
    before = bn_buffers(enc)
    stats = recompute_bn_stats(enc, images, torch.tensor([1.0, 0.0]), size=(16, 16), batch_size=len(images))
    assert all(torch.equal(before[k], v) for k, v in bn_buffers(enc).items())  # the encoder is left as it was
    assert not enc.training
    with torch.no_grad():  # the stem BatchNorm's statistics are those of the stem conv's outputs over all images
        stem = enc.conv1(prepare_batch(enc, images, (16, 16), torch.device("cpu")))
    assert torch.allclose(stats["bn1.running_mean"], stem.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(stats["bn1.running_var"], stem.var((0, 2, 3), unbiased=True), rtol=1e-4)
    other = recompute_bn_stats(enc, images, torch.tensor([0.0, 1.0]), size=(16, 16))
    assert not torch.allclose(stats["layer4.1.bn2.running_mean"], other["layer4.1.bn2.running_mean"])  # depends on i
    with using_bn_stats(enc, stats):
        assert torch.equal(enc.bn1.running_mean, stats["bn1.running_mean"])
    assert torch.equal(enc.bn1.running_mean, before["bn1.running_mean"])
    data = make_task(
        "tiny",
        "classification",
        stack_dataset(build_dataset("npz", tiny_npz, "train")),
        stack_dataset(build_dataset("npz", tiny_npz, "test")),
    )
    from dataclasses import replace

    res = run_transfer(enc, data, G, ["ai_forward", "probe"], replace(QUICK, recalibrate_bn=True), log=lambda m: None)
    assert res["ai_forward"]["val_score"] >= max(r["val_score"] for k, r in res.items() if k.startswith("probe["))
    assert all(torch.equal(before[k], v) for k, v in bn_buffers(enc).items())


def test_features_never_depend_on_the_rest_of_the_batch(tiny_npz, tmp_path):
    from amortinv.data import build_dataset
    from amortinv.encoders import load_encoder, save_encoder
    from amortinv.features import frozen_features
    from amortinv.transfer import stack_dataset

    torch.manual_seed(0)
    save_encoder(tmp_path / "enc", build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.0625))
    enc = load_encoder(tmp_path / "enc")
    assert not enc.training  # loaded for use
    enc.train()  # even a module left in train mode by its caller
    images = stack_dataset(build_dataset("npz", tiny_npz, "train"))[0]
    i = torch.tensor([1.0, 0.0])
    whole, pieces = (
        frozen_features(enc, images, i, size=(16, 16), batch_size=96),
        frozen_features(enc, images, i, size=(16, 16), batch_size=7),
    )
    assert torch.allclose(whole, pieces, atol=1e-5)
    assert enc.training  # the caller's mode is restored
