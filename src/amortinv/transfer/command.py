"""``amortinv transfer``: load an encoder, build the tasks, run the protocol, write result.json and the chart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from amortinv.transfer.settings import VAL_FRACTION, SearchSettings, TransferSettings

# Heavy modules (torch, the encoders) are imported inside the functions, so that `amortinv --help` stays fast; the
# annotation Encoder names its type as a string (not in an `if TYPE_CHECKING:` block: jsonargparse imports those to
# resolve a command's types, and --help would import torch; pyproject.toml tells ruff so).

__all__ = ["check_limits", "summary_table", "transfer_command"]

_DEFAULTS, _SEARCH = TransferSettings(), SearchSettings()


def summary_table(task: str, methods: dict[str, dict]) -> str:
    """A plain-text table of one task's results: method, test metric, validation score, learned i, time."""
    metric = "top1" if "top1" in next(iter(methods.values()))["test"] else "r2"
    rows = [("method", f"test {metric} (the result)", "val (selection)", "learned i (1 = invariant)", "time s")]
    for name, rec in methods.items():
        learned = ", ".join(f"{f} {v:.2f}" for f, v in rec["i"].items()) if "i" in rec else ""
        learned += " (kept its start)" if rec.get("selected_step") == 0 else ""
        rows.append((name, f"{rec['test'][metric]:.4f}", f"{rec['val_score']:.4f}", learned, f"{rec['time_s']:.1f}"))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join([f"== {task}", lines[0], "-" * len(lines[0]), *lines[1:]])


def _floats(text: str, name: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"--{name} takes comma-separated numbers, got '{text}'") from None


def check_limits(**limits: float | None) -> None:
    """Subset sizes (``*_limit``: None for all, else >= 1) and ``val_fraction`` in (0, 1), named as options."""
    from amortinv.checks import at_least, finite

    for name, value in limits.items():
        if name == "val_fraction":
            finite("--val-fraction", value, above=0.0, below=1.0)
        elif value is not None:
            at_least("--" + name.replace("_", "-"), value, 1)


def transfer_command(
    encoder: str,
    data: str = "shapes",
    data_root: str | None = None,
    task: str = "classification",
    out: str = "runs/transfer",
    methods: str | None = None,
    baselines: str = "probe",
    space: str | None = None,
    plain_encoders: str = "",
    lams: str = ",".join(f"{v:g}" for v in _DEFAULTS.lams),
    init: str = _DEFAULTS.init,
    recalibrate_bn: bool = _DEFAULTS.recalibrate_bn,
    i_steps: int = _SEARCH.steps,
    lr_i: float = _SEARCH.lr_i,
    i_batch_size: int = _SEARCH.batch_size,
    eval_every: int = _SEARCH.eval_every,
    finetune_stages: str = "1,all",
    finetune_budget: str | None = None,
    lrs: str = ",".join(f"{v:g}" for v in _DEFAULTS.lrs),
    weight_decays: str = ",".join(f"{v:g}" for v in _DEFAULTS.weight_decays),
    epochs: int = _DEFAULTS.epochs,
    batch_size: int = _DEFAULTS.batch_size,
    loss: str = _DEFAULTS.loss,
    train_limit: int | None = None,
    test_limit: int | None = None,
    val_fraction: float = VAL_FRACTION,
    image_size: int | None = None,
    clip_seconds: float | None = None,
    device: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Learn each task's invariance (and run baselines) on a frozen pre-trained encoder.

    Args:
        encoder: a run folder of amortinv pretrain, or an encoder .safetensors/.json.
        data: dataset name (see amortinv preview --help).
        data_root: local folder (or .npz file) of the dataset.
        task: comma-separated tasks: classification / regression (the dataset's own targets), derived rotation, flip, colour, crop_position, or for the built-in shapes data its factors shape, orientation, position, colour.
        out: output folder (result.json, learned_i.png).
        methods: comma-separated invariance learners: ai (backprop gradient), ai_forward (forward-mode gradient, less memory);
            "" for none (default: ai_forward for a conditioned encoder, none for a plain one).
        baselines: comma-separated: probe (fixed-i and plain linear probes), fusion, finetune.
        space: invariance space (default: the one saved with the encoder).
        plain_encoders: comma-separated saved plain encoders to probe (and fuse) as baselines.
        lams: regularisation grid of the convex linear probes (chosen on the validation split) and of the descriptor search's ridge objective (leave-one-out).
        init: start of the descriptor search: best (the best training descriptor or all ones, by validation) or a number in [0, 1] for every factor.
        recalibrate_bn: recompute every encoder's BatchNorm statistics at each descriptor on the task's training images (labels unused).
        i_steps: gradient steps on the descriptor.
        lr_i: learning rate (Adam) of the descriptor.
        i_batch_size: training images per descriptor step (the ridge leave-one-out objective's minibatch).
        eval_every: fit a probe along the descriptor's path every this many steps (selection on validation).
        finetune_stages: stages to fine-tune for the finetune baseline: numbers 1-4 and/or all.
        finetune_budget: "ai" limits fine-tuning to the invariance learner's wall time.
        lrs: fine-tuning learning rates searched on the validation split.
        weight_decays: fine-tuning weight decays searched on the validation split.
        epochs: fine-tuning epochs.
        batch_size: batch size of feature extraction and fine-tuning.
        loss: fine-tuning regression loss: mse or l1 (on standardised targets); probes solve ridge (mse).
        train_limit: use a seeded random subset of this many training images.
        test_limit: use a seeded random subset of this many test images.
        val_fraction: fraction of the training data held out for selection.
        image_size: resize images to this side (default: their own).
        clip_seconds: audio: length of the centred windows in seconds (default 1); clips are resampled to the encoder's rate.
        device: cpu, cuda or auto.
        seed: seed of splits, subsets, derived tasks and training.
    """
    from amortinv.loading import audio_reading, load_encoder_and_space, load_plain_encoder
    from amortinv.results import check_output_folder
    from amortinv.transfer.protocol import run_transfer
    from amortinv.transfer.tasks import build_tasks

    check_limits(train_limit=train_limit, test_limit=test_limit, val_fraction=val_fraction)
    settings = _settings(locals())
    device = settings.resolved_device()  # a GPU asked for and missing is refused before anything loads
    check_output_folder(out)
    enc, inv_space = load_encoder_and_space(encoder, space, data=data)
    plain = {
        Path(p).stem if Path(p).suffix else Path(p).name: load_plain_encoder(p, data, "--plain-encoders")
        for p in plain_encoders.split(",")
        if p.strip()
    }
    run = _learners(enc, encoder, methods) + [m.strip() for m in baselines.split(",") if m.strip()]
    tasks = build_tasks(
        [t.strip() for t in task.split(",") if t.strip()],
        data,
        data_root,
        image_size=image_size,
        train_limit=train_limit,
        test_limit=test_limit,
        val_fraction=val_fraction,
        seed=seed,
        audio=audio_reading(enc, clip_seconds),
    )
    start = time.perf_counter()
    result: dict[str, Any] = {
        "encoder": {"path": str(encoder), **enc.config},
        "space": inv_space.to_config() if inv_space else None,
        "data": data,
        "device": device,
        "settings": {**vars(settings), "search": vars(settings.search)},
        "selection": SELECTION,
        "tasks": {},
    }
    for t in tasks:
        methods_out = run_transfer(enc, t, inv_space, run, settings, plain_encoders=plain)
        result["tasks"][t.name] = {"data": t.summary(), "methods": methods_out}
        print(summary_table(t.name, methods_out))
    result["wall_time_s"] = round(time.perf_counter() - start, 1)
    _write_report(result, Path(out), enc.config["name"])
    return result


SELECTION = (
    "probes: regularisation chosen on a validation split carved from train; learned i: started at the best candidate "
    "descriptor, descended the ridge leave-one-out error on train, point of the path chosen on validation; "
    "fine-tuning: lr, weight decay and epoch chosen on validation; the selected model is kept (no refit); test used once"
)


def _settings(flags: dict[str, Any]) -> TransferSettings:
    """The protocol's settings from the command's flags (each checked where the settings are defined)."""
    stages_text = flags["finetune_stages"]
    try:
        stages = tuple(0 if s.strip() == "all" else int(s) for s in stages_text.split(",") if s.strip())
    except ValueError:
        raise ValueError(
            f"--finetune-stages takes stage numbers and/or 'all', e.g. '1,all', got '{stages_text}'"
        ) from None
    search = SearchSettings(
        steps=flags["i_steps"], lr_i=flags["lr_i"], batch_size=flags["i_batch_size"], eval_every=flags["eval_every"]
    )
    return TransferSettings(
        lams=_floats(flags["lams"], "lams"),
        search=search,
        init=flags["init"],
        recalibrate_bn=flags["recalibrate_bn"],
        lrs=_floats(flags["lrs"], "lrs"),
        weight_decays=_floats(flags["weight_decays"], "weight-decays"),
        epochs=flags["epochs"],
        batch_size=flags["batch_size"],
        loss=flags["loss"],
        finetune_stages=stages,
        finetune_budget=flags["finetune_budget"],
        device=flags["device"],
        seed=flags["seed"],
    )


def _learners(enc: Encoder, path: str, methods: str | None) -> list[str]:
    """The invariance learners to run: ``methods``, or by default ai_forward for a conditioned encoder and none for a
    plain one (a plain encoder asked for one is refused)."""
    default = "ai_forward" if enc.conditioned else ""
    learners = [m.strip() for m in (default if methods is None else methods).split(",") if m.strip()]
    if learners and not enc.conditioned:
        raise ValueError(
            f"--methods {','.join(learners)}: {path} is a plain encoder (no descriptor to learn); "
            "use --methods '' for its probe, or a conditioned encoder"
        )
    return learners


def _write_report(result: dict[str, Any], out: Path, encoder_name: str) -> None:
    """``result.json`` and, when any task learned ``i``, ``learned_i.png``; prints what it wrote."""
    from amortinv.results import write_json
    from amortinv.viz.transfer import learned_i_chart

    learned = {}
    for name, rec in result["tasks"].items():
        found = next((rec["methods"][m]["i"] for m in ("ai", "ai_forward") if m in rec["methods"]), None)
        if found is not None:
            learned[name] = found
    written = []
    if learned:
        result["learned_i"] = learned
        title = f"Learned invariance per task ({encoder_name})"
        written.append(learned_i_chart(learned, out / "learned_i.png", title=title))
    written.insert(0, write_json(out / "result.json", result))
    print("files written: " + ", ".join(str(p) for p in written))
