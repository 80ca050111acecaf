"""Few-shot classification episodes and low-shot regression, with every row on the same episodes.

Rows of ``run_episodes`` (accuracy per episode, mean and 95% CI = 1.96 std / sqrt(episodes)):

- ``ai_learned``: ridge at the per-episode learned ``i`` (``amortinv.fewshot.invariance``);
  ``ai_learned_q1``: ridge at its 1-bit quantisation;
- ``fixed[<descriptor>]/<head>``: each candidate descriptor with each head (ridge, prototype,
  logistic); ``plain:<name>/<head>``: each plain encoder with each head;
- ``oracle_best_fixed``: per episode the best candidate descriptor by QUERY accuracy (ridge):
  an upper bound on choosing among fixed descriptors, never a result.

``run_lowshot`` repeats seeded train/test splits of a regression pool per train fraction and
scores ridge (``lam`` by leave-one-out on the train part) at fixed descriptors, plain encoders and
the learned ``i`` (same search, leave-one-out objective on the train part) by R^2 on the rest.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from amortinv.encoders.base import Encoder
from amortinv.fewshot.episodes import Episode, EpisodeSampler, low_shot_split
from amortinv.fewshot.heads import HEADS, RidgeHead, support_objective
from amortinv.fewshot.invariance import FeatureCache, candidate_descriptors, learn_support_descriptor
from amortinv.fewshot.settings import FewShotSettings
from amortinv.results import MemoryMeter
from amortinv.spaces import InvarianceSpace, quantise
from amortinv.transfer.metrics import r2_uniform
from amortinv.transfer.probe import best_ridge_lambda, fit_linear, ridge_loo_loss

__all__ = ["run_episodes", "run_lowshot", "mean_ci"]


def mean_ci(values: Sequence[float]) -> dict[str, float]:
    """Mean and the 95% confidence half-width 1.96 * std / sqrt(n) (population std)."""
    t = torch.tensor(list(values), dtype=torch.float64)
    half = 1.96 * float(t.std(unbiased=False)) / math.sqrt(len(t)) if len(t) > 1 else float("nan")
    return {"mean": round(float(t.mean()), 6), "ci95": round(half, 6), "n": len(t)}


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(dim=1) == labels).double().mean())


def _describe_learned(space: InvarianceSpace, learned: list[torch.Tensor]) -> dict:
    stack = torch.stack(learned)
    return {
        "mean": space.describe(stack.mean(0)),
        "std": dict(zip(space.factors, [round(v, 6) for v in stack.std(0, unbiased=False).tolist()])),
    }


def _choose_start_lam(
    cache: FeatureCache, starts: dict, support: torch.Tensor, objective_of: Callable, lams: Sequence[float]
) -> float:
    """The ``lam`` of the grid ``lams`` minimising the support objective over the candidate starts."""
    with torch.no_grad():
        scores = {
            (label, lam): float(objective_of(lam)(cache.features(label, d)[support]))
            for label, d in starts.items()
            for lam in lams
        }
    return min(scores, key=scores.get)[1]


ESTIMATE_AFTER = 6  # episodes timed before the whole run's time is estimated (the first fills the feature cache)


def _print_estimate(first: float, seconds_per_episode: float, episodes: int) -> None:
    """One line: the estimated time of all ``episodes``: the first episode (``first`` s, which computes the pool's
    features at every fixed descriptor) plus the rest at the pace of the next ones (the first shot setting's; more
    shots per class take somewhat longer)."""
    total = first + seconds_per_episode * (episodes - 1)
    when = f"{total / 60:.1f} min" if total >= 60 else f"{total:.0f} s"
    tqdm.write(
        f"few-shot: {seconds_per_episode:.2f} s per episode after the first ({first:.1f} s, features cached): "
        f"about {when} for all {episodes} episodes"
    )


def _episode_descriptor(
    cache: FeatureCache, space: InvarianceSpace, starts: dict, ep: Episode, shots: int, s: FewShotSettings
) -> tuple[torch.Tensor, torch.Tensor, float, bool]:
    """The episode's descriptor ``i`` (K,), its support features (N*K, D), the ridge lambda, and whether the search
    moved from its start; 1-shot with ``one_shot="ones"`` keeps all-ones (no support-only signal for ``i``)."""
    onehot = F.one_hot(ep.support_labels, s.ways).double()
    objective_of = lambda lam: lambda f: support_objective(shots)(f, onehot, lam)  # noqa: E731
    if shots == 1 and s.one_shot == "ones":
        ones = {space.label(torch.ones(space.dim)): torch.ones(space.dim)}
        lam = _choose_start_lam(cache, ones, ep.support, objective_of, s.lams)
        i = torch.ones(space.dim)
        return i, cache.features(space.label(i), i)[ep.support], lam, False
    lam = _choose_start_lam(cache, starts, ep.support, objective_of, s.lams)
    i, feats, _, did_move = learn_support_descriptor(cache, starts, ep.support, objective_of(lam), s.search)
    return i, feats, lam, did_move


def _episode_scores(
    cache: FeatureCache,
    plains: dict[str, FeatureCache],
    space: InvarianceSpace,
    heads: dict,
    ep: Episode,
    shots: int,
    s: FewShotSettings,
) -> tuple[dict[str, float], torch.Tensor, bool]:
    """One episode's query accuracy per row (learned ``i``, its 1-bit quantisation, every fixed descriptor and plain
    encoder with every head, the oracle), the learned ``i`` and whether its search moved."""
    starts = {space.label(d): d for d in space.candidate_descriptors()}
    i, feats, lam, did_move = _episode_descriptor(cache, space, starts, ep, shots, s)
    query = cache.exact(ep.query, i) if did_move else cache.features(space.label(i), i)[ep.query]
    ridge = RidgeHead(lam=lam)
    scores = {"ai_learned": _accuracy(ridge.fit(feats, ep.support_labels, s.ways)(query), ep.query_labels)}
    q1 = quantise(i, 1)
    f1 = cache.features(space.label(q1), q1)
    scores["ai_learned_q1"] = _accuracy(
        ridge.fit(f1[ep.support], ep.support_labels, s.ways)(f1[ep.query]), ep.query_labels
    )
    sources = {f"fixed[{label}]": cache.features(label, d) for label, d in candidate_descriptors(space).items()}
    sources.update({f"plain:{name}": c.features("plain", None) for name, c in plains.items()})
    for src, f in sources.items():
        for hname, head in heads.items():
            fitted = head.fit(f[ep.support], ep.support_labels, s.ways)
            scores[f"{src}/{hname}"] = _accuracy(fitted(f[ep.query]), ep.query_labels)
    if "ridge" in heads:
        scores["oracle_best_fixed"] = max(scores[f"fixed[{label}]/ridge"] for label in starts)
    return scores, i, did_move


def run_episodes(
    encoder: Encoder,
    space: InvarianceSpace,
    images: torch.Tensor,
    labels: torch.Tensor,
    settings: FewShotSettings,
    plain_encoders: dict[str, Encoder] | None = None,
    progress: bool = True,
) -> dict[str, dict]:
    """N-way K-shot episodes for each K in ``settings.shots``; returns ``{"<K>shot": record}``."""
    s, dev, size = settings, torch.device(settings.resolved_device()), tuple(images.shape[-2:])
    heads = {name: HEADS[name](s.lams) for name in s.heads}
    cache = FeatureCache(encoder, images, size, dev, s.batch_size)
    plains = {name: FeatureCache(enc, images, size, dev, s.batch_size) for name, enc in (plain_encoders or {}).items()}
    out = {}
    for shots in s.shots:
        sampler = EpisodeSampler(labels, s.ways, shots, s.queries, s.seed)
        rows: dict[str, list[float]] = {}
        learned, moved = [], 0
        start_time = time.perf_counter()
        with MemoryMeter(dev) as meter:
            for e in tqdm(range(s.episodes), desc=f"{s.ways}-way {shots}-shot", unit="episode", disable=not progress):
                scores, i, did_move = _episode_scores(cache, plains, space, heads, sampler(e), shots, s)
                for name, score in scores.items():
                    rows.setdefault(name, []).append(score)
                moved += did_move
                learned.append(i)
                if e == 0:
                    first = time.perf_counter() - start_time
                if progress and shots == s.shots[0] and e + 1 == min(ESTIMATE_AFTER, s.episodes) and e > 0:
                    per = (time.perf_counter() - start_time - first) / e
                    _print_estimate(first, per, s.episodes * len(s.shots))
        wall = time.perf_counter() - start_time
        out[f"{shots}shot"] = {
            "ways": s.ways,
            "shots": shots,
            "queries": s.queries,
            "episodes": s.episodes,
            "accuracy": {name: mean_ci(v) for name, v in rows.items()},
            "learned_i": _describe_learned(space, learned),
            "moved_share": round(moved / s.episodes, 4),
            "episodes_per_s": round(s.episodes / wall, 2),
            "wall_time_s": round(wall, 1),
            "peak_memory_mb": round(meter.peak_mb, 1),
            "note": "oracle_best_fixed picks per episode by query accuracy: an upper bound, not a result",
        }
    return out


def run_lowshot(
    encoder: Encoder,
    space: InvarianceSpace,
    images: torch.Tensor,
    targets: torch.Tensor,
    fractions: Sequence[float],
    repeats: int,
    settings: FewShotSettings,
    plain_encoders: dict[str, Encoder] | None = None,
    progress: bool = True,
) -> dict[str, dict]:
    """Low-shot regression: per fraction, ``repeats`` seeded splits; R^2 (uniform over outputs) on the rest."""
    s, dev, size = settings, torch.device(settings.resolved_device()), tuple(images.shape[-2:])
    targets = targets.float().reshape(len(targets), -1)
    cache = FeatureCache(encoder, images, size, dev, s.batch_size)
    starts = {space.label(d): d for d in space.candidate_descriptors()}
    plains = {name: FeatureCache(enc, images, size, dev, s.batch_size) for name, enc in (plain_encoders or {}).items()}
    out = {}
    for fraction in fractions:
        rows: dict[str, list[float]] = {}
        learned = []
        start_time = time.perf_counter()
        for r in tqdm(range(repeats), desc=f"low-shot {fraction:g}", unit="split", disable=not progress):
            train, test = low_shot_split(len(images), fraction, s.seed, r)
            mean, std = targets[train].mean(0), targets[train].std(0, unbiased=False).clamp_min(1e-8)
            y = ((targets[train] - mean) / std).double()

            def score(f_train: torch.Tensor, f_test: torch.Tensor) -> float:
                head = fit_linear(f_train, y, "regression", best_ridge_lambda(f_train, y, s.lams), y.shape[1])
                return r2_uniform(head(f_test) * std + mean, targets[test])

            for label, d in starts.items():
                f = cache.features(label, d)
                rows.setdefault(f"fixed[{label}]", []).append(score(f[train], f[test]))
            for name, c in plains.items():
                f = c.features("plain", None)
                rows.setdefault(f"plain:{name}", []).append(score(f[train], f[test]))
            lam = min(
                s.lams,
                key=lambda v: min(
                    float(ridge_loo_loss(cache.features(k, d)[train].double(), y, v)) for k, d in starts.items()
                ),
            )
            i, f_train, _, did_move = learn_support_descriptor(
                cache, starts, train, lambda f: ridge_loo_loss(f.double(), y, lam), s.search
            )
            f_test = cache.exact(test, i) if did_move else cache.features(space.label(i), i)[test]
            rows.setdefault("ai_learned", []).append(score(f_train, f_test))
            learned.append(i)
        out[f"{fraction:g}"] = {
            "fraction": fraction,
            "repeats": repeats,
            "train_size": len(train),
            "r2": {name: mean_ci(v) for name, v in rows.items()},
            "learned_i": _describe_learned(space, learned),
            "wall_time_s": round(time.perf_counter() - start_time, 1),
        }
    return out
