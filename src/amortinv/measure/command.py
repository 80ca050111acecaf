"""``amortinv measure`` and ``amortinv bound``: invariance tables and plots, and generalisation bounds."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from amortinv.devices import resolve_device
from amortinv.loading import audio_reading, load_encoder_and_space, load_plain_encoder

__all__ = ["measure_command", "bound_command"]


def _write_csv(table: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "transform", "cosine", "cosine_se", "mahalanobis", "mahalanobis_se"])
        for label, res in table["results"].items():
            for name, r in res["transforms"].items():
                writer.writerow([label, name, r["cosine"], r["cosine_se"], r["mahalanobis"], r["mahalanobis_se"]])


def invariance_table(table: dict[str, Any]) -> str:
    """The mean cosine similarity (1 = invariant) per transform (rows) and model or descriptor (columns), as text."""
    labels = list(table["results"])
    transforms = list(next(iter(table["results"].values()))["transforms"])
    width = max(12, *(len(label) for label in labels))
    lines = [
        "invariance: mean cosine similarity between clean and transformed features (1 = invariant)",
        f"{'transform':<12} " + " ".join(f"{label:>{width}}" for label in labels),
    ]
    for name in transforms:
        lines.append(
            f"{name:<12} "
            + " ".join(f"{table['results'][label]['transforms'][name]['cosine']:>{width}.3f}" for label in labels)
        )
    return "\n".join(lines)


def measure_command(
    encoder: str,
    data: str = "shapes",
    data_root: str | None = None,
    split: str = "test",
    descriptors: str | None = None,
    transforms: str = "all",
    baseline: str | None = None,
    out: str = "runs/measure",
    num_images: int = 500,
    reference_images: int = 1000,
    include_identity: bool = False,
    interpolate: str | None = None,
    interpolate_transforms: str = "hflip,rotation,grayscale,hue",
    steps: int = 11,
    grid_transform: str | None = None,
    space: str | None = None,
    device: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Measure an encoder's invariance to image transforms at several descriptors (BMVC 2022 protocol).

    Args:
        encoder: a run folder of amortinv pretrain, or an encoder .safetensors/.json.
        data: dataset name (see amortinv preview --help).
        data_root: local folder (or .npz file) of the dataset.
        split: dataset split to draw the images from.
        descriptors: descriptors to measure, e.g. "1,0;0,1;1,1" (default: the space's training descriptors).
        transforms: all, spatial, appearance (audio: all, frequency, temporal), or a comma-separated list.
        baseline: a plain encoder to measure on the same axes.
        out: output folder (invariance.json, invariance.csv, radar.png, path/grid plots).
        num_images: images transformed (a seeded random subset).
        reference_images: other images for the feature mean and covariance (Mahalanobis).
        include_identity: include the identity parameter in the averages.
        interpolate: a descriptor path "start->end", e.g. "1,0->0,1", measured in `steps` steps.
        interpolate_transforms: transforms measured along the path.
        steps: points on the interpolation path.
        grid_transform: a transform measured over a 2-D grid of descriptors (K = 2 only).
        space: invariance space (default: the one saved with the encoder).
        device: cpu, cuda or auto.
        seed: seed of the image subsets.
    """
    import torch

    from amortinv.data import build_dataset, dataset_modality
    from amortinv.measure.transforms import resolve_transforms
    from amortinv.results import check_output_folder
    from amortinv.spaces import parse_descriptors
    from amortinv.transfer.data import stack_dataset
    from amortinv.viz.measure import radar_plot

    if num_images < 1 or reference_images < 2 or steps < 2:
        raise ValueError(
            f"--num-images must be >= 1, --reference-images >= 2 and --steps >= 2, got {num_images}, {reference_images}, {steps}"
        )
    check_output_folder(out)
    dev = torch.device(resolve_device(device))
    enc, inv_space = load_encoder_and_space(encoder, space, data=data)
    plain = load_plain_encoder(baseline, data, "--baseline").to(dev).eval() if baseline else None
    modality = dataset_modality(data)
    enc = enc.to(dev).eval()
    names = resolve_transforms(transforms, modality)
    _check_extras(enc, inv_space, modality, interpolate, interpolate_transforms, grid_transform)
    ds = None
    if enc.conditioned:
        ds = parse_descriptors(descriptors, inv_space) if descriptors else inv_space.training_descriptors()
    images, _ = stack_dataset(
        build_dataset(data, data_root, split, **audio_reading(enc, None)), num_images + reference_images, seed
    )
    if len(images) < num_images + 2:
        raise ValueError(f"the {split} split has {len(images)} images; need more than num_images={num_images}")
    x, ref = images[:num_images], images[num_images:]
    table = _measure_rows(enc, plain, inv_space, ds, x, ref, names, include_identity)
    table.update({"encoder": str(encoder), "data": data, "split": split, "transforms": list(names)})
    out_dir = Path(out)
    radar = {label: {t: r["cosine"] for t, r in res["transforms"].items()} for label, res in table["results"].items()}
    written = [radar_plot(radar, out_dir / "radar.png", title=f"Invariance to transforms ({data}, cosine similarity)")]
    if interpolate:
        written.append(_interpolation(table, enc, inv_space, x, interpolate, interpolate_transforms, steps, out_dir))
    if grid_transform:
        written.append(_grid(table, enc, inv_space, x, grid_transform, out_dir))
    _write_report(table, out_dir, written)
    return table


def _check_extras(
    enc: Any, inv_space: Any, modality: str, interpolate: str | None, interpolate_transforms: str, grid: str | None
) -> None:
    """Every option of the path and the grid, checked before the measurement starts (nothing half-written)."""
    from amortinv.measure.transforms import resolve_transforms
    from amortinv.spaces import parse_descriptors

    if interpolate and ("->" not in interpolate or interpolate.count("->") != 1 or not enc.conditioned):
        raise ValueError(
            "--interpolate takes one 'start->end' pair of descriptors, e.g. '1,0->0,1', and a conditioned encoder"
        )
    if interpolate:
        [parse_descriptors(p, inv_space) for p in interpolate.split("->")]
        resolve_transforms(interpolate_transforms, modality)
    if grid:
        resolve_transforms(grid, modality)
        if not enc.conditioned or inv_space.dim != 2:
            raise ValueError("--grid-transform needs a conditioned encoder with K = 2 factors")


def _measure_rows(
    enc: Any, plain: Any, inv_space: Any, ds: Any, x: Any, ref: Any, names: Any, include_identity: bool
) -> dict[str, Any]:
    """The invariance table: a row per descriptor of a conditioned encoder (or one row for a plain one), and the
    baseline's row."""
    from amortinv.measure.invariance import measure_invariance

    common = {"include_identity": include_identity, "progress": True}
    if ds is not None:
        labels = [inv_space.label(d) for d in ds]
        table = measure_invariance(enc, x, list(ds), names, ref, labels=labels, **common)
    else:
        table = measure_invariance(enc, x, [None], names, ref, labels=[f"plain {enc.config['name']}"], **common)
    if plain is not None:
        extra = measure_invariance(plain, x, [None], names, ref, labels=[f"baseline {plain.config['name']}"], **common)
        table["results"].update(extra["results"])
        table["notes"] += extra["notes"]
    return table


def _interpolation(
    table: dict, enc: Any, inv_space: Any, x: Any, interpolate: str, transforms: str, steps: int, out: Path
) -> Path:
    """Invariance along the straight path between two descriptors, into ``table`` and ``interpolation.png``."""
    from amortinv.data import dataset_modality
    from amortinv.measure.invariance import invariance_path
    from amortinv.measure.transforms import resolve_transforms
    from amortinv.spaces import parse_descriptors
    from amortinv.viz.measure import path_plot

    modality = dataset_modality(table["data"])
    start, end = (parse_descriptors(p, inv_space)[0] for p in interpolate.split("->"))
    paths = {t: invariance_path(enc, x, t, start, end, steps) for t in resolve_transforms(transforms, modality)}
    table["interpolation"] = {"start": start.tolist(), "end": end.tolist(), "paths": paths}
    return path_plot(paths, out / "interpolation.png", inv_space.label(start), inv_space.label(end))


def _grid(table: dict, enc: Any, inv_space: Any, x: Any, grid_transform: str, out: Path) -> Path:
    """Invariance to one transform over a 6 x 6 grid of the two factors, into ``table`` and ``grid.png``."""
    from amortinv.data import dataset_modality
    from amortinv.measure.invariance import invariance_grid
    from amortinv.measure.transforms import resolve_transforms
    from amortinv.viz.measure import grid_plot

    transform = resolve_transforms(grid_transform, dataset_modality(table["data"]))[0]
    grid = invariance_grid(enc, x, transform, steps=6)
    table["grid"] = {"transform": grid_transform, "values": grid.tolist()}
    return grid_plot(grid, out / "grid.png", tuple(inv_space.factors), grid_transform)


def _write_report(table: dict, out: Path, written: list[Path]) -> None:
    """Print the table and its notes; write ``invariance.json`` and ``invariance.csv``."""
    from amortinv.results import write_json

    print(invariance_table(table))
    for note in table["notes"]:
        print(f"note: {note}")
    _write_csv(table, out / "invariance.csv")
    written[:0] = [write_json(out / "invariance.json", table), out / "invariance.csv"]
    print("files written: " + ", ".join(str(p) for p in written))


def bound_command(
    empirical: float | None = None,
    n: int | None = None,
    classes: int = 10,
    x_norm: float | None = None,
    b_norm: float | None = None,
    k: int = 2,
    bits: int = 1,
    loss_max: float = 1.0,
    delta: float = 0.05,
    encoder: str | None = None,
    data: str = "shapes",
    data_root: str | None = None,
    descriptor: str | None = None,
    train_limit: int | None = 5000,
    out: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Theorem 5.1's generalisation bound and the linear-readout bound, from numbers or for a trained head.

    Args:
        empirical: training loss in [0, loss_max] (numbers mode).
        n: number of training examples (numbers mode).
        classes: number of classes c.
        x_norm: bound X on the feature norm (numbers mode).
        b_norm: bound B on the head's norm (numbers mode).
        k: descriptor length K.
        bits: quantisation bits b: |I| = 2^(b K).
        loss_max: M, the loss's upper bound.
        delta: confidence 1 - delta.
        encoder: with an encoder, fit a probe at the quantised descriptor and read n, X, B and the 0-1 training error.
        data: dataset of the classification task (encoder mode).
        data_root: local folder of the dataset.
        descriptor: the learned descriptor, e.g. "0.3,0.9" (quantised with `bits`).
        train_limit: training images used (a seeded subset).
        out: write the result as JSON: a .json file, or a folder (its bound.json).
        seed: seed of the subset and the probe.
    """
    from amortinv.results import check_output_folder, write_json

    if empirical is not None and not 0 <= empirical <= loss_max:
        raise ValueError(f"--empirical must be a loss in [0, M = {loss_max}], got {empirical}")
    if out:
        check_output_folder(Path(out).parent if Path(out).suffix == ".json" else out)
    if encoder is None:
        result = _bound_from_numbers(empirical, n, classes, x_norm, b_norm, k, bits, loss_max, delta)
    else:
        result = _bound_for_encoder(encoder, data, data_root, descriptor, train_limit, bits, loss_max, delta, seed)
    _print_bound(result)
    if out:
        write_json(Path(out) if Path(out).suffix == ".json" else Path(out) / "bound.json", result)
    return result


def _bound_from_numbers(
    empirical: float | None,
    n: int | None,
    classes: int,
    x_norm: float | None,
    b_norm: float | None,
    k: int,
    bits: int,
    loss_max: float,
    delta: float,
) -> dict[str, Any]:
    """Both bounds from the numbers given (each of empirical, n, x_norm, b_norm required)."""
    from amortinv.theory import both_bounds

    given = {"empirical": empirical, "n": n, "x_norm": x_norm, "b_norm": b_norm}
    missing = [name for name, v in given.items() if v is None]
    if missing:
        raise ValueError(f"give --encoder, or all of {missing} for the numbers mode")
    return both_bounds(empirical, n, classes, x_norm, b_norm, k, bits, loss_max, delta)


def _bound_for_encoder(
    encoder: str,
    data: str,
    data_root: str | None,
    descriptor: str | None,
    train_limit: int | None,
    bits: int,
    loss_max: float,
    delta: float,
    seed: int,
) -> dict[str, Any]:
    """Both bounds for a probe fitted on ``encoder``'s features at the quantised descriptor: n, X, B and the 0-1
    training error read from the fitted head."""
    from amortinv.data import build_dataset
    from amortinv.features import frozen_features
    from amortinv.spaces import parse_descriptors, quantise
    from amortinv.theory import bounds_for_run
    from amortinv.transfer.data import make_task, stack_dataset
    from amortinv.transfer.probe import fit_probe

    enc, inv_space = load_encoder_and_space(encoder)
    i = quantise(parse_descriptors(descriptor, inv_space)[0], bits) if enc.conditioned and descriptor else None
    if enc.conditioned and i is None:
        raise ValueError("a conditioned encoder needs --descriptor (the learned i)")
    train = stack_dataset(build_dataset(data, data_root, "train"), train_limit, seed)
    task = make_task(data, "classification", train, train, seed=seed)
    size = tuple(train[0].shape[-2:])
    feats = frozen_features(enc, task.train[0], i, size=size)
    head = fit_probe(feats, frozen_features(enc, task.val[0], i, size=size), task).head
    err = float((head(feats).argmax(1) != task.train[1]).float().mean())
    standardised = (feats.double() - head.mean) / head.std  # the features the linear layer sees
    result = bounds_for_run(
        standardised, head.weight.T, err, task.num_classes, enc.invariance_dim or 1, bits, loss_max, delta
    )
    result["descriptor"] = None if i is None else i.tolist()
    return result


def _print_bound(result: dict[str, Any]) -> None:
    """The bound's inputs, both bounds, and a note when the amortised bound is vacuous (above M)."""
    am, lin = result["amortised"], result["linear_readout"]
    used = f", descriptor {result['descriptor']}" if result.get("descriptor") is not None else ""
    print(
        f"inputs: empirical error {am['empirical']:.4f}, n {result['n']}, c {result['c']}, X {result['X']:.4g}, B {result['B']:.4g}, "
        f"M {result['M']}, delta {result['delta']}, |I| {result['num_descriptors']}{used}"
    )
    print(f"amortised invariance bound: {am['bound']:.4f} | linear readout bound: {lin['bound']:.4f}")
    if am["bound"] > result["M"]:
        print(
            f"note: a bound above M = {result['M']} is vacuous for a loss bounded by M (more examples n or smaller X * B tighten it)"
        )
