"""Learned-invariance bar chart: the descriptor each task chose, factor by factor (paper Figure 2)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from amortinv.viz.figure import save_figure  # noqa: E402

__all__ = ["learned_i_chart"]


def learned_i_chart(
    learned: dict[str, dict[str, float]],
    out: Path,
    title: str = "Learned invariance per task",
    start: dict[str, dict[str, float]] | None = None,
    expected: dict[str, dict[str, str]] | None = None,
) -> Path:
    """Grouped bars: one group per task, one bar per factor, heights = learned i in [0, 1].

    Args:
        learned: ``{task: {factor: value}}``.
        out: the PNG path.
        start: ``{task: {factor: value}}`` where each search started, drawn as a black tick.
        expected: ``{task: {factor: "invariant" | "sensitive"}}`` where a task's need is known,
            written under the task's name (up = should move towards invariance, down = towards sensitivity).
    """
    if not learned:
        raise ValueError("no learned descriptors to plot")
    tasks = list(learned)
    factors = list(next(iter(learned.values())))
    width = 0.8 / len(factors)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.9 * len(tasks) + 2.0), 3.6))
    x = np.arange(len(tasks))
    for k, factor in enumerate(factors):
        heights = [learned[t][factor] for t in tasks]
        centres = x + (k - (len(factors) - 1) / 2) * width
        bars = ax.bar(centres, heights, width, label=factor)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
        for t, c in zip(tasks, centres):
            if start and t in start:
                ax.hlines(
                    start[t][factor],
                    c - width / 2,
                    c + width / 2,
                    colors="black",
                    linewidth=1.5,
                    label="start of the search" if (t, k) == (tasks[0], 0) else None,
                )
    needs = {
        t: "".join(
            f"\n{f} should go {'up' if n == 'invariant' else 'down'}" for f, n in (expected or {}).get(t, {}).items()
        )
        for t in tasks
    }
    ax.set_xticks(x, [t + needs[t] for t in tasks], fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("learned i (1 = invariant)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return save_figure(fig, out)
