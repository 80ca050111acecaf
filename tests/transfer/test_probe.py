"""Convex probes, the ridge leave-one-out objective, the descriptor search and kernel learning-rate groups."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression, Ridge

from amortinv.encoders import build_encoder
from amortinv.encoders.base import Encoder
from amortinv.encoders.hyper import HyperConv2d
from amortinv.transfer import SearchSettings, fit_linear, fit_probe, make_task, ridge_loo_loss, search_invariance
from amortinv.transfer.learn import descriptor_gradient
from amortinv.transfer.probe import best_ridge_lambda


def _standardised(x: torch.Tensor) -> np.ndarray:
    x = x.double()
    return ((x - x.mean(0)) / x.std(0, unbiased=False)).numpy()


def _blobs(n: int, d: int, c: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, c, generator=g)
    x = torch.randn(n, d, generator=g) * 3 + 1
    return x, (x @ w + 4 * torch.randn(n, c, generator=g)).argmax(1)


@pytest.mark.parametrize("lam", [1e-1, 1e-3])
def test_logistic_probe_reaches_sklearns_optimum(lam):
    x, y = _blobs(600, 20, 4, seed=0)
    head = fit_linear(x, y, "classification", lam, 4)
    xs = _standardised(x)
    sk = LogisticRegression(C=1 / (lam * len(x)), tol=1e-10, max_iter=10_000).fit(xs, y.numpy())
    objective = lambda w, b: float(F.cross_entropy(torch.tensor(xs) @ w + b, y) + 0.5 * lam * (w * w).sum())  # noqa: E731
    ours, theirs = objective(head.weight, head.bias), objective(torch.tensor(sk.coef_.T), torch.tensor(sk.intercept_))
    assert ours == pytest.approx(theirs, rel=1e-6)
    assert (head(x).argmax(1).numpy() == sk.predict(xs)).mean() > 0.995


@pytest.mark.parametrize("n", [300, 12])  # primal (n >= d) and dual (n < d) forms
def test_ridge_probe_equals_sklearn(n):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(n, 30, generator=g) * 2, torch.randn(n, 3, generator=g)
    lam = 1e-2
    head = fit_linear(x, y, "regression", lam, 3)
    xs = _standardised(x)
    sk = Ridge(alpha=lam * n).fit(xs, y.numpy())
    assert np.abs(head(x).double().numpy() - sk.predict(xs)).max() < 1e-4


def test_fit_probe_selects_the_regularisation_on_validation_only():
    x, y = _blobs(400, 10, 3, seed=2)
    xt, yt = _blobs(100, 10, 3, seed=3)
    images = torch.zeros(400, 3, 4, 4, dtype=torch.uint8)
    data = make_task("blobs", "classification", (images, y), (images[:100], yt), val_fraction=0.25, seed=0)
    # features aligned with the carved splits (make_task's seeded permutation)
    perm = torch.randperm(400, generator=torch.Generator().manual_seed(0))
    val_idx, train_idx = perm[:100].sort().values, perm[100:].sort().values
    fit = fit_probe(x[train_idx], x[val_idx], data, lams=(1.0, 1e-2, 1e-4))
    assert set(fit.val_scores) == {1.0, 1e-2, 1e-4}
    assert fit.val_score == max(fit.val_scores.values()) and fit.val_scores[fit.lam] == fit.val_score
    with pytest.raises(ValueError, match="do not match"):
        fit_probe(x[:10], x[val_idx], data)


@pytest.mark.parametrize("n, d", [(25, 6), (8, 20)])  # primal and dual (n < d) forms
def test_ridge_leave_one_out_equals_brute_force(n, d):
    g = torch.Generator().manual_seed(0)
    feats, targets = (
        torch.randn(n, d, generator=g, dtype=torch.float64),
        torch.randn(n, 2, generator=g, dtype=torch.float64),
    )
    lam = 0.05
    x = feats - feats.mean(0)
    x = x / (x.pow(2).mean(0) + 1e-12).sqrt()
    z = torch.cat([torch.ones(n, 1, dtype=torch.float64), x], dim=1)
    penalty = torch.diag(torch.tensor([0.0] + [n * lam] * d, dtype=torch.float64))
    errors = []
    for k in range(n):
        keep = torch.arange(n) != k
        beta = torch.linalg.solve(z[keep].T @ z[keep] + penalty, z[keep].T @ targets[keep])
        errors.append(targets[k] - z[k] @ beta)
    brute = torch.stack(errors).pow(2).mean()
    assert float(ridge_loo_loss(feats, targets, lam)) == pytest.approx(float(brute), rel=1e-9)
    assert best_ridge_lambda(feats, targets, (10.0, lam)) in (10.0, lam)


class TwoSignalEncoder(Encoder):
    """Features [(1 - 0.8 i0) a + i0 n0, (1 - 0.8 i1) b + i1 n1, n2]: a = left-right contrast,
    b = top-bottom contrast, n* deterministic nuisances; invariance to a factor buries its signal
    under a nuisance (incompletely, as in a trained encoder).

    A target that needs both a and b is best decoded at [0, 0], which is not a training descriptor
    of groups2 ([1,0], [0,1], [1,1]).
    """

    def __init__(self) -> None:
        super().__init__(invariance_dim=2)
        self.arch = {"in_channels": 3}
        self.anchor = torch.nn.Parameter(torch.ones(1))

    @property
    def feature_dim(self) -> int:
        return 3

    def forward(self, x, i=None):
        i = self.check_inputs(x, i)
        h, w = x.shape[-2:]
        a = x[..., : w // 2].mean((1, 2, 3)) - x[..., w // 2 :].mean((1, 2, 3))
        b = x[..., : h // 2, :].mean((1, 2, 3)) - x[..., h // 2 :, :].mean((1, 2, 3))
        n0, n1, n2 = (torch.sin(f * x.sum((1, 2, 3))) * 0.3 for f in (1000, 1700, 2300))
        return (
            torch.stack([(1 - 0.8 * i[0]) * a + i[0] * n0, (1 - 0.8 * i[1]) * b + i[1] * n1, n2], dim=1) * self.anchor
        )


def _two_signal_task(n=300):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n + 100, 3, 8, 8), generator=g, dtype=torch.uint8)
    enc = TwoSignalEncoder()
    with torch.no_grad():
        f = enc((images.float() / 255 - 0.5), torch.zeros(2))
    y = (f[:, 0] + f[:, 1])[:, None] * 10
    return make_task("sum", "regression", (images[:n], y[:n]), (images[n:], y[n:]), val_fraction=0.25)


def _probe_at(enc, data):
    from amortinv.features import frozen_features

    size = tuple(data.train[0].shape[-2:])
    return lambda i: fit_probe(
        frozen_features(enc, data.train[0], i, size=size), frozen_features(enc, data.val[0], i, size=size), data
    )


@pytest.mark.parametrize("gradient", ["forward", "backprop"])
def test_search_reaches_an_optimum_that_is_not_a_training_descriptor(gradient):
    data, enc = _two_signal_task(), TwoSignalEncoder()
    probe_at = _probe_at(enc, data)
    candidates = {tuple(d): probe_at(torch.tensor(d)) for d in ([1.0, 1.0], [1.0, 0.0], [0.0, 1.0])}
    start = max(candidates, key=lambda d: candidates[d].val_score)
    fit = search_invariance(
        enc,
        data,
        torch.tensor(start),
        probe_at,
        settings=SearchSettings(steps=40, lr_i=0.1, batch_size=128, eval_every=10, gradient=gradient),
    )
    assert fit.i.tolist() == pytest.approx([0.0, 0.0], abs=0.1), fit.path
    assert fit.probe.val_score > max(c.val_score for c in candidates.values()) + 0.2
    assert all(0 <= v <= 1 for p in fit.path for v in p["i"])


def test_search_from_the_middle_finds_the_corner_and_never_ends_below_its_start():
    data, enc = _two_signal_task(), TwoSignalEncoder()
    probe_at = _probe_at(enc, data)
    fit = search_invariance(
        enc, data, torch.tensor([0.5, 0.5]), probe_at, settings=SearchSettings(steps=30, lr_i=0.1, batch_size=128)
    )
    assert max(fit.i.tolist()) < 0.15
    start_score = fit.path[0]["val_score"]
    assert fit.probe.val_score >= start_score
    # a search that cannot move (zero steps) keeps the start
    still = search_invariance(enc, data, torch.tensor([1.0, 1.0]), probe_at, settings=SearchSettings(steps=0))
    assert still.i.tolist() == [1.0, 1.0] and still.selected_step == 0


def test_forward_mode_gradient_equals_backprop_on_a_hyper_resnet():
    torch.manual_seed(0)
    enc = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.0625).double().eval()
    x, targets = torch.randn(12, 3, 16, 16, dtype=torch.float64), torch.randn(12, 2, dtype=torch.float64)
    i = torch.tensor([0.3, 0.8], dtype=torch.float64)
    objective = lambda f: ridge_loo_loss(f, targets, 0.1)  # noqa: E731
    v1, g1 = descriptor_gradient(enc, x, i, objective, "backprop")
    v2, g2 = descriptor_gradient(enc, x, i, objective, "forward", chunk_size=5)
    assert v1 == pytest.approx(v2, rel=1e-9)
    assert torch.allclose(g1, g2, rtol=1e-6, atol=1e-10) and g1.abs().sum() > 0


def test_kernel_learning_rate_groups_are_what_the_optimiser_gets():
    from amortinv.ssl import build_optimizer

    torch.manual_seed(0)
    enc = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.0625)
    descriptors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    gains = enc.kernel_step_gains(descriptors)
    convs = [m for m in enc.modules() if isinstance(m, HyperConv2d)]
    assert len(gains) == 2 * len(convs)
    block = enc.layer1[0]
    with torch.no_grad():
        h = F.relu(block.conv1.hidden(block.embed(descriptors)))
    assert dict((id(p), g) for p, g in gains)[id(block.conv1.out.weight)] == pytest.approx(
        float(1 / (1 + h.sum(1).mean())), rel=1e-5
    )
    assert all(0 < g < 0.5 for _, g in gains)  # a generated kernel moves many times a plain conv's step
    opt = build_optimizer("adamw", enc, lr=0.1, weight_decay=0.01, lr_gains=gains)
    lr_of = {id(p): grp["lr"] for grp in opt.param_groups for p in grp["params"]}
    for p, g in gains:
        assert lr_of[id(p)] == pytest.approx(0.1 * g)
    assert lr_of[id(enc.conv1.weight)] == 0.1 and lr_of[id(block.conv1.hidden.weight)] == 0.1
    assert sum(len(grp["params"]) for grp in opt.param_groups) == len(list(enc.parameters()))
    assert build_encoder("resnet18", cifar_stem=True, width=0.0625).kernel_step_gains(descriptors) == []
