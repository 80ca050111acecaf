"""Learned-invariance bar chart: the descriptor each task chose, factor by factor (paper Figure 2)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from amortinv.viz.figure import save_figure  # noqa: E402

__all__ = ["learned_i_chart"]


def learned_i_chart(learned: dict[str, dict[str, float]], out: Path, title: str = "Learned invariance per task") -> Path:
    """Grouped bars: one group per task, one bar per factor, heights = learned i in [0, 1].

    Args:
        learned: ``{task: {factor: value}}``.
        out: the PNG path.
    """
    if not learned:
        raise ValueError("no learned descriptors to plot")
    tasks = list(learned)
    factors = list(next(iter(learned.values())))
    width = 0.8 / len(factors)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(tasks) + 1.5), 3.4))
    x = np.arange(len(tasks))
    for k, factor in enumerate(factors):
        heights = [learned[t][factor] for t in tasks]
        bars = ax.bar(x + (k - (len(factors) - 1) / 2) * width, heights, width, label=factor)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(x, tasks)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("learned i (1 = invariant)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, ncols=min(len(factors), 4), loc="upper left")
    fig.tight_layout()
    return save_figure(fig, out)
