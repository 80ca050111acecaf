"""The demo over several seeds: mean and spread of every row, and per seed who wins.

One demo run compares two models trained once each; at the demo's budget a single run moves by
several points from seed to seed (and between thread counts), so its table cannot say whether a gap
is the method or the draw. This collects the ``result.json`` of demo runs that differ only in
``--seed`` (the seeds are fixed in advance and every run is reported) into one table.

    for s in 1 2 3 4; do OMP_NUM_THREADS=1 amortinv demo --seed $s --out runs/demo_seed$s; done
    python benchmarks/demo_seeds.py --results benchmarks/results/demo/result.json,runs/demo_seed1/result.json,... \\
        --out benchmarks/results/demo_seeds/summary.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

ROWS = ("AI-SimCLR, learned i", "AI-SimCLR, i = 1", "SimCLR")


def transfer_rows(result: dict) -> dict[str, dict[str, float]]:
    """Per task: test metric of the learned i, of the AI encoder at all ones, and of plain SimCLR."""
    rows = {}
    for task, rec in result["transfer"].items():
        metric = "top1" if "top1" in rec["ai"]["ai_forward"]["test"] else "r2"
        ones = next(v for k, v in rec["ai"].items() if k.startswith("probe[[1,1]"))
        plain = next(iter(rec["plain"].values()))
        rows[f"{task} ({metric})"] = dict(
            zip(ROWS, (rec["ai"]["ai_forward"]["test"][metric], ones["test"][metric], plain["test"][metric]))
        )
    return rows


def fewshot_rows(result: dict) -> dict[str, dict[str, float]]:
    rows = {}
    for rec in result["fewshot"].values():
        acc = rec["accuracy"]
        ones = next(v for k, v in acc.items() if k.startswith("fixed[[1,1") and k.endswith("/ridge"))
        rows[f"{rec['ways']}-way {rec['shots']}-shot (accuracy)"] = dict(
            zip(ROWS, (acc["ai_learned"]["mean"], ones["mean"], acc["plain:simclr/ridge"]["mean"]))
        )
    return rows


def summarise(per_seed: list[dict[str, dict[str, float]]]) -> dict[str, dict]:
    out = {}
    for row in per_seed[0]:
        values = {col: [s[row][col] for s in per_seed] for col in ROWS}
        gaps = [a - b for a, b in zip(values[ROWS[0]], values[ROWS[2]])]
        out[row] = {
            **{
                col: {
                    "mean": round(statistics.mean(v), 4),
                    "sd": round(statistics.stdev(v), 4),
                    "per_seed": [round(x, 4) for x in v],
                }
                for col, v in values.items()
            },
            "learned_minus_plain": {
                "mean": round(statistics.mean(gaps), 4),
                "sd": round(statistics.stdev(gaps), 4),
                "seeds_learned_at_least_plain": sum(g >= 0 for g in gaps),
            },
        }
    return out


def markdown(summary: dict[str, dict], seeds: int) -> str:
    lines = [
        f"| row (test, {seeds} seeds) | "
        + " | ".join(f"{c}: mean ± sd" for c in ROWS)
        + " | learned i − SimCLR | seeds learned i ≥ SimCLR |",
        "|" + " --- |" * 6,
    ]
    for row, rec in summary.items():
        gap = rec["learned_minus_plain"]
        lines.append(
            f"| {row} | "
            + " | ".join(f"{rec[c]['mean']:.3f} ± {rec[c]['sd']:.3f}" for c in ROWS)
            + f" | {gap['mean']:+.3f} ± {gap['sd']:.3f} | {gap['seeds_learned_at_least_plain']} of {seeds} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", required=True, help="comma-separated result.json files of demo runs")
    parser.add_argument(
        "--seeds",
        default=None,
        help="comma-separated seed of each run, for runs whose result.json predates its 'seed' field",
    )
    parser.add_argument("--out", default="benchmarks/results/demo_seeds/summary.json")
    args = parser.parse_args()
    files = [Path(f) for f in args.results.split(",")]
    results = [json.loads(f.read_text()) for f in files]
    per_seed = [{**transfer_rows(r), **fewshot_rows(r)} for r in results]
    summary = summarise(per_seed)
    seeds = [int(v) for v in args.seeds.split(",")] if args.seeds else [r.get("seed") for r in results]
    record = {
        "runs": [
            {"file": str(f), "seed": seed, "wall_time_s": r["wall_time_s"]} for f, r, seed in zip(files, results, seeds)
        ],
        "summary": summary,
        "table_markdown": markdown(summary, len(results)),
    }
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(record["table_markdown"])


if __name__ == "__main__":
    main()
