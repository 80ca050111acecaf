"""Few-shot episodes, heads, per-episode invariance learning, low-shot regression and the CLI."""

import json
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import Ridge

from amortinv.encoders import build_encoder
from amortinv.fewshot import (
    EpisodeSampler,
    EpisodeSearch,
    FeatureCache,
    FewShotSettings,
    RidgeHead,
    learn_support_descriptor,
    low_shot_split,
    mean_ci,
    run_episodes,
    run_lowshot,
    support_objective,
)
from amortinv.spaces import InvarianceSpace
from amortinv.transfer.learn import descriptor_gradient

G = InvarianceSpace.from_name("groups2")


def test_episodes_are_disjoint_balanced_and_a_function_of_seed_and_index():
    labels = torch.arange(200) % 10
    sampler = EpisodeSampler(labels, ways=5, shots=3, queries=4, seed=7)
    ep = sampler(11)
    assert len(set(ep.support.tolist()) & set(ep.query.tolist())) == 0
    assert torch.bincount(ep.support_labels).tolist() == [3] * 5 and torch.bincount(ep.query_labels).tolist() == [4] * 5
    for idx, lab in ((ep.support, ep.support_labels), (ep.query, ep.query_labels)):
        assert torch.equal(labels[idx], ep.classes[lab])  # episode labels index the drawn classes
    again = EpisodeSampler(labels, ways=5, shots=3, queries=4, seed=7)
    assert torch.equal(again(11).support, ep.support) and torch.equal(again(11).query, ep.query)
    assert not torch.equal(sampler(12).support, ep.support)
    assert not torch.equal(EpisodeSampler(labels, 5, 3, 4, seed=8)(11).support, ep.support)


def test_sampler_skips_small_classes_and_refuses_bad_settings():
    labels = torch.cat([torch.arange(60) % 6, torch.tensor([6, 7])])  # classes 6 and 7 have one example
    with pytest.warns(UserWarning, match=r"skipping 2 classes .*\[6, 7\]"):
        sampler = EpisodeSampler(labels, ways=3, shots=2, queries=3)
    assert set(sampler.classes.tolist()) == set(range(6))
    with pytest.raises(ValueError, match="7-way episodes need 7 classes"), pytest.warns(UserWarning):
        EpisodeSampler(labels, ways=7, shots=2, queries=3)
    with pytest.raises(ValueError, match="shots >= 1"):
        EpisodeSampler(labels, ways=3, shots=0, queries=3)
    with pytest.raises(ValueError, match="regression dataset"):
        EpisodeSampler(torch.rand(50), ways=3, shots=1, queries=1)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        low_shot_split(100, -0.1, 0, 0)
    train, test = low_shot_split(100, 0.05, seed=0, repeat=3)
    assert len(train) == 5 and len(test) == 95 and not set(train.tolist()) & set(test.tolist())


@pytest.mark.parametrize("n_per_class", [2, 40])  # dual (N*K < D) and primal forms
def test_ridge_head_equals_sklearn(n_per_class):
    g = torch.Generator().manual_seed(0)
    feats, labels = torch.randn(3 * n_per_class, 30, generator=g), torch.arange(3).repeat_interleave(n_per_class)
    queries = torch.randn(7, 30, generator=g)
    lam = 0.1
    ours = RidgeHead(lam=lam).fit(feats, labels, 3)(queries)
    l2 = lambda x: F.normalize(x.double(), dim=1).numpy()  # noqa: E731
    sk = Ridge(alpha=lam * len(feats)).fit(l2(feats), F.one_hot(labels, 3).numpy()).predict(l2(queries))
    assert np.abs(ours.numpy() - sk).max() < 1e-8


def test_auto_lambda_uses_the_support_only_and_the_ci_formula():
    g = torch.Generator().manual_seed(1)
    feats, labels = torch.randn(10, 8, generator=g), torch.arange(5).repeat_interleave(2)
    head = RidgeHead()
    lam = head.choose_lam(feats, F.one_hot(labels, 5).double(), shots=2)
    errors = {v: float(support_objective(2)(feats, F.one_hot(labels, 5).double(), v)) for v in head.lams}
    assert lam == min(errors, key=errors.get)
    values = [0.2, 0.4, 0.9, 0.5]
    expected = 1.96 * np.std(values) / math.sqrt(4)
    assert mean_ci(values) == {"mean": pytest.approx(0.5), "ci95": pytest.approx(expected, abs=1e-6), "n": 4}


def test_every_estimator_that_chooses_a_lambda_searches_the_one_grid_unless_given_another():
    import inspect

    from amortinv.fewshot.heads import HEADS
    from amortinv.transfer import TransferSettings
    from amortinv.transfer.probe import best_ridge_lambda, fit_probe
    from amortinv.transfer.settings import LAMBDAS

    defaults = [inspect.signature(f).parameters["lams"].default for f in (fit_probe, best_ridge_lambda)]
    assert FewShotSettings().lams is TransferSettings().lams is RidgeHead().lams is LAMBDAS
    assert all(d is LAMBDAS for d in defaults)
    assert max(LAMBDAS) >= 10 and min(LAMBDAS) <= 1e-5  # both regimes: few dozen and thousands of examples
    assert HEADS["ridge"]((0.37,)).lams == (0.37,)
    g = torch.Generator().manual_seed(2)
    feats, labels = torch.randn(10, 8, generator=g), torch.arange(5).repeat_interleave(2)
    assert HEADS["ridge"]((0.37,)).choose_lam(feats, F.one_hot(labels, 5).double(), shots=2) == 0.37


@pytest.mark.parametrize("shots", [1, 3])
def test_support_objective_gradient_reaches_i_through_the_ridge_solution(shots):
    torch.manual_seed(0)
    enc = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.0625).double().eval()
    x = torch.randn(4 * shots, 3, 16, 16, dtype=torch.float64)
    onehot = F.one_hot(torch.arange(4).repeat_interleave(shots), 4).double()
    objective = lambda f: support_objective(shots)(f, onehot, 0.1)  # noqa: E731
    i = torch.tensor([0.4, 0.7], dtype=torch.float64)
    _, grad = descriptor_gradient(enc, x, i, objective, "forward")
    eps = 1e-6
    for k in range(2):
        step = torch.zeros(2, dtype=torch.float64)
        step[k] = eps
        with torch.no_grad():
            fd = (objective(enc(x, i + step)) - objective(enc(x, i - step))) / (2 * eps)
        assert float(grad[k]) == pytest.approx(float(fd), rel=1e-4, abs=1e-9)
    assert grad.abs().sum() > 0


def _pool(n=120, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    images = torch.randint(0, 60, (n, 3, size, size), generator=g, dtype=torch.uint8)
    for k, c in enumerate(labels.tolist()):
        images[k, c % 3, (c // 2) * 8 : (c // 2) * 8 + 8, (c % 2) * 8 : (c % 2) * 8 + 8] = 230
    return images, labels


def test_queries_never_change_the_learned_descriptor():
    torch.manual_seed(0)
    enc = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.0625).eval()
    images, labels = _pool()
    ep = EpisodeSampler(labels, ways=4, shots=2, queries=3, seed=0)(0)
    other = images.clone()
    other[ep.query] = 255 - other[ep.query]  # different query images, same support
    starts = {G.label(d): d for d in [torch.ones(2), *G.training_descriptors()]}
    onehot = F.one_hot(ep.support_labels, 4).double()
    found = []
    for pool in (images, other):
        cache = FeatureCache(enc, pool, (16, 16), torch.device("cpu"))
        i, _, _, _ = learn_support_descriptor(
            cache, starts, ep.support, lambda f: support_objective(2)(f, onehot, 0.1), EpisodeSearch(steps=5)
        )
        found.append(i)
    assert torch.equal(found[0], found[1])


def test_episodes_and_lowshot_report_every_row_with_learned_i_in_range():
    torch.manual_seed(0)
    enc = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.0625).eval()
    plain = build_encoder("resnet18", cifar_stem=True, width=0.0625).eval()
    images, labels = _pool()
    settings = FewShotSettings(ways=3, shots=(1, 2), queries=3, episodes=6, search=EpisodeSearch(steps=3))
    res = run_episodes(enc, G, images, labels, settings, {"plain": plain}, progress=False)
    assert set(res) == {"1shot", "2shot"}
    rows = res["2shot"]["accuracy"]
    assert {
        "ai_learned",
        "ai_learned_q1",
        "oracle_best_fixed",
        "fixed[[1,1] spatial+appearance]/ridge",
        "fixed[[0,0] none]/prototype",
        "plain:plain/logistic",
    } <= set(rows)
    assert all(r["n"] == 6 and 0 <= r["mean"] <= 1 for r in rows.values())
    assert rows["oracle_best_fixed"]["mean"] >= max(
        rows[f"fixed[{G.label(d)}]/ridge"]["mean"] for d in G.training_descriptors()
    )
    assert (
        res["1shot"]["learned_i"]["mean"] == {"spatial": 1.0, "appearance": 1.0} and res["1shot"]["moved_share"] == 0
    )  # default: keep i = 1
    from dataclasses import replace

    gcv = run_episodes(enc, G, images, labels, replace(settings, shots=(1,), one_shot="gcv"), progress=False)
    assert (
        all(0 <= v <= 1 for v in gcv["1shot"]["learned_i"]["mean"].values())
        and gcv["1shot"]["accuracy"]["ai_learned"]["n"] == 6
    )
    targets = torch.rand(len(images), 2)
    low = run_lowshot(enc, G, images, targets, [0.1, 0.2], repeats=3, settings=settings, progress=False)
    assert set(low) == {"0.1", "0.2"} and low["0.1"]["train_size"] == 12
    assert {"ai_learned", "fixed[[1,0] spatial]"} <= set(low["0.2"]["r2"]) and low["0.2"]["r2"]["ai_learned"]["n"] == 3


def test_fewshot_cli_end_to_end_and_bad_inputs(tiny_npz, tmp_path, capsys, saved_encoders):
    from amortinv.cli import main

    ai, plain = saved_encoders["ai"], saved_encoders["plain"]
    common = ["fewshot", "--encoder", str(ai), "--data", "npz", "--data-root", str(tiny_npz)]
    out = tmp_path / "fs"
    main(
        common
        + [
            "--plain-encoders",
            str(plain),
            "--ways",
            "3",
            "--shots",
            "1,2",
            "--queries",
            "3",
            "--episodes",
            "4",
            "--steps",
            "2",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    result = json.loads((out / "result.json").read_text())
    assert set(result["results"]) == {"1shot", "2shot"} and result["kind"] == "classification"
    assert re.search(
        r"few-shot: [\d.]+ s per episode after the first \([\d.]+ s, features cached\): about \d+ s for all 8 episodes",
        capsys.readouterr().out,
    )
    assert "plain:plain/ridge" in result["results"]["2shot"]["accuracy"]
    assert (out / "fewshot.png").stat().st_size > 10_000
    main(
        common
        + [
            "--task",
            "rotation",
            "--fractions",
            "0.2",
            "--repeats",
            "2",
            "--steps",
            "1",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    low = json.loads((tmp_path / "r" / "result.json").read_text())
    assert low["kind"] == "regression" and set(low["results"]) == {"0.2"}
    capsys.readouterr()
    for bad, message in (
        (["--shots", "0"], "--shots must be >= 1"),
        (["--task", "rotation", "--fractions", "-0.1"], "--fractions must be > 0 and < 1"),
        (["--task", "regression"], "has classification targets, not regression"),
    ):
        with pytest.raises(SystemExit) as err:
            main(common + bad + ["--out", str(tmp_path / "bad")])
        assert err.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0]
    assert not (tmp_path / "bad").exists()
    reg = tmp_path / "reg"
    reg.mkdir()
    for split in ("train", "test"):
        np.savez(
            reg / f"{split}.npz",
            images=np.zeros((20, 16, 16, 3), np.uint8),
            targets=np.random.rand(20, 2).astype(np.float32),
        )
    with pytest.raises(SystemExit):
        main(
            [
                "fewshot",
                "--encoder",
                str(ai),
                "--data",
                "npz",
                "--data-root",
                str(reg),
                "--task",
                "classification",
                "--out",
                str(tmp_path / "bad"),
            ]
        )
    assert "has regression targets, not classification" in capsys.readouterr().err


def test_the_time_estimate_counts_the_first_episode_once_and_the_rest_at_the_warm_pace(capsys):
    from amortinv.fewshot.evaluate import _print_estimate

    _print_estimate(first=20.0, seconds_per_episode=0.5, episodes=81)  # 20 s + 80 x 0.5 s = 60 s
    assert "about 1.0 min for all 81 episodes" in capsys.readouterr().out
