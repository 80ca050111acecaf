"""Invariance plots: radar of per-transform invariance, interpolation path and 2-D surface (PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from amortinv.viz.figure import save_figure  # noqa: E402

__all__ = ["radar_plot", "path_plot", "grid_plot"]


def radar_plot(scores: dict[str, dict[str, float]], out: Path, title: str = "Invariance (cosine similarity)") -> Path:
    """One polygon per model/descriptor over the transforms. ``scores``: {label: {transform: value in [0, 1]}}."""
    if not scores:
        raise ValueError("nothing to plot")
    transforms = list(next(iter(scores.values())))
    angles = np.linspace(0, 2 * np.pi, len(transforms), endpoint=False).tolist()
    fig, ax = plt.subplots(figsize=(6.2, 6.2), subplot_kw={"projection": "polar"})
    for label, values in scores.items():
        v = [max(0.0, values[t]) for t in transforms]
        style = "--" if "baseline" in label.lower() or "plain" in label.lower() else "-"
        ax.plot(angles + angles[:1], v + v[:1], style, linewidth=1.8, label=label, marker="o", markersize=3)
        ax.fill(angles + angles[:1], v + v[:1], alpha=0.08)
    low = min(max(0.0, v) for values in scores.values() for v in values.values())
    floor = max(0.0, np.floor((low - 0.05 * (1 - low)) * 20) / 20)  # fitted to the data, on a 0.05 grid
    ax.set_xticks(angles, [t.replace("_", " ") for t in transforms], fontsize=8)
    ax.tick_params(axis="x", pad=16)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_rlabel_position(180 / max(1, len(transforms)))  # between the first two spokes, clear of their labels
    ax.set_ylim(floor, 1)
    ax.set_title(title + (f"\n(radial axis from {floor:.2f}, not 0)" if floor > 0 else ""), fontsize=10, pad=22)
    ax.legend(loc="upper right", bbox_to_anchor=(1.35, 1.12), fontsize=8)
    return save_figure(fig, out)


def path_plot(paths: dict[str, list[dict]], out: Path, start: str, end: str) -> Path:
    """Invariance along the straight descriptor path for each transform. ``paths``: {transform: invariance_path(...)}."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for transform, points in paths.items():
        ax.plot([p["t"] for p in points], [p["cosine"] for p in points], marker="o", markersize=3, label=transform)
    ax.set_xlabel(f"descriptor: {start} (0) -> {end} (1)")
    ax.set_ylabel("invariance (mean cosine similarity)")
    ax.set_title("Invariance along an interpolation of descriptors", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, out)


def grid_plot(grid: torch.Tensor, out: Path, factors: tuple[str, str], transform: str) -> Path:
    """Heat map of invariance over a 2-D grid of descriptors (rows: factor 0, columns: factor 1)."""
    fig, ax = plt.subplots(figsize=(4.8, 4.0))
    im = ax.imshow(grid.numpy(), origin="lower", extent=(0, 1, 0, 1), cmap="viridis", aspect="auto")
    ax.set_ylabel(f"i[{factors[0]}]")
    ax.set_xlabel(f"i[{factors[1]}]")
    ax.set_title(f"Invariance to {transform} over descriptors", fontsize=10)
    fig.colorbar(im, ax=ax, label="mean cosine similarity")
    return save_figure(fig, out)
