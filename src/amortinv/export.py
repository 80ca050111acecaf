"""``amortinv export``: a trained conditioned encoder, fixed at one descriptor, as an ordinary encoder.

The descriptor is a task's learned ``i`` from a ``transfer`` result (``--transfer result.json
--task NAME``; the factor-name dict is read for you) or one given directly (``--descriptor``).
A Hyper-ResNet is materialised (the generated kernels written into a plain ResNet: no
hypernetwork cost, and with the ImageNet stem its state dict loads into torchvision's ResNet);
the result is saved as ``encoder.safetensors`` + ``encoder.json``, loadable with
``amortinv.encoders.load_encoder(out)``. (ONNX export is not offered: it needs the ``onnx``
packages, which amortinv does not depend on.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["export_command", "descriptor_from_transfer"]


def descriptor_from_transfer(path: str, task: str | None, factors: tuple[str, ...]) -> tuple[list[float], str]:
    """The learned ``i`` of ``task`` in a transfer ``result.json`` (or its run folder), ordered as ``factors``."""
    file = Path(path) / "result.json" if Path(path).is_dir() else Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"transfer result not found: {file}")
    try:
        learned = json.loads(file.read_text())["learned_i"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise ValueError(f"{file} is not a transfer result with learned descriptors (no 'learned_i')") from None
    if task is None:
        if len(learned) != 1:
            raise ValueError(f"{file} holds several tasks {sorted(learned)}: choose one with --task")
        task = next(iter(learned))
    if task not in learned:
        raise ValueError(f"task '{task}' is not in {file}; it has {sorted(learned)}")
    if set(learned[task]) != set(factors):
        raise ValueError(
            f"the learned descriptor names factors {sorted(learned[task])}, the encoder's space {list(factors)}"
        )
    return [float(learned[task][f]) for f in factors], f"{file}:{task}"


def export_command(
    encoder: str,
    out: str,
    transfer: str | None = None,
    task: str | None = None,
    descriptor: str | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Export a conditioned encoder at one descriptor as a plain encoder (materialised weights, safetensors + JSON).

    Args:
        encoder: a run folder of amortinv pretrain, or an encoder .safetensors/.json (conditioned).
        out: output folder (encoder.safetensors, encoder.json).
        transfer: a transfer result.json (or its folder) whose learned descriptor to use.
        task: the task of that result (needed when it holds several).
        descriptor: the descriptor itself, e.g. "0.2,0.9" (instead of --transfer).
        overwrite: replace the contents of a non-empty --out (otherwise it is refused).
    """
    import torch

    from amortinv.encoders import save_encoder
    from amortinv.loading import load_encoder_and_space
    from amortinv.results import prepare_output_folder
    from amortinv.spaces import parse_descriptors

    if (transfer is None) == (descriptor is None):
        raise ValueError("give exactly one of --transfer (a transfer result) or --descriptor")
    enc, space = load_encoder_and_space(encoder)
    if not enc.conditioned:
        raise ValueError(f"{encoder} is a plain encoder already: there is no descriptor to fix")
    if transfer is not None:
        values, source = descriptor_from_transfer(transfer, task, space.factors)
    else:
        values, source = parse_descriptors(descriptor, space)[0].tolist(), "--descriptor"
    i = space.validate(values)
    enc = enc.eval()
    if not hasattr(enc, "materialise"):
        raise ValueError(
            f"encoder '{enc.config['name']}' cannot be materialised at a fixed descriptor (Hyper-ResNets can)"
        )
    plain = enc.materialise(i)
    prepare_output_folder(Path(out), overwrite, source=encoder)
    meta = {
        "exported_from": str(encoder),
        "descriptor": space.describe(i),
        "descriptor_source": source,
        "space": space.to_config(),
    }
    path = save_encoder(Path(out) / "encoder", plain.eval(), metadata=meta)
    with torch.no_grad():
        x = torch.rand(2, enc.in_channels, 32, 32)
        gap = float((plain(x) - enc(x, i)).abs().max())
    print(
        f"exported {enc.config['name']} at i = {space.describe(i)} as {plain.config['name']} (max |difference| on a check batch {gap:.2e})"
    )
    print(f"files written: {path}, {path.with_suffix('.json')}")
    return {"path": str(path), "descriptor": space.describe(i), "max_abs_difference": gap}
