"""Few-shot figure: accuracy (or R^2) per method with 95% CI bars, and the learned i per factor."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from amortinv.viz.figure import save_figure  # noqa: E402

__all__ = ["fewshot_figure"]


def fewshot_figure(results: dict[str, dict], metric: str, out: Path, title: str) -> Path:
    """One row per setting (e.g. ``1shot``): horizontal bars of ``metric`` with CI, and the learned i.

    Args:
        results: ``{setting: {metric: {method: {mean, ci95}}, "learned_i": {"mean": {...}, "std": {...}}}}``.
        metric: ``accuracy`` or ``r2``.
    """
    if not results:
        raise ValueError("no few-shot results to plot")
    fig, axes = plt.subplots(
        len(results),
        2,
        figsize=(11, 0.35 * max(len(r[metric]) for r in results.values()) * len(results) + 1.5),
        squeeze=False,
        gridspec_kw={"width_ratios": [3, 1]},
    )
    for row, (setting, rec) in enumerate(results.items()):
        methods = sorted(rec[metric], key=lambda m: rec[metric][m]["mean"])
        means = [rec[metric][m]["mean"] for m in methods]
        cis = [rec[metric][m]["ci95"] for m in methods]
        colours = [
            "tab:red" if m.startswith("ai_") else "tab:grey" if m.startswith("oracle") else "tab:blue" for m in methods
        ]
        ax = axes[row][0]
        ax.barh(np.arange(len(methods)), means, xerr=cis, color=colours, capsize=2)
        ax.set_yticks(np.arange(len(methods)), methods, fontsize=7)
        ax.set_xlabel(f"{metric} (mean, 95% CI)")
        ax.set_title(f"{title}: {setting}", fontsize=9)
        lo = min(m - c for m, c in zip(means, cis))
        ax.set_xlim(
            max(0.0, lo - 0.05) if metric == "accuracy" else lo - 0.05, max(m + c for m, c in zip(means, cis)) + 0.02
        )
        learned = rec["learned_i"]
        factors = list(learned["mean"])
        axi = axes[row][1]
        mean = np.array([learned["mean"][f] for f in factors])
        std = np.array([learned["std"][f] for f in factors])
        whiskers = [mean - np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1) - mean]  # std, clipped to [0, 1]
        axi.bar(np.arange(len(factors)), mean, yerr=whiskers, capsize=3, color="tab:red")
        axi.set_xticks(np.arange(len(factors)), factors, rotation=30, fontsize=7)
        axi.set_ylim(0, 1.05)
        axi.set_title("learned i (mean, std over episodes)", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out)
