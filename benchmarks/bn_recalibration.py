"""BatchNorm statistics recomputed downstream, on vs off, for an AI encoder and a plain one (VALIDATION only).

For each task: the convex probe's validation score of the AI encoder at every candidate
descriptor and of the plain encoder, with the pre-trained BatchNorm statistics and with
statistics recomputed at the descriptor on the task's training images. Same protocol for both
encoders; the test split is not read.

    python benchmarks/bn_recalibration.py --encoder RUN_AI --plain RUN_PLAIN --data shapes \
        --tasks shape,orientation,position,colour --out benchmarks/results/downstream_ablations/bn_recalibration.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from amortinv.encoders import load_encoder
from amortinv.loading import load_encoder_and_space
from amortinv.transfer import TransferSettings, run_transfer
from amortinv.transfer.tasks import build_tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--plain", required=True)
    parser.add_argument("--data", default="shapes")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--tasks", default="shape,orientation,position,colour")
    parser.add_argument("--train-limit", type=int, default=4000)
    parser.add_argument("--out", default="benchmarks/results/bn_recalibration.json")
    args = parser.parse_args()
    enc, space = load_encoder_and_space(args.encoder)
    plain = load_encoder(args.plain).eval()
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
    results: dict = {
        "encoder": args.encoder,
        "plain": args.plain,
        "data": args.data,
        "note": "validation scores only",
        "tasks": {},
    }
    for task in tasks:
        row = {}
        for recal in (False, True):
            settings = TransferSettings(recalibrate_bn=recal, batch_size=128)
            res = run_transfer(
                enc, task, space, ["probe"], settings, plain_encoders={"plain": plain}, log=lambda m: None
            )
            row["recomputed" if recal else "pre-trained"] = {k: round(v["val_score"], 4) for k, v in res.items()}
        results["tasks"][task.name] = row
        print(task.name, json.dumps(row), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
