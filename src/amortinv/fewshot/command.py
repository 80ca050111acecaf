"""``amortinv fewshot``: few-shot episodes (classification) or low-shot splits (regression) -> result.json + plot."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from amortinv.fewshot.settings import EpisodeSearch, FewShotSettings

_DEFAULTS = FewShotSettings()
__all__ = ["fewshot_command", "load_pool"]


def _numbers(text: str, name: str, kind: type) -> tuple:
    """Comma-separated numbers of ``kind`` (int or float) given to option ``--name`` (their range is the settings' to check)."""
    try:
        return tuple(kind(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise ValueError(
            f"--{name} takes comma-separated {'whole numbers' if kind is int else 'numbers'}, got '{text}'"
        ) from None


def display_name(row: str) -> str:
    """A result row as a reader names it: ``fixed[[1,0] spatial]/ridge`` -> ``AI @ [1,0] (invariant: spatial), ridge``."""
    if row.startswith("ai_learned"):
        return "AI, learned i" + (", 1-bit quantised" if row.endswith("_q1") else "") + ", ridge"
    if row == "oracle_best_fixed":
        return "oracle: best fixed i per episode (an upper bound, not a result)"
    source, _, head = row.rpartition("/")
    if source.startswith("plain:"):
        return f"{source[6:]} (plain encoder), {head}"
    if source.startswith("fixed["):
        value, _, factors = source[6:-1].partition(" ")
        return f"AI @ {value} (invariant: {factors.replace('+', ', ')}), {head}"
    return row


def shown_rows(rows: dict[str, dict], best_fixed: int = 3) -> list[tuple[str, dict]]:
    """The rows to print, best first: every AI row (learned i) and every plain encoder whatever their rank, the best
    ``best_fixed`` fixed descriptors, and the oracle (labelled as an upper bound)."""
    ranked = sorted(rows.items(), key=lambda kv: -kv[1]["mean"])
    fixed = [name for name, _ in ranked if name.startswith("fixed[")][:best_fixed]
    keep = {name for name in rows if name.startswith(("ai_learned", "plain:")) or name == "oracle_best_fixed"} | set(
        fixed
    )
    return [(name, v) for name, v in ranked if name in keep]


def load_pool(
    data: str,
    data_root: str | None,
    split: str,
    task: str,
    limit: int | None,
    seed: int,
    audio: dict[str, Any] | None = None,
    image_size: int | None = None,
) -> tuple[Any, Any, str]:
    """Inputs (uint8 images (M, 3, H, W) or waveforms (M, 1, L)), targets and the kind (classification or regression) of the few-shot pool."""
    import torch

    from amortinv.data import SHAPE_TASKS, build_dataset
    from amortinv.transfer.data import stack_dataset, subset_indices
    from amortinv.transfer.tasks import TASKS, derive_task

    ds = build_dataset(data, data_root, split, **({"image_size": image_size} if image_size else {}), **(audio or {}))
    images, targets = stack_dataset(ds, limit, seed)
    if task in TASKS:
        images, targets = derive_task(task, images, seed)
    elif data == "shapes" and task in SHAPE_TASKS:
        targets = ds.factors[task][subset_indices(len(ds), limit, seed)]
    elif task not in ("classification", "regression"):
        raise ValueError(
            f"unknown task '{task}'; choose classification, regression, a derived task {sorted(TASKS)}"
            + (f" or a shapes factor {list(SHAPE_TASKS)}" if data == "shapes" else "")
        )
    kind = "regression" if torch.is_floating_point(targets) else "classification"
    if task in ("classification", "regression") and kind != task:
        raise ValueError(f"dataset '{data}' has {kind} targets, not {task}")
    return images, targets, kind


def fewshot_command(
    encoder: str,
    data: str = "shapes",
    data_root: str | None = None,
    split: str = "test",
    task: str = "classification",
    plain_encoders: str = "",
    ways: int = _DEFAULTS.ways,
    shots: str = ",".join(map(str, _DEFAULTS.shots)),
    queries: int = _DEFAULTS.queries,
    episodes: int = _DEFAULTS.episodes,
    heads: str = ",".join(_DEFAULTS.heads),
    lams: str = ",".join(f"{v:g}" for v in _DEFAULTS.lams),
    steps: int = _DEFAULTS.search.steps,
    one_shot: str = _DEFAULTS.one_shot,
    lr_i: float = _DEFAULTS.search.lr_i,
    fractions: str = ",".join(f"{v:g}" for v in _DEFAULTS.fractions),
    repeats: int = _DEFAULTS.repeats,
    limit: int | None = None,
    out: str = "runs/fewshot",
    batch_size: int = _DEFAULTS.batch_size,
    image_size: int | None = None,
    clip_seconds: float | None = None,
    device: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Few-shot evaluation with a per-episode learned invariance (classification episodes or low-shot regression).

    Args:
        encoder: a run folder of amortinv pretrain, or an encoder .safetensors/.json.
        data: dataset name (see amortinv preview --help).
        data_root: local folder (or .npz file) of the dataset.
        split: split the episodes are drawn from (train or test).
        task: classification (episodes over the dataset's labels), regression (the dataset's own targets), a derived regression task (rotation, colour, crop_position) or a shapes factor.
        plain_encoders: comma-separated saved plain encoders evaluated on the same episodes.
        ways: classes per episode (N).
        shots: comma-separated support examples per class (K), e.g. 1,5.
        queries: query examples per class.
        episodes: episodes per shot setting (the paper uses 2000).
        heads: comma-separated heads for the fixed rows: ridge, prototype, logistic.
        lams: regularisation grid of the ridge head (chosen per episode on the support set) and of low-shot regression (leave-one-out).
        steps: descriptor steps per episode (0: keep the best candidate by the support objective).
        one_shot: 1-shot episodes: ones (keep the default descriptor: one example per class gives no support-only signal for i) or gcv (learn i by generalised cross-validation; measured harmful on the demo).
        lr_i: learning rate (Adam) of the per-episode descriptor.
        fractions: regression: comma-separated train fractions.
        repeats: regression: seeded train/test splits per fraction.
        limit: use a seeded random subset of this many images of the split as the pool (>= 1; default: the whole split).
        out: output folder (result.json, fewshot.png).
        batch_size: images per encoder pass.
        image_size: resize images to this side (default: their own; 96 for datasets of varying size).
        clip_seconds: audio: length of the centred windows in seconds (default 1); clips are resampled to the encoder's rate.
        device: cpu, cuda or auto.
        seed: seed of episodes, splits and subsets.
    """
    from amortinv.fewshot.evaluate import run_episodes, run_lowshot
    from amortinv.loading import audio_reading, load_encoder_and_space, load_plain_encoder
    from amortinv.results import check_output_folder

    settings = _settings(locals())
    check_output_folder(out)
    dev = settings.resolved_device()
    enc, space = load_encoder_and_space(encoder, data=data)
    if not enc.conditioned:
        raise ValueError(
            f"{encoder} is a plain encoder: give an invariance-conditioned one (pass plain ones with --plain-encoders)"
        )
    plain = {
        Path(p).stem if Path(p).suffix else Path(p).name: load_plain_encoder(p, data, "--plain-encoders").to(dev).eval()
        for p in plain_encoders.split(",")
        if p.strip()
    }
    images, targets, kind = load_pool(
        data, data_root, split, task, limit, seed, audio_reading(enc, clip_seconds), image_size
    )
    enc = enc.to(dev).eval()
    start = time.perf_counter()
    if kind == "classification":
        results = run_episodes(enc, space, images, targets, settings, plain)
    else:
        results = run_lowshot(enc, space, images, targets, settings.fractions, repeats, settings, plain)
    record = {
        "encoder": {"path": str(encoder), **enc.config},
        "plain_encoders": sorted(plain),
        "space": space.to_config(),
        "data": data,
        "split": split,
        "task": task,
        "kind": kind,
        "pool_size": len(images),
        "device": dev,
        "seed": seed,
        "settings": {
            **{k: v for k, v in vars(settings).items() if k in ("ways", "queries", "episodes", "one_shot", "repeats")},
            **{k: list(getattr(settings, k)) for k in ("shots", "heads", "fractions", "lams")},
            "steps": steps,
            "lr_i": lr_i,
        },
        "protocol": PROTOCOL,
        "results": results,
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    _write_report(record, Path(out))
    return record


PROTOCOL = (
    "per-episode i and ridge lam chosen on the support set only (leave-one-out for K >= 2, generalised "
    "cross-validation for 1-shot); queries used once for the reported accuracy; 95% CI = 1.96 std / sqrt(n)"
)


def _settings(flags: dict[str, Any]) -> FewShotSettings:
    """The protocol's settings from the command's flags."""
    from amortinv.checks import at_least
    from amortinv.fewshot.heads import HEADS

    head_list = tuple(h.strip() for h in flags["heads"].split(",") if h.strip())
    unknown = [h for h in head_list if h not in HEADS]
    if unknown or not head_list:
        raise ValueError(f"--heads: unknown heads {unknown}; choose from {sorted(HEADS)}")
    if flags["limit"] is not None:
        at_least("--limit", flags["limit"], 1)
    return FewShotSettings(
        ways=flags["ways"],
        shots=_numbers(flags["shots"], "shots", int),
        queries=flags["queries"],
        episodes=flags["episodes"],
        heads=head_list,
        lams=_numbers(flags["lams"], "lams", float),
        search=EpisodeSearch(steps=flags["steps"], lr_i=flags["lr_i"]),
        one_shot=flags["one_shot"],
        fractions=_numbers(flags["fractions"], "fractions", float),
        repeats=flags["repeats"],
        batch_size=flags["batch_size"],
        device=flags["device"],
        seed=flags["seed"],
    )


def _write_report(record: dict[str, Any], out: Path) -> None:
    """``result.json``, ``fewshot.png`` and the table of every shown row."""
    from amortinv.results import write_json
    from amortinv.viz.fewshot import fewshot_figure

    results, kind = record["results"], record["kind"]
    metric, unit = ("accuracy", "episodes") if kind == "classification" else ("r2", "splits")
    write_json(out / "result.json", record)
    fewshot_figure(results, metric, out / "fewshot.png", title=f"{record['data']} {record['task']}")
    for setting, rec in results.items():
        count = rec.get("episodes", record["settings"]["repeats"])
        print(f"== {setting} ({metric}, mean ± 95% CI over {count} {unit})")
        for row, v in shown_rows(rec[metric]):
            print(f"  {display_name(row):<58} {v['mean']:.3f} ± {v['ci95']:.3f}")
    print(f"wrote {out / 'result.json'}, {out / 'fewshot.png'}")
