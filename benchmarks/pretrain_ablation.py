"""Pre-training ablation at the demo's budget: which change makes AI-SimCLR at i = 1 match plain SimCLR?

Each variant pre-trains at the demo's scale (built-in shapes, 700 steps x 128, width 1/8, the
demo's optimiser) and is scored by convex linear probes (``amortinv.transfer.probe``) on the
shapes tasks at [1,1] (and, for AI encoders, at each training descriptor), on VALIDATION splits
only (the test split is never read here). For AI encoders it also reports the probe at [1,1]
after recomputing the BatchNorm statistics at [1,1] on the task's training images (a diagnostic
for statistics shared across descriptors).

    python benchmarks/pretrain_ablation.py --variants base,hyper_lr_auto --out benchmarks/results/pretrain_ablation/result.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

from amortinv.encoders import load_encoder
from amortinv.features import frozen_features
from amortinv.spaces import InvarianceSpace
from amortinv.ssl.pretrain import PretrainConfig, run_pretrain
from amortinv.transfer.data import prepare_batch
from amortinv.transfer.probe import fit_probe
from amortinv.transfer.tasks import build_tasks

COMMON = dict(
    method="simclr",
    space="groups2",
    data="shapes",
    batch_size=128,
    epochs=10_000,
    lr=2e-3,
    warmup_epochs=0.0,
    proj_hidden=256,
    proj_dim=64,
    knn_eval=False,
    progress=False,
)
ENC = {"cifar_stem": True, "width": 0.125}
VARIANTS = {
    "plain": dict(encoder="resnet18", fixed_descriptor="1,1"),
    "base": dict(encoder="hyper_resnet18"),
    "hyper_lr_auto": dict(encoder="hyper_resnet18", hyper_lr="auto"),
    "ones_share_0.5": dict(encoder="hyper_resnet18", ones_share=0.5),
    "per_descriptor_heads": dict(encoder="hyper_resnet18", per_descriptor_heads=True),
    "hidden_dim_8": dict(encoder="hyper_resnet18", encoder_options={**ENC, "hidden_dim": 8}),
    "hyper_lr_auto+ones_share_0.5": dict(encoder="hyper_resnet18", hyper_lr="auto", ones_share=0.5),
}


def recalibrated(encoder: torch.nn.Module, images: torch.Tensor, i: torch.Tensor, batch: int = 256) -> torch.nn.Module:
    """A copy whose BatchNorm running statistics are recomputed at ``i`` on ``images`` (cumulative average)."""
    enc = copy.deepcopy(encoder)
    for m in enc.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    enc.train()
    with torch.no_grad():
        for s in range(0, len(images), batch):
            enc(prepare_batch(enc, images[s : s + batch], tuple(images.shape[-2:]), torch.device("cpu")), i)
    return enc.eval()


def probe_scores(encoder: torch.nn.Module, tasks: list, i: torch.Tensor | None) -> dict[str, float]:
    out = {}
    for t in tasks:
        size = tuple(t.train[0].shape[-2:])
        feats = [frozen_features(encoder, x, i, size=size) for x in (t.train[0], t.val[0])]
        out[t.name] = round(fit_probe(feats[0], feats[1], t).val_score, 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--steps", type=int, default=700)
    parser.add_argument("--runs", default=str(Path.home() / ".cache/amortinv/runs/ablation"))
    parser.add_argument("--out", default="benchmarks/results/pretrain_ablation/result.json")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    space = InvarianceSpace.from_name("groups2")
    tasks = build_tasks(
        ["shape", "orientation", "position", "colour"],
        "shapes",
        None,
        image_size=None,
        train_limit=4000,
        test_limit=1000,
        val_fraction=0.15,
        seed=args.seed,
    )
    for name in args.variants.split(","):
        cfg = PretrainConfig(
            **{
                **COMMON,
                "encoder_options": ENC,
                **VARIANTS[name],
                "max_steps": args.steps,
                "seed": args.seed,
                "out": f"{args.runs}/{name}_{args.steps}",
            }
        )
        start = time.perf_counter()
        pre = run_pretrain(cfg)
        enc = load_encoder(cfg.out).eval()
        rec = {
            "config": VARIANTS[name],
            "steps": args.steps,
            "final_loss": pre["final_loss"],
            "pretrain_s": pre["wall_time_s"],
        }
        if enc.conditioned:
            ones = torch.ones(space.dim)
            rec["val_probe"] = {
                space.label(d): probe_scores(enc, tasks, d) for d in [ones, *space.training_descriptors()[:-1]]
            }
            rec["val_probe_bn_recalibrated_[1,1]"] = {
                t.name: probe_scores(recalibrated(enc, t.train[0], ones), [t], ones)[t.name] for t in tasks
            }
        else:
            rec["val_probe"] = {"plain": probe_scores(enc, tasks, None)}
        rec["total_s"] = round(time.perf_counter() - start, 1)
        results[f"{name}_{args.steps}"] = rec
        out.write_text(json.dumps(results, indent=2))
        print(name, json.dumps(rec["val_probe"]), flush=True)


if __name__ == "__main__":
    main()
