"""``amortinv suite``: the paper's evaluation over many datasets and encoders, and its tables (Tables 1, 2 and 8).

A suite YAML (``amortinv suite --config suite.yaml``) names the encoders (label -> run folder; AI
encoders and plain baselines alike) and the datasets; per dataset it runs the protocols asked
for, with the code of ``transfer`` and ``fewshot``:

- ``transfer``: many-shot transfer of each encoder (an AI encoder with its learned ``i``, a plain
  one with its linear probe), scored on the test split (top-1 or R^2);
- ``fewshot``: N-way K-shot episodes on the test split (ridge head; an AI encoder with a
  per-episode ``i``), mean and 95% CI;
- ``lowshot``: regression with a fraction ``s`` of a pool for training, repeated over seeded splits.

Each dataset's result is written to ``datasets/<label>.json`` when it finishes and a re-run skips
the finished ones (a crash on the seventh keeps the first six); a dataset whose root is missing is
skipped with one line. ``table.md`` / ``table.csv`` hold the paper's layout (rows: encoders;
columns: dataset and protocol; average and average rank), ``result.json`` everything, and
``learned_i_<encoder>.png`` the learned ``i`` per dataset of each AI encoder (the paper's Figure 2).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

__all__ = ["suite_command", "suite_table", "average_ranks"]

PROTOCOLS = ("transfer", "fewshot", "lowshot")
DATASET_KEYS = {
    "name",
    "root",
    "task",
    "label",
    "protocols",
    "train_limit",
    "test_limit",
    "pool_limit",
    "image_size",
    "clip_seconds",
}


def _entry(raw: dict[str, Any]) -> dict[str, Any]:
    """A dataset entry with its defaults, checked (``ValueError`` naming the entry)."""
    if not isinstance(raw, dict) or "name" not in raw:
        raise ValueError(f"each suite dataset needs at least a 'name', got {raw!r}")
    unknown = sorted(set(raw) - DATASET_KEYS)
    if unknown:
        raise ValueError(f"suite dataset '{raw['name']}': unknown keys {unknown}; it takes {sorted(DATASET_KEYS)}")
    entry = {
        "task": "classification",
        "protocols": ["transfer"],
        "train_limit": None,
        "test_limit": None,
        "pool_limit": None,
        "image_size": None,
        "clip_seconds": None,
        "root": None,
        **raw,
    }
    entry.setdefault(
        "label", entry["name"] if entry["task"] == "classification" else f"{entry['name']}:{entry['task']}"
    )
    bad = [p for p in entry["protocols"] if p not in PROTOCOLS]
    if bad:
        raise ValueError(f"suite dataset '{entry['label']}': unknown protocols {bad}; choose from {list(PROTOCOLS)}")
    return entry


def average_ranks(table: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean over columns of each row's rank in that column (1 = best = highest score; ties share their mean rank)."""
    columns = sorted({c for row in table.values() for c in row})
    ranks: dict[str, list[float]] = {r: [] for r in table}
    for c in columns:
        scores = sorted(((table[r][c], r) for r in table if c in table[r]), reverse=True)
        for value in {s for s, _ in scores}:
            tied = [k + 1 for k, (s, _) in enumerate(scores) if s == value]
            for s, r in scores:
                if s == value:
                    ranks[r].append(sum(tied) / len(tied))
    return {r: sum(v) / len(v) for r, v in ranks.items() if v}


def _cell(mean: float, ci: float | None) -> str:
    return f"{mean:.3f}" + (f" ± {ci:.3f}" if ci is not None else "")


def suite_table(results: dict[str, dict], encoders: list[str]) -> tuple[str, list[list[Any]]]:
    """The Markdown table (rows: encoders; columns: dataset results; average; average rank) and its CSV rows."""
    cells: dict[str, dict[str, tuple[float, float | None]]] = {e: {} for e in encoders}
    for rec in results.values():
        for column, scores in rec.get("scores", {}).items():
            for enc, (mean, ci) in scores.items():
                cells[enc][column] = (mean, ci)
    columns = list(dict.fromkeys(c for rec in results.values() for c in rec.get("scores", {})))
    ranks = average_ranks({e: {c: v[0] for c, v in row.items()} for e, row in cells.items()})
    lines = ["| encoder | " + " | ".join(columns) + " | average | average rank |", "|" + " --- |" * (len(columns) + 3)]
    rows = [["encoder", "column", "score", "ci95"]]
    for enc in encoders:
        values = [cells[enc][c][0] for c in columns if c in cells[enc]]
        shown = [_cell(*cells[enc][c]) if c in cells[enc] else "-" for c in columns]
        average, rank = (f"{sum(values) / len(values):.3f}", f"{ranks[enc]:.2f}") if values else ("-", "-")
        lines.append(f"| {enc} | " + " | ".join(shown) + f" | {average} | {rank} |")
        rows += [[enc, c, cells[enc][c][0], cells[enc][c][1]] for c in columns if c in cells[enc]]
    return "\n".join(lines) + "\n", rows


def _transfer(
    entry: dict[str, Any], encoders: dict[str, Any], space_of: dict[str, Any], settings: Any
) -> tuple[dict, dict]:
    from amortinv.loading import audio_reading
    from amortinv.transfer.protocol import run_transfer
    from amortinv.transfer.settings import VAL_FRACTION
    from amortinv.transfer.tasks import build_tasks

    reading = audio_reading(next(iter(encoders.values())), entry["clip_seconds"])
    task = build_tasks(
        [entry["task"]],
        entry["name"],
        entry["root"],
        image_size=entry["image_size"],
        train_limit=entry["train_limit"],
        test_limit=entry["test_limit"],
        val_fraction=VAL_FRACTION,
        seed=settings.seed,
        audio=reading,
    )[0]
    scores, learned, records = {}, {}, {}
    for label, enc in encoders.items():
        rec = run_transfer(enc, task, space_of[label], ["ai_forward"] if enc.conditioned else ["probe"], settings)
        method = "ai_forward" if enc.conditioned else "probe[plain]"
        metric = "top1" if "top1" in rec[method]["test"] else "r2"
        scores[label] = (rec[method]["test"][metric], None)
        if enc.conditioned:
            learned[label] = rec[method]["i"]
        records[label] = rec
    return {entry["label"]: scores}, {"learned_i": learned, "transfer": records, "data": task.summary()}


def _episodes(
    entry: dict[str, Any], encoders: dict[str, Any], space_of: dict[str, Any], settings: Any, lowshot: bool
) -> tuple[dict, dict]:
    from amortinv.fewshot.command import load_pool
    from amortinv.fewshot.evaluate import run_episodes, run_lowshot
    from amortinv.loading import audio_reading

    ai = {k: e for k, e in encoders.items() if e.conditioned}
    plain = {k: e for k, e in encoders.items() if not e.conditioned}
    if not ai:
        raise ValueError(
            f"suite dataset '{entry['label']}': few-shot protocols need at least one AI (conditioned) encoder"
        )
    reading = audio_reading(next(iter(ai.values())), entry["clip_seconds"])
    images, targets, _ = load_pool(
        entry["name"], entry["root"], "test", entry["task"], entry["pool_limit"], settings.seed, reading
    )
    scores: dict[str, dict] = {}
    records = {}
    for k, (label, enc) in enumerate(ai.items()):
        with_plain = (
            plain if k == 0 else {}
        )  # the plain encoders' rows once, on the same episodes as the first AI encoder
        if lowshot:
            rec, metric = (
                run_lowshot(
                    enc, space_of[label], images, targets, settings.fractions, settings.repeats, settings, with_plain
                ),
                "r2",
            )
        else:
            rec, metric = run_episodes(enc, space_of[label], images, targets, settings, with_plain), "accuracy"
        records[label] = rec
        for setting, result in rec.items():
            column = f"{entry['label']} {'s=' + setting if lowshot else f'{settings.ways}-way {setting}'}"
            rows = result[metric]
            scores.setdefault(column, {})[label] = (rows["ai_learned"]["mean"], rows["ai_learned"]["ci95"])
            for name in with_plain:
                row = rows[f"plain:{name}" if lowshot else f"plain:{name}/ridge"]
                scores[column][name] = (row["mean"], row["ci95"])
    return scores, {"lowshot" if lowshot else "fewshot": records}


def _run_dataset(
    entry: dict[str, Any],
    encoders: dict[str, Any],
    space_of: dict[str, Any],
    settings: Any,
    riders: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The dataset's record: each protocol's scores for ``encoders`` (``riders`` only give their episodes to plain
    encoders: they take no part in many-shot transfer)."""
    from amortinv.fewshot.settings import FewShotSettings
    from amortinv.transfer.settings import SearchSettings, TransferSettings

    record: dict[str, Any] = {"entry": entry, "scores": {}}
    for protocol in entry["protocols"]:
        if protocol == "transfer":
            transfer_settings = TransferSettings(
                search=SearchSettings(steps=settings["i_steps"]), device=settings["device"], seed=settings["seed"]
            )
            transferred = {label: enc for label, enc in encoders.items() if label not in riders}
            if not transferred:
                continue
            scores, extra = _transfer(entry, transferred, space_of, transfer_settings)
        else:
            shots_settings = FewShotSettings(
                ways=settings["ways"],
                shots=settings["shots"],
                queries=settings["queries"],
                episodes=settings["episodes"],
                heads=("ridge",),
                fractions=settings["fractions"],
                repeats=settings["repeats"],
                device=settings["device"],
                seed=settings["seed"],
            )
            scores, extra = _episodes(entry, encoders, space_of, shots_settings, lowshot=protocol == "lowshot")
        record["scores"].update(scores)
        record.update(extra)
    return record


def _write_tables(out: Path, results: dict[str, dict], labels: list[str]) -> None:
    from amortinv.results import write_json
    from amortinv.viz.transfer import learned_i_chart

    table, rows = suite_table(results, labels)
    (out / "table.md").write_text(table)
    with open(out / "table.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    for label in labels:
        learned = {name: rec["learned_i"][label] for name, rec in results.items() if label in rec.get("learned_i", {})}
        if learned:
            learned_i_chart(
                learned,
                out / f"learned_i_{label}.png",
                title=f"Learned invariance per dataset ({label}; 1 = invariant)",
            )
    write_json(out / "result.json", {"datasets": results, "table_markdown": table})


def _missing_encoders(
    earlier: dict | None, usable: list[str], models: dict[str, Any]
) -> tuple[list[str], tuple[str, ...]]:
    """(the usable encoders a dataset still needs, riders): all of them without an earlier record. When only plain
    ones are missing and the dataset has episode protocols, an AI encoder rides along (plain rows share its episodes)."""
    if earlier is None:
        return usable, ()
    present = {enc for scores in earlier.get("scores", {}).values() for enc in scores}
    todo = [label for label in usable if label not in present]
    episodes = any(p in ("fewshot", "lowshot") for p in earlier["entry"]["protocols"])
    if todo and episodes and not any(models[label].conditioned for label in todo):
        rider = next((label for label in usable if models[label].conditioned), None)
        return ([rider, *todo], (rider,)) if rider else (todo, ())
    return todo, ()


def _skip_reason(entry: dict[str, Any], earlier: dict | None, todo: list[str], usable: list[str]) -> str | None:
    """Why a dataset is not run now (one line), or None."""
    from amortinv.data import dataset_modality

    if earlier is not None and not todo:
        return "finished in an earlier run, skipped"
    if entry["root"] is not None and not Path(entry["root"]).expanduser().exists():
        return f"data root {entry['root']} not found, skipped"
    if not usable:
        return f"no encoder of the suite takes {dataset_modality(entry['name'])} data, skipped"
    return None


def _plan_line(
    entry: dict[str, Any], resumed: bool, todo: list[str], riders: tuple[str, ...], durations: list[float], left: int
) -> str:
    """What a dataset's run does: its protocols, the encoders it adds to an earlier run, the time left."""
    eta = f"; about {sum(durations) / len(durations) * left / 60:.1f} min left" if durations else ""
    new = ", ".join(label for label in todo if label not in riders)
    rides = f"; {riders[0]} again for the shared episodes" if riders else ""
    also = f" (only {new}{rides}: the others finished in an earlier run)" if resumed else ""
    return f"{', '.join(entry['protocols'])}{also}{eta}"


def _merged(earlier: dict | None, record: dict, seconds: float) -> dict:
    """A dataset's record with the scores (and records) of an earlier run kept where this run did not redo them."""
    record["wall_time_s"] = seconds + (earlier or {}).get("wall_time_s", 0.0)
    if earlier is None:
        return record
    for column, scores in earlier.get("scores", {}).items():
        record["scores"][column] = {**scores, **record["scores"].get(column, {})}
    for key in ("learned_i", "transfer", "fewshot", "lowshot"):
        if key in earlier:
            record[key] = {**earlier[key], **record.get(key, {})}
    return record


def _load_encoders(paths: dict[str, str], device: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The suite's encoders (label -> eval-mode encoder on ``device``) and their spaces; an encoder whose file is
    missing is left out with one line, and none left is an error."""
    from amortinv.encoders.io import encoder_paths
    from amortinv.loading import load_encoder_and_space

    found = {}
    for label, path in paths.items():
        if encoder_paths(path)[1].is_file():
            found[label] = path
        else:
            print(f"encoder {label}: no encoder at {path}, left out of the suite")
    if not found:
        raise ValueError("none of the suite's encoders exists")
    loaded = {label: load_encoder_and_space(path) for label, path in found.items()}
    return {label: enc.to(device).eval() for label, (enc, _) in loaded.items()}, {
        label: space for label, (_, space) in loaded.items()
    }


def suite_command(
    encoders: dict[str, str],
    datasets: list[dict[str, Any]],
    out: str = "runs/suite",
    ways: int = 5,
    shots: str = "1,5",
    queries: int = 15,
    episodes: int = 2000,
    fractions: str = "0.05,0.2",
    repeats: int = 100,
    i_steps: int = 30,
    device: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Run the paper's protocols over many datasets and encoders and write its tables (give them in a YAML: --config suite.yaml).

    Args:
        encoders: label -> run folder (or encoder file), e.g. {AI-SimCLR: runs/ai, SimCLR: runs/simclr}; each dataset is run
            with the encoders of its modality (image encoders on image data, audio encoders on audio data).
        datasets: entries {name, root, task, protocols: [transfer, fewshot, lowshot], label, train_limit, test_limit,
            pool_limit, image_size, clip_seconds}; a missing root skips the entry with one line.
        out: output folder (table.md, table.csv, result.json, learned_i_<encoder>.png, datasets/<label>.json).
        ways: classes per few-shot episode.
        shots: comma-separated support examples per class.
        queries: query examples per class.
        episodes: episodes per shot setting (the paper: 2000).
        fractions: low-shot regression: comma-separated train fractions s (the paper: 0.05 and 0.2).
        repeats: low-shot regression: seeded splits per fraction (the paper: 100).
        i_steps: descriptor steps of the many-shot search.
        device: cpu, cuda or auto.
        seed: seed of subsets, splits and episodes.
    """
    from amortinv.data import dataset_modality
    from amortinv.devices import resolve_device
    from amortinv.results import check_output_folder

    entries = [_entry(raw) for raw in datasets]
    if not encoders or not entries:
        raise ValueError("a suite needs encoders (label: run folder) and datasets")
    settings = {
        "ways": ways,
        "shots": tuple(int(v) for v in shots.split(",")),
        "queries": queries,
        "episodes": episodes,
        "fractions": tuple(float(v) for v in fractions.split(",")),
        "repeats": repeats,
        "i_steps": i_steps,
        "device": resolve_device(device),
        "seed": seed,
    }
    check_output_folder(out)
    models, space_of = _load_encoders(encoders, settings["device"])
    encoders = {label: path for label, path in encoders.items() if label in models}
    folder = Path(out)
    (folder / "datasets").mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    durations: list[float] = []
    for k, entry in enumerate(entries, 1):
        where = f"[{k}/{len(entries)}] {entry['label']}"
        done = folder / "datasets" / f"{entry['label'].replace('/', '_')}.json"
        earlier = json.loads(done.read_text()) if done.is_file() else None
        usable = [label for label in encoders if models[label].modality == dataset_modality(entry["name"])]
        todo, riders = _missing_encoders(earlier, usable, models)
        skip = _skip_reason(entry, earlier, todo, usable)
        if skip:
            if earlier is not None:
                results[entry["label"]] = earlier  # kept in the table whatever is missing now
            print(f"{where}: {skip}")
            continue
        left = len(entries) - k + 1
        print(f"{where}: {_plan_line(entry, earlier is not None, todo, riders, durations, left)}", flush=True)
        start = time.perf_counter()
        record = _run_dataset(entry, {label: models[label] for label in todo}, space_of, settings, riders)
        durations.append(time.perf_counter() - start)
        record = _merged(earlier, record, round(durations[-1], 1))
        results[entry["label"]] = record
        done.write_text(json.dumps(record, indent=2) + "\n")
        _write_tables(folder, results, list(encoders))
    if not results:
        raise ValueError("no dataset of the suite could be run (every root is missing)")
    _write_tables(folder, results, list(encoders))
    print("\n" + (folder / "table.md").read_text())
    return {"datasets": results}
