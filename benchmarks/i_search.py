"""Descriptor-search variants side by side: where does each end, and how good is it on VALIDATION?

Runs ``run_transfer(..., ["ai_forward"])`` on one encoder and a few tasks with each variant of
the search (start point, steps, step size) and records the validation score of the selected
point, the score of the best fixed candidate, the learned ``i`` and where on the path it was
selected. Test scores are not read here (the transfer results report them once, for the default).

    python benchmarks/i_search.py --encoder runs/demo/pretrain_ai_simclr --data shapes --variants "from 0.5 (paper start) + 30 steps" \
        --tasks shape,orientation,position,colour --out benchmarks/results/downstream_ablations/i_search.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from amortinv.loading import load_encoder_and_space
from amortinv.transfer import SearchSettings, TransferSettings, run_transfer
from amortinv.transfer.tasks import build_tasks

VARIANTS = {
    "best candidate only (0 steps)": dict(init="best", steps=0),
    "from 0.5 (paper start) + 30 steps": dict(init="0.5", steps=30),
    "best candidate + 30 steps (default)": dict(init="best", steps=30),
    "best candidate + 30 steps at lr_i 0.02": dict(init="best", steps=30, lr_i=0.02),
    "best candidate + 60 steps": dict(init="best", steps=60),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--data", default="shapes")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--tasks", default="shape,orientation,position,colour")
    parser.add_argument("--train-limit", type=int, default=4000)
    parser.add_argument("--variants", default=";".join(VARIANTS), help="semicolon-separated variant names")
    parser.add_argument("--out", default="benchmarks/results/i_search.json")
    args = parser.parse_args()
    enc, space = load_encoder_and_space(args.encoder)
    tasks = build_tasks(
        args.tasks.split(","),
        args.data,
        args.data_root,
        image_size=None,
        train_limit=args.train_limit,
        test_limit=100,
        val_fraction=0.15,
        seed=0,
    )
    results: dict = {"encoder": args.encoder, "data": args.data, "note": "validation scores only", "variants": {}}
    for name in args.variants.split(";"):
        v = VARIANTS[name]
        search = replace(SearchSettings(), steps=v["steps"], lr_i=v.get("lr_i", SearchSettings.lr_i))
        settings = TransferSettings(search=search, init=v["init"], quantise_bits=(), batch_size=128)
        rows = {}
        for task in tasks:
            start = time.perf_counter()
            rec = run_transfer(enc, task, space, ["ai_forward"], settings, log=lambda m: None)["ai_forward"]
            rows[task.name] = {
                "val_score": rec["val_score"],
                "best_fixed_val": max(rec["candidates_val"].values()),
                "i": rec["i"],
                "start": rec["start"],
                "selected_step": rec["selected_step"],
                "time_s": round(time.perf_counter() - start, 1),
            }
        results["variants"][name] = rows
        Path(args.out).write_text(json.dumps(results, indent=2))
        print(
            name, {t: (r["val_score"], r["best_fixed_val"], list(r["i"].values())) for t, r in rows.items()}, flush=True
        )


if __name__ == "__main__":
    main()
