"""``amortinv demo``: the whole method end to end, on the built-in shapes data by default.

1. pre-train a small Hyper-ResNet with AI-SimCLR (groups2) and a plain SimCLR ResNet with the
   same budget (steps, batch, width);
2. transfer both to tasks with known, conflicting needs (shapes: shape class, orientation,
   position, colour; other data: classification, rotation, colour), learning ``i`` for the
   amortised encoder (forward-mode gradient) and convex linear probes as baselines;
3. few-shot episodes (shape classes, 1- and 5-shot) with a per-episode learned ``i``;
4. measure invariance at the training descriptors and of the plain encoder;
5. write ``result.json``, ``table.md``, ``learned_i.png`` and ``radar.png`` in the run folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from amortinv.data import SHAPE_TASKS, build_dataset
from amortinv.devices import resolve_device
from amortinv.encoders import load_encoder
from amortinv.measure import measure_invariance
from amortinv.measure.transforms import resolve_transforms
from amortinv.results import write_json
from amortinv.spaces import InvarianceSpace
from amortinv.transfer.data import stack_dataset
from amortinv.transfer.protocol import run_transfer
from amortinv.transfer.settings import SearchSettings, TransferSettings
from amortinv.transfer.tasks import build_tasks

__all__ = ["DemoProfile", "PROFILES", "run_demo", "results_table"]


@dataclass(frozen=True)
class DemoProfile:
    """Budget of a demo run."""

    pretrain_steps: int
    batch_size: int
    width: float
    train_images: int
    test_images: int
    i_steps: int
    eval_every: int
    measure_images: int
    transforms: str
    episodes: int
    lr: float = 2e-3
    proj_hidden: int = 256
    proj_dim: int = 64
    val_fraction: float = 0.15
    feature_batch: int = 128
    shots: tuple[int, ...] = (1, 5)
    queries: int = 10


PROFILES = {
    "full": DemoProfile(
        pretrain_steps=700,
        batch_size=128,
        width=0.125,
        train_images=4000,
        test_images=1000,
        i_steps=30,
        eval_every=10,
        measure_images=300,
        transforms="all",
        episodes=300,
    ),
    "quick": DemoProfile(
        pretrain_steps=25,
        batch_size=64,
        width=0.0625,
        train_images=400,
        test_images=200,
        i_steps=4,
        eval_every=2,
        measure_images=40,
        transforms="hflip,rotation,translation,grayscale,hue,brightness",
        episodes=10,
    ),
}


KNOWN_NEEDS = {  # what each shapes task needs, by construction of the data
    "shape": {"spatial": "invariant", "appearance": "invariant"},
    "orientation": {"spatial": "sensitive"},
    "position": {"spatial": "sensitive"},
    "colour": {"appearance": "sensitive"},
}


def _pretrain(
    name: str,
    encoder: str,
    fixed: str | None,
    data: str,
    data_root: str | None,
    p: DemoProfile,
    out: Path,
    device: str,
    seed: int,
) -> dict:
    from amortinv.ssl.pretrain import PretrainConfig, run_pretrain

    cfg = PretrainConfig(
        method="simclr",
        encoder=encoder,
        encoder_options={"cifar_stem": True, "width": p.width},
        space="groups2",
        fixed_descriptor=fixed,
        data=data,
        data_root=data_root,
        batch_size=p.batch_size,
        epochs=10_000,
        max_steps=p.pretrain_steps,
        lr=p.lr,
        warmup_epochs=0.0,
        proj_hidden=p.proj_hidden,
        proj_dim=p.proj_dim,
        knn_eval=False,
        accelerator="gpu" if device == "cuda" else "cpu",
        out=str(out / name),
        seed=seed,
        overwrite=True,  # a demo re-run replaces its runs
    )
    return run_pretrain(cfg, resume_hint="the demo starts its runs afresh: run the same demo command again")


def _progress_line(message: str) -> None:
    """Each finished transfer method as a line above the progress bar (a piped log shows them too)."""
    if not message.endswith("..."):
        tqdm.write("  " + message)


def _fewshot(
    ai_enc: torch.nn.Module,
    plain_enc: torch.nn.Module,
    space: InvarianceSpace,
    data: str,
    data_root: str | None,
    p: DemoProfile,
    dev: str,
    seed: int,
) -> dict:
    from amortinv.fewshot.command import load_pool
    from amortinv.fewshot.evaluate import run_episodes
    from amortinv.fewshot.settings import FewShotSettings

    images, labels, _ = load_pool(
        data, data_root, "test", "shape" if data == "shapes" else "classification", p.test_images, seed
    )
    settings = FewShotSettings(
        ways=min(5, int(labels.max()) + 1),
        shots=p.shots,
        queries=p.queries,
        episodes=p.episodes,
        heads=("ridge",),
        device=dev,
        seed=seed,
    )
    return run_episodes(ai_enc, space, images, labels, settings, {"simclr": plain_enc})


def fewshot_table(results: dict[str, dict]) -> str:
    """A Markdown table of few-shot accuracy (mean ± 95% CI): learned i, i = 1, plain SimCLR, and the oracle bound."""
    lines = [
        "| episodes | AI-SimCLR, learned i | AI-SimCLR, i = 1 | SimCLR | oracle best fixed i (upper bound) |",
        "|" + " --- |" * 5,
    ]
    for rec in results.values():
        acc = rec["accuracy"]
        ones = next(v for k, v in acc.items() if k.startswith("fixed[[1,1") and k.endswith("/ridge"))
        cells = [acc["ai_learned"], ones, acc["plain:simclr/ridge"], acc["oracle_best_fixed"]]
        lines.append(
            f"| {rec['ways']}-way {rec['shots']}-shot ({rec['episodes']}) | "
            + " | ".join(f"{c['mean']:.3f} ± {c['ci95']:.3f}" for c in cells)
            + " |"
        )
    return "\n".join(lines) + "\n"


def results_table(tasks: dict[str, dict], factors: tuple[str, ...]) -> str:
    """A Markdown table: per task, the score of AI (learned i), the AI encoder at i = 1, the best fixed-i probe, plain SimCLR."""
    head = (
        "| task | metric | AI-SimCLR, learned i | AI-SimCLR, i = 1 | best fixed i | SimCLR | learned i ("
        + ", ".join(factors)
        + ") |"
    )
    lines = [head, "|" + " --- |" * 7]
    for name, rec in tasks.items():
        ai, plain = rec["ai"], rec["plain"]
        metric = "top1" if "top1" in ai["ai_forward"]["test"] else "r2"
        probes = {k: v for k, v in ai.items() if k.startswith("probe[")}
        ones = next(v for k, v in probes.items() if k.startswith("probe[[" + ",".join(["1"] * len(factors)) + "]"))
        best_label, best = max(probes.items(), key=lambda kv: kv[1]["val_score"])
        plain_rec = next(iter(plain.values()))
        learned = ai["ai_forward"]["i"]
        lines.append(
            f"| {name} | {metric} | {ai['ai_forward']['test'][metric]:.3f} | {ones['test'][metric]:.3f} | "
            f"{best['test'][metric]:.3f} {best_label[6:-1].split(' ')[0]} | {plain_rec['test'][metric]:.3f} | "
            + ", ".join(f"{learned[f]:.2f}" for f in factors)
            + " |"
        )
    return "\n".join(lines) + "\n"


SMOKE_TEST = (
    "SMOKE TEST (--quick: {steps} pre-training steps): these numbers only show that every stage runs and say nothing "
    "about the method; `amortinv demo` (10-15 minutes on 2 CPU cores) gives results"
)


def run_demo(
    data: str = "shapes",
    data_root: str | None = None,
    out: str = "runs/demo",
    quick: bool = False,
    device: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Run the demo (see the module docstring) and return its ``result.json`` record."""
    p = PROFILES["quick" if quick else "full"]
    dev = resolve_device(device)
    out_dir = Path(out)
    space = InvarianceSpace.from_name("groups2")
    start = time.perf_counter()
    smoke = SMOKE_TEST.format(steps=p.pretrain_steps) if quick else ""
    if smoke:
        print(smoke)
    print(f"[1/5] pre-training AI-SimCLR and SimCLR on {data} ({p.pretrain_steps} steps each)")
    pre = {
        "ai_simclr": _pretrain("pretrain_ai_simclr", "hyper_resnet18", None, data, data_root, p, out_dir, dev, seed),
        "simclr": _pretrain("pretrain_simclr", "resnet18", "1,1", data, data_root, p, out_dir, dev, seed),
    }
    ai_enc = load_encoder(out_dir / "pretrain_ai_simclr").to(dev).eval()
    plain_enc = load_encoder(out_dir / "pretrain_simclr").to(dev).eval()
    transfer = _transfer_stage(ai_enc, plain_enc, space, data, data_root, p, dev, seed)
    print("[3/5] few-shot episodes (learned i per episode)")
    fewshot = _fewshot(ai_enc, plain_enc, space, data, data_root, p, dev, seed)
    print("[4/5] measuring invariance")
    measured = _measure_stage(ai_enc, plain_enc, space, data, data_root, p, seed)
    print("[5/5] writing the report")
    result = {
        "data": data,
        "profile": "quick" if quick else "full",
        "smoke_test": quick,
        "device": dev,
        "seed": seed,
        "space": space.to_config(),
        "pretrain": {k: {key: v.get(key) for key in PRETRAIN_KEYS} for k, v in pre.items()},
        "transfer": transfer,
        "learned_i": {name: rec["ai"]["ai_forward"]["i"] for name, rec in transfer.items()},
        "fewshot": fewshot,
        "invariance": measured,
    }
    _write_report(result, out_dir, space, smoke, start)
    return result


PRETRAIN_KEYS = ("steps", "final_loss", "wall_time_s", "images_per_s", "peak_memory_mb", "encoder")


def _transfer_stage(
    ai_enc: Any, plain_enc: Any, space: InvarianceSpace, data: str, data_root: str | None, p: DemoProfile, dev: str,
    seed: int,
) -> dict[str, dict]:  # fmt: skip
    """Each task: the AI encoder's learned ``i`` and fixed-descriptor probes, the plain encoder's probe."""
    names = list(SHAPE_TASKS) if data == "shapes" else ["classification", "rotation", "colour"]
    print(f"[2/5] transfer to {', '.join(names)}")
    tasks = build_tasks(
        names,
        data,
        data_root,
        image_size=None,
        train_limit=p.train_images,
        test_limit=p.test_images,
        val_fraction=p.val_fraction,
        seed=seed,
    )
    search = SearchSettings(steps=p.i_steps, eval_every=p.eval_every)
    settings = TransferSettings(search=search, batch_size=p.feature_batch, device=dev, seed=seed)
    transfer: dict[str, dict] = {}
    for task in tqdm(tasks, desc="transfer", unit="task"):
        transfer[task.name] = {
            "data": task.summary(),
            "ai": run_transfer(ai_enc, task, space, ["ai_forward", "probe"], settings, log=_progress_line),
            "plain": run_transfer(plain_enc, task, None, ["probe"], settings, log=_progress_line),
        }
    return transfer


def _measure_stage(
    ai_enc: Any, plain_enc: Any, space: InvarianceSpace, data: str, data_root: str | None, p: DemoProfile, seed: int
) -> dict[str, Any]:
    """Invariance of the AI encoder at each training descriptor and of the plain one, on the test images."""
    images, _ = stack_dataset(build_dataset(data, data_root, "test"), 2 * p.measure_images, seed + 1)
    x, ref = images[: p.measure_images], images[p.measure_images :]
    transforms = resolve_transforms(p.transforms)
    ds = list(space.training_descriptors())
    measured = measure_invariance(
        ai_enc, x, ds, transforms, ref, labels=[f"AI {space.label(d)}" for d in ds], progress=True
    )
    measured["results"].update(
        measure_invariance(plain_enc, x, [None], transforms, ref, labels=["baseline SimCLR"], progress=True)["results"]
    )
    return measured


def _write_report(result: dict[str, Any], out_dir: Path, space: InvarianceSpace, smoke: str, start: float) -> None:
    """``table.md``, ``learned_i.png``, ``radar.png`` and ``result.json``; prints the table."""
    from amortinv.viz.measure import radar_plot
    from amortinv.viz.transfer import learned_i_chart

    data, transfer, tag = result["data"], result["transfer"], "SMOKE TEST (--quick) - " if smoke else ""
    table = (f"> **{smoke}**\n\n" if smoke else "") + results_table(transfer, space.factors) + "\n"
    table += fewshot_table(result["fewshot"])
    starts = {
        name: {f: v for f, v in zip(space.factors, rec["ai"]["ai_forward"]["path"][0]["i"])}
        for name, rec in transfer.items()
    }
    learned_i_chart(
        result["learned_i"],
        out_dir / "learned_i.png",
        title=f"{tag}Learned invariance per task ({data}, AI-SimCLR)",
        start=starts,
        expected=KNOWN_NEEDS if data == "shapes" else None,
    )
    radar = {
        label: {t: r["cosine"] for t, r in res["transforms"].items()}
        for label, res in result["invariance"]["results"].items()
    }
    title = f"{tag}Invariance to transforms ({data}, cosine similarity; 1 = invariant)"
    radar_plot(radar, out_dir / "radar.png", title=title)
    (out_dir / "table.md").write_text(table)
    result["table_markdown"] = table
    result["wall_time_s"] = round(time.perf_counter() - start, 1)
    write_json(out_dir / "result.json", result)
    print("\n" + table)
    print(f"run folder: {out_dir}  (result.json, table.md, learned_i.png, radar.png; {result['wall_time_s']} s)")
    if smoke:
        print(smoke)
