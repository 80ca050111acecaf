"""The README's results figure and table: AI-SimCLR (learned i) vs SimCLR, by score, on every task we have.

Reads the CPU suite (CIFAR-10, FSDD, shapes with the CIFAR-10 encoders; ``benchmarks/results/suite_cpu/result.json``)
and the demo's five-seed study (``benchmarks/results/demo_seeds/summary.json``); writes ``overview.png`` and
``overview.md`` to ``benchmarks/results/``.

python benchmarks/overview_figure.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def suite_rows(path: Path) -> list[tuple[str, float, float, str]]:
    """(column, AI-SimCLR, SimCLR, source) for each column of the suite whose two encoders of one data both have a score."""
    datasets = json.loads(path.read_text())["datasets"]
    rows = []
    for record in datasets.values():
        for column, scores in record["scores"].items():
            ai = next(((k, v[0]) for k, v in scores.items() if k.startswith("AI-")), None)
            plain = next((v[0] for k, v in scores.items() if k.startswith("SimCLR")), None)
            if ai is not None and plain is not None:
                encoders = ai[0].split("(", 1)[1].rstrip(")") if "(" in ai[0] else "its"
                rows.append((column, ai[1], plain, f"CPU suite, {encoders} encoders"))
    return rows


def seed_rows(path: Path) -> list[tuple[str, float, float, str]]:
    """(task, AI-SimCLR learned i mean, SimCLR mean, source) over the demo's five seeds."""
    summary = json.loads(path.read_text())["summary"]
    return [
        (
            f"demo {task}",
            row["AI-SimCLR, learned i"]["mean"],
            row["SimCLR"]["mean"],
            "demo (shapes encoders), mean of 5 seeds",
        )
        for task, row in summary.items()
    ]


def table(rows: list[tuple[str, float, float, str]]) -> str:
    lines = ["| task | AI-SimCLR, learned i | SimCLR | difference | from |", "| --- | --- | --- | --- | --- |"]
    for name, ai, plain, source in rows:
        lines.append(f"| {name} | {ai:.3f} | {plain:.3f} | {ai - plain:+.3f} | {source} |")
    return "\n".join(lines) + "\n"


def figure(rows: list[tuple[str, float, float, str]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(rows) + 1.4))
    y = range(len(rows))
    ax.barh([v - 0.2 for v in y], [r[1] for r in rows], height=0.4, label="AI-SimCLR, learned i", color="#1f77b4")
    ax.barh([v + 0.2 for v in y], [r[2] for r in rows], height=0.4, label="SimCLR", color="#bbbbbb")
    ax.set_yticks(list(y), [r[0] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("test score (top-1 accuracy, or R² for regression)")
    ax.axvline(0, color="black", linewidth=0.5)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("One AI-SimCLR encoder with each task's learned i vs plain SimCLR (same budget)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default=str(RESULTS / "suite_cpu" / "result.json"))
    parser.add_argument("--seeds", default=str(RESULTS / "demo_seeds" / "summary.json"))
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    rows = suite_rows(Path(args.suite)) + seed_rows(Path(args.seeds))
    out = Path(args.out)
    figure(rows, out / "overview.png")
    (out / "overview.md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
