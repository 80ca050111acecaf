"""Ridge / logistic regularisation grids side by side: the two per-estimator grids against one shared grid.

Features of a saved encoder are computed once (CIFAR-10, every candidate descriptor of an AI
encoder); then, for each grid, the three estimators that choose a ``lam`` from a grid:

- many-shot probes (``fit_probe``: logistic / ridge on standardised features, ``lam`` chosen on the
  validation split): chosen ``lam``, validation and test score, fit time;
- few-shot ridge heads (5-way 1- and 5-shot episodes, L2-normalised features, ``lam`` by GCV /
  leave-one-out on the support set): accuracy, chosen ``lam``;
- low-shot ridge regression (rotation with 50 and 250 training images, ``lam`` by leave-one-out):
  R^2, chosen ``lam``.

    python benchmarks/lambda_grid.py --encoder ~/.cache/amortinv/runs/cifar10_ai_simclr \
        --data-root ../shared/data/cifar10 --out benchmarks/results/lambda_grid/lambda_grid.json
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from amortinv.features import frozen_features
from amortinv.fewshot.episodes import EpisodeSampler, low_shot_split
from amortinv.fewshot.evaluate import mean_ci
from amortinv.fewshot.heads import RidgeHead
from amortinv.loading import load_encoder_and_space
from amortinv.transfer.metrics import r2_uniform
from amortinv.transfer.probe import best_ridge_lambda, fit_linear, fit_probe, predict, score_outputs
from amortinv.transfer.tasks import build_tasks

HALF_DECADES = tuple(float(f"{m}e{e}") for e in range(1, -7, -1) for m in (3, 1))
GRIDS = {
    "per-estimator (before)": {
        "probe": (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 1e-5),
        "fewshot": (10.0, 1.0, 0.1, 0.01, 0.001),
    },
    "one grid 10..1e-5": {"probe": HALF_DECADES[1:-2], "fewshot": HALF_DECADES[1:-2]},
    "one grid 10..1e-6": {"probe": HALF_DECADES[1:], "fewshot": HALF_DECADES[1:]},
}


def _probes(task, feats: dict, grid: tuple) -> dict:
    out = {}
    for label, (train, val, test) in feats.items():
        start = time.perf_counter()
        fit = fit_probe(train, val, task, grid)
        seconds = time.perf_counter() - start
        test_score = score_outputs(predict(fit.head, test, task), task.test[1], task)
        out[label] = {"lam": fit.lam, "val": round(fit.val_score, 4), "test": test_score, "seconds": round(seconds, 2)}
    return out


def _fewshot(pool: torch.Tensor, labels: torch.Tensor, grid: tuple, shots: int, episodes: int) -> dict:
    sampler, head = EpisodeSampler(labels, 5, shots, 15, seed=0), RidgeHead(lams=grid)
    accs, lams = [], collections.Counter()
    for index in range(episodes):
        ep = sampler(index)
        onehot = F.one_hot(ep.support_labels, 5).double()
        lams[head.choose_lam(pool[ep.support], onehot, shots)] += 1
        logits = head.fit(pool[ep.support], ep.support_labels, 5)(pool[ep.query])
        accs.append(float((logits.argmax(1) == ep.query_labels).double().mean()))
    return {**mean_ci(accs), "lams": {f"{k:g}": v for k, v in sorted(lams.items())}}


def _lowshot(feats: torch.Tensor, targets: torch.Tensor, grid: tuple, n_train: int, repeats: int) -> dict:
    scores, lams = [], collections.Counter()
    for r in range(repeats):
        train, test = low_shot_split(len(feats), n_train / len(feats), 0, r)
        mean, std = targets[train].mean(0), targets[train].std(0, unbiased=False).clamp_min(1e-8)
        y = ((targets[train] - mean) / std).double()
        lam = best_ridge_lambda(feats[train], y, grid)
        head = fit_linear(feats[train], y, "regression", lam, y.shape[1])
        scores.append(r2_uniform(head(feats[test]) * std + mean, targets[test]))
        lams[lam] += 1
    return {**mean_ci(scores), "lams": {f"{k:g}": v for k, v in sorted(lams.items())}}


def _cell(rec: dict) -> str:
    """A table cell: a probe's test score and lambda, or a mean +- interval and the most chosen lambda."""
    if "test" in rec:
        return f"{next(iter(rec['test'].values())):.3f} (lam {rec['lam']:g}, {rec['seconds']:.1f} s)"
    mode = max(rec["lams"], key=rec["lams"].get)
    return f"{rec['mean']:.3f} ± {rec['ci95']:.3f} (lam {mode} in {rec['lams'][mode]} of {rec['n']})"


def table_markdown(result: dict) -> str:
    """One row per estimator and case, one column per grid."""
    rows = [f"| estimator | case | {' | '.join(GRIDS)} |", "| --- | --- |" + " --- |" * len(GRIDS)]
    for estimator, by_case in (("many-shot probe", result["probes"]), ("few-shot ridge", result["fewshot"])):
        for case, by_sub in by_case.items():
            for sub, by_grid in by_sub.items():
                rows.append(f"| {estimator} | {case}, {sub} | " + " | ".join(_cell(by_grid[g]) for g in GRIDS) + " |")
    for descriptor, by_size in result["lowshot"].items():
        for size, by_grid in by_size.items():
            cells = " | ".join(_cell(by_grid[g]) for g in GRIDS)
            rows.append(f"| low-shot ridge | rotation, {descriptor}, {size} | {cells} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--tasks", default="classification,rotation,colour")
    parser.add_argument("--train-limit", type=int, default=5000)
    parser.add_argument("--test-limit", type=int, default=2000)
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--out", default="benchmarks/results/lambda_grid/lambda_grid.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    enc, space = load_encoder_and_space(args.encoder)
    descriptors = {space.label(d): d for d in space.candidate_descriptors()} if space else {"plain": None}
    tasks = build_tasks(
        args.tasks.split(","),
        "cifar10",
        args.data_root,
        image_size=None,
        train_limit=args.train_limit,
        test_limit=args.test_limit,
        val_fraction=0.1,
        seed=0,
    )
    result: dict = {"encoder": args.encoder, "grids": {k: {e: list(g) for e, g in v.items()} for k, v in GRIDS.items()}}
    result["probes"], result["fewshot"], result["lowshot"] = {}, {}, {}
    for task in tasks:
        splits = (task.train[0], task.val[0], task.test[0])
        feats = {label: tuple(frozen_features(enc, x, d) for x in splits) for label, d in descriptors.items()}
        by_grid = {name: _probes(task, feats, g["probe"]) for name, g in GRIDS.items()}
        result["probes"][task.name] = {label: {name: by_grid[name][label] for name in GRIDS} for label in feats}
        print(json.dumps({task.name: result["probes"][task.name]}), flush=True)
        if task.task == "classification":
            for label, (_, _, test) in feats.items():
                result["fewshot"][label] = {
                    f"5-way {shots}-shot": {
                        name: _fewshot(test, task.test[1], g["fewshot"], shots, args.episodes)
                        for name, g in GRIDS.items()
                    }
                    for shots in (1, 5)
                }
        elif task.name == "rotation":
            for label, (train, _, _) in feats.items():
                result["lowshot"][label] = {
                    f"{n} images": {
                        name: _lowshot(train, task.train[1].float().reshape(len(train), -1), g["probe"], n, 10)
                        for name, g in GRIDS.items()
                    }
                    for n in (50, 250)
                }
    result["table_markdown"] = table_markdown(result)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
