"""The ``amortinv`` command line: subcommands with ``--help``, YAML configs and flag overrides.

Every subcommand takes ``--config cfg.yaml`` (keys are the option names) and flags that
override it. Option names accept dashes or underscores (``--data-root`` = ``--data_root``).
Errors in the user's input end with a one-line ``amortinv: error: ...`` and exit code 2; set
``AMORTINV_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from jsonargparse import ActionConfigFile, ArgumentParser

__all__ = ["main", "build_parser"]


def preview(
    space: str | None = None,
    data: str = "shapes",
    data_root: str | None = None,
    split: str = "train",
    out: str = "preview.png",
    num_images: int = 6,
    image_size: int | None = None,
    recipe: str = "simclr",
    seed: int = 0,
    download: bool = False,
    clip_seconds: float | None = None,
    wavs: bool = False,
) -> str:
    """Write a PNG grid showing the two views each training descriptor makes of a few images (or log-mel spectrograms of a few clips).

    Args:
        space: invariance space: groups2, individual5, audio7, or a YAML file defining one (default: groups2 for images, audio7 for audio).
        data: dataset name (shapes (built in), cifar10, cifar100, stl10, flowers102, dtd, pets, caltech101, imagefolder, npz;
            the paper's: 300w, lsp, celeba_landmarks (landmark regression), cub200, fc100, plant_disease;
            audio: fsdd, fsdd_speaker, audiofolder, audionpz).
        data_root: local folder (or .npz file) holding the dataset.
        split: dataset split to draw images from.
        out: path of the PNG to write.
        num_images: how many images to show.
        image_size: output side of the views (default: the images' own size).
        recipe: augmentation recipe: simclr, moco or reference.
        seed: random seed (image choice and augmentations).
        download: let torchvision download the dataset (needs internet).
        clip_seconds: audio: window length in seconds (default 1).
        wavs: audio: also write every view as a WAV file (in a folder named after the PNG).
    """
    import torch

    from amortinv.data import build_dataset, dataset_modality
    from amortinv.modality import MODALITIES
    from amortinv.spaces import load_space

    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    from amortinv.results import check_output_folder

    check_output_folder(Path(out).parent)
    torch.manual_seed(seed)
    modality = MODALITIES[dataset_modality(data)]
    inv_space = load_space(space or modality.default_space)
    ds = build_dataset(data, data_root, split, image_size=image_size, download=download, clip_seconds=clip_seconds)
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:num_images]
    images = torch.stack([ds[int(k)][0] for k in idx])
    size = image_size or tuple(images.shape[-2:])
    augment = modality.augment(inv_space, size, recipe=recipe)
    path = modality.preview(
        images, augment, ds, Path(out), title=f"{data} - space {inv_space.name} - recipe {recipe}", wavs=wavs
    )
    print(f"wrote {path}")
    return str(path)


def _run_pretrain(**kwargs: object) -> None:
    from amortinv.ssl.config import PretrainConfig
    from amortinv.ssl.pretrain import run_pretrain

    result = run_pretrain(PretrainConfig(**kwargs))
    if not result:
        return
    out = Path(str(kwargs["out"]))
    sizes = {
        name: (out / name).stat().st_size / 2**20
        for name in ("encoder.safetensors", "checkpoints/last.ckpt")
        if (out / name).is_file()
    }
    print(
        f"pre-training done: {result['steps']} steps, final loss {result['final_loss']:.4f}, {result['wall_time_s']:.1f} s"
    )
    for label, acc in (result.get("knn_top1") or {}).items():
        print(f"  kNN top-1 at {label}: {acc:.4f}")
    print(
        f"run folder {out}: "
        + ", ".join(f"{name} {mb:,.1f} MB" for name, mb in sizes.items())
        + ("" if kwargs.get("keep_optimizer") else " (optimiser state dropped from the finished run's checkpoint)")
    )


def transfer(**kwargs: object) -> None:
    from amortinv.transfer.command import transfer_command

    transfer_command(**kwargs)


def demo(
    data: str = "shapes",
    data_root: str | None = None,
    out: str = "runs/demo",
    quick: bool = False,
    device: str = "auto",
    seed: int = 0,
) -> None:
    """Run the whole method end to end: pre-train AI-SimCLR and SimCLR, transfer with learned invariances, measure, report.

    Args:
        data: dataset: the built-in shapes (no download), or any registry dataset (e.g. cifar10 with --data-root).
        data_root: local folder of the dataset (not needed for shapes).
        out: run folder (result.json, table.md, learned_i.png, radar.png).
        quick: a one-minute version (tiny budget).
        device: cpu, cuda or auto.
        seed: seed of everything.
    """
    from amortinv.demo import run_demo

    run_demo(data=data, data_root=data_root, out=out, quick=quick, device=device, seed=seed)


def fewshot(**kwargs: object) -> None:
    from amortinv.fewshot.command import fewshot_command

    fewshot_command(**kwargs)


def export(**kwargs: object) -> None:
    from amortinv.export import export_command

    export_command(**kwargs)


def suite(**kwargs: object) -> None:
    from amortinv.suite import suite_command

    suite_command(**kwargs)


def import_(**kwargs: object) -> None:
    from amortinv.importing import import_command

    import_command(**kwargs)


def measure(**kwargs: object) -> None:
    from amortinv.measure.command import measure_command

    measure_command(**kwargs)


def bound(**kwargs: object) -> None:
    from amortinv.measure.command import bound_command

    bound_command(**kwargs)


def _lazy(module: str, name: str) -> Callable[[], object]:
    def load() -> object:
        import importlib

        return getattr(importlib.import_module(module), name)

    return load


COMMANDS: dict[str, Callable[..., object]] = {
    "demo": demo,
    "preview": preview,
    "pretrain": _run_pretrain,
    "transfer": transfer,
    "fewshot": fewshot,
    "measure": measure,
    "bound": bound,
    "export": export,
    "import": import_,
    "suite": suite,
}
SIGNATURES: dict[str, Callable[[], object]] = {
    "pretrain": _lazy("amortinv.ssl.config", "PretrainConfig"),
    "transfer": _lazy("amortinv.transfer.command", "transfer_command"),
    "fewshot": _lazy("amortinv.fewshot.command", "fewshot_command"),
    "export": _lazy("amortinv.export", "export_command"),
    "import": _lazy("amortinv.importing", "import_command"),
    "suite": _lazy("amortinv.suite", "suite_command"),
    "measure": _lazy("amortinv.measure.command", "measure_command"),
    "bound": _lazy("amortinv.measure.command", "bound_command"),
}


_TYPE_ERROR = re.compile(
    r'Parser key "([\w.]+)": (?:Does not validate against any of the Union subtypes Subtypes: '
    r"\[(?P<union>.*?)\].*Given value: |Expected a <class '(?P<type>\w+)'>\. Got value: )(?P<value>.*)$"
)


def _concise(text: str) -> str:
    """jsonargparse's message for a value of the wrong type, as ``--option: expected T, got V``."""
    m = _TYPE_ERROR.match(text)
    if m is None:
        return text
    types = re.findall(r"<class '(\w+)'>", m["union"]) if m["union"] is not None else [m["type"]]
    names = " or ".join("null" if t == "NoneType" else t for t in types)
    return f"--{m[1].replace('_', '-')}: expected {names}, got {m['value']}"


class _Parser(ArgumentParser):
    """jsonargparse's parser, with a bad option or config reported in one line (no usage block)."""

    def error(self, message: str, ex: Exception | None = None) -> None:  # type: ignore[override]
        parser = getattr(ex, "subcommand_parser", None) or self
        text = _concise(" ".join(line.strip() for line in str(message).strip().splitlines() if line.strip()))
        text = re.sub(r"--[a-z0-9_]+", lambda m: m.group(0).replace("_", "-"), text)  # options as the user spells them
        sys.stderr.write(f"amortinv: error: {text} (see: {parser.prog.replace(' [options]', '')} --help)\n")
        raise SystemExit(2)


def build_parser() -> ArgumentParser:
    """The top-level parser with one subcommand per entry of ``COMMANDS``."""
    from amortinv import __version__

    parser = _Parser(
        prog="amortinv",
        description="Amortised invariance learning for contrastive self-supervision.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"amortinv {__version__}")
    subcommands = parser.add_subcommands(dest="command")
    for name, fn in COMMANDS.items():
        source = SIGNATURES[name]() if name in SIGNATURES else fn
        summary = (source.__doc__ or "").strip().split("\n")[0]
        sub = _Parser(prog=f"amortinv {name}", description=summary, allow_abbrev=False)  # --max-step is not --max-steps
        sub.add_argument("--config", action=ActionConfigFile, help="YAML file with option values")
        if isinstance(source, type):
            sub.add_class_arguments(source, as_group=False)
        else:
            sub.add_function_arguments(source)
        subcommands.add_subcommand(name, sub, help=summary)
    return parser


def _bool_options(command: str) -> set[str]:
    """Names of the boolean options of a subcommand (they may be given as bare flags)."""
    source = SIGNATURES[command]() if command in SIGNATURES else COMMANDS.get(command)
    if source is None:
        return set()
    params = inspect.signature(source).parameters
    return {n for n, prm in params.items() if prm.annotation in (bool, "bool")}


def _normalise_flags(argv: Sequence[str]) -> list[str]:
    """Accept ``--data-root`` for ``--data_root`` (option names only, never values), and a bare
    boolean flag such as ``--quick`` for ``--quick=true``."""
    command = next((a for a in argv if not a.startswith("-")), "")
    flags = _bool_options(command) if command in COMMANDS else set()
    out = []
    for k, arg in enumerate(argv):
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            name = name.replace("-", "_")
            bare = not eq and name in flags and (k + 1 == len(argv) or argv[k + 1].startswith("--"))
            arg = "--" + name + ("=true" if bare else eq + value)
        out.append(arg)
    return out


def _parse(parser: ArgumentParser, argv: list[str]) -> object:
    """Parse ``argv``; help text is printed with the dash spelling of option names (``--data-root``)."""
    if not {"-h", "--help"} & set(argv):
        return parser.parse_args(argv)
    import contextlib
    import io
    import re

    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            return parser.parse_args(argv)
    finally:
        print(re.sub(r"--[a-z0-9_]+", lambda m: m.group(0).replace("_", "-"), buffer.getvalue()), end="")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``amortinv`` console script."""
    parser = build_parser()
    args = _parse(parser, _normalise_flags(sys.argv[1:] if argv is None else argv))
    name = args.command
    kwargs = {k: v for k, v in dict(args[name]).items() if k != "config"}
    from amortinv._quiet import quiet_third_party

    quiet_third_party()
    try:
        COMMANDS[name](**kwargs)
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError, FloatingPointError) as err:
        if os.environ.get("AMORTINV_DEBUG"):
            raise
        print(f"amortinv: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception:  # not a bad input: a bug; keep the traceback and say so
        print(
            "amortinv: internal error (a bug, not your input): please report it with the command and the traceback above",
            file=sys.stderr,
        )
        raise


if __name__ == "__main__":
    main()
