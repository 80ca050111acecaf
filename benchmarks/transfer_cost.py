"""Cost of downstream learning: invariance learning by backprop vs forward mode vs a linear probe vs fine-tuning all.

Side by side in one run on this machine, each method in a fresh process (so its peak memory
is its own): Hyper-ResNet-18 (width 1/2, CIFAR stem) on 32x32 CIFAR-10 images (a seeded
subset), one hyper-parameter setting, the same epochs. Records wall time, peak memory
(peak RSS delta on CPU, max allocated on CUDA), trainable parameters and the test score.
Writes benchmarks/results/transfer_cost.json. The encoder is the pre-trained CIFAR-10 one when
``--encoder`` is given, else randomly initialised (cost does not depend on the weights).
Run by hand: ``python benchmarks/transfer_cost.py --data-root ../shared/data/cifar10``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
from pathlib import Path

import torch

from amortinv.data import build_dataset
from amortinv.encoders import build_encoder, load_encoder
from amortinv.results import write_json
from amortinv.spaces import InvarianceSpace
from amortinv.transfer import SearchSettings, TransferSettings, make_task, run_transfer, stack_dataset

METHODS = {"backprop": "ai", "cheap": "ai_forward", "linear_probe": "probe", "finetune_all": "finetune"}


def measure(key: str, args: argparse.Namespace, queue: mp.Queue) -> None:
    torch.manual_seed(0)
    space = InvarianceSpace.from_name("groups2")
    enc = (
        load_encoder(args.encoder)
        if args.encoder
        else build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.5)
    )
    train = stack_dataset(build_dataset("cifar10", args.data_root, "train"), args.train, seed=0)
    test = stack_dataset(build_dataset("cifar10", args.data_root, "test"), args.test, seed=0)
    data = make_task("cifar10", "classification", train, test)
    search = SearchSettings(steps=args.steps, batch_size=args.batch, eval_every=args.steps, chunk_size=args.chunk)
    settings = TransferSettings(
        search=search,
        lrs=(1e-3,),
        weight_decays=(1e-4,),
        epochs=args.epochs,
        batch_size=args.batch,
        finetune_stages=(0,),
        quantise_bits=(),
        device=args.device,
    )
    out = run_transfer(enc, data, space, [METHODS[key]], settings, log=lambda m: None)
    record = out["probe[[1,1] spatial+appearance]"] if key == "linear_probe" else next(iter(out.values()))
    queue.put(
        {
            "time_s": record["time_s"],
            "peak_memory_mb": record["peak_memory_mb"],
            "trainable_params": record["trainable_params"],
            "score_top1": record["test"]["top1"],
            **({"i": record["i"]} if "i" in record else {}),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10"))
    parser.add_argument(
        "--encoder", default=None, help="a saved Hyper-ResNet-18 (width 1/2) to use instead of a random one"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs")
    parser.add_argument("--steps", type=int, default=16, help="descriptor steps of the invariance search")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--chunk", type=int, default=64, help="images per forward-mode pass of the cheap scheme")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "transfer_cost/result.json"))
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    results: dict[str, object] = {
        "device": args.device,
        "encoder": args.encoder or "hyper_resnet18 width 0.5 (random init)",
        "train_images": args.train,
        "test_images": args.test,
        "epochs": args.epochs,
        "i_steps": args.steps,
        "batch": args.batch,
        "cheap_chunk": args.chunk,
    }
    for key in METHODS:
        queue = ctx.Queue()
        proc = ctx.Process(target=measure, args=(key, args, queue))
        proc.start()
        results[key] = queue.get()
        proc.join()
        r = results[key]
        print(
            f"{key:13s} time {r['time_s']:8.1f} s | peak {r['peak_memory_mb']:8.1f} MB | trainable {r['trainable_params']:>11,} | top1 {r['score_top1']:.3f}"
        )
    lp, ch, ft = results["linear_probe"], results["cheap"], results["finetune_all"]
    results["ratios"] = {
        "cheap_over_linear_probe_memory": round(ch["peak_memory_mb"] / lp["peak_memory_mb"], 3),
        "cheap_over_finetune_all_memory": round(ch["peak_memory_mb"] / ft["peak_memory_mb"], 3),
        "backprop_over_linear_probe_memory": round(results["backprop"]["peak_memory_mb"] / lp["peak_memory_mb"], 3),
        "cheap_over_backprop_time": round(ch["time_s"] / results["backprop"]["time_s"], 3),
    }
    print(results["ratios"])
    write_json(args.out, results)


if __name__ == "__main__":
    main()
