"""``amortinv import``: a model trained elsewhere as an amortinv run folder (encoder.safetensors + encoder.json).

Supported: ``--format official-ai-moco``, the authors' released AI-MoCo-v2 Hyper-ResNet-50
(``amortinv.encoders.official`` says what the file holds and how it maps). The folder it writes
works wherever a run folder does: ``transfer``, ``fewshot``, ``measure``, ``export``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

__all__ = ["import_command", "FORMATS"]

FORMATS = ("official-ai-moco",)


def import_command(
    checkpoint: str, out: str, format: str = "official-ai-moco", heads: bool = False, overwrite: bool = False
) -> dict[str, Any]:  # noqa: A002
    """Import a checkpoint trained elsewhere (the paper's released AI-MoCo-v2 Hyper-ResNet-50) as a run folder.

    Args:
        checkpoint: the checkpoint file, e.g. hyper_resnet50_imagenet100-moco_2_checkpoint_0300.pth.tar.
        out: run folder to write (encoder.safetensors, encoder.json; heads.safetensors with --heads).
        format: official-ai-moco (the paper's AI-MoCo-v2 Hyper-ResNet-50, K = 2).
        heads: also keep the three projection heads (one per training descriptor) in heads.safetensors.
        overwrite: replace the contents of a non-empty --out (otherwise it is refused).
    """
    from amortinv.encoders.io import FORMAT, write_safetensors
    from amortinv.encoders.official import DESCRIPTORS, encoder_from_official, read_official_checkpoint
    from amortinv.results import MemoryMeter, prepare_output_folder, write_json
    from amortinv.spaces import load_space

    if format not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got '{format}'")
    folder = Path(out)
    start = time.perf_counter()
    with MemoryMeter("cpu") as meter:
        backbone, head_tensors, facts = read_official_checkpoint(checkpoint)
        encoder = encoder_from_official(backbone, checkpoint)
        prepare_output_folder(folder, overwrite, source=checkpoint)
        folder.mkdir(parents=True, exist_ok=True)
        write_safetensors(folder / "encoder.safetensors", encoder.state_dict(), metadata={"format": FORMAT})
        if heads:
            write_safetensors(
                folder / "heads.safetensors",
                dict(sorted(head_tensors.items())),
                metadata={"format": "amortinv-heads/1"},
            )
    parameters = sum(p.numel() for p in encoder.parameters())
    size_mb = sum(t.numel() * t.element_size() for t in encoder.state_dict().values()) / 2**20
    meta = {
        "space": load_space("groups2").to_config(),
        "imported_from": facts,
        "descriptors": list(DESCRIPTORS),
        "recipe": "views as described per descriptor; amortinv's 'reference' recipe reproduces their appearance views",
        "dropped": "bn_down in every block (a BatchNorm their forward never uses)",
        "heads": "heads.safetensors: predictor_b.{official_index}.{0,2} (Linear 2048-2048, ReLU, Linear 2048-128)"
        if heads
        else None,
    }
    write_json(folder / "encoder.json", {"format": FORMAT, "encoder": encoder.config, "metadata": meta})
    record = {
        "parameters": parameters,
        "encoder_mb": round(size_mb, 1),
        "peak_rss_delta_mb": round(meter.peak_mb, 1),
        "peak_over_encoder": round(meter.peak_mb / size_mb, 2) if size_mb else None,
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(
        f"imported {facts.get('arch', 'the checkpoint')} (epoch {facts.get('epoch', '?')}) as {encoder.config['name']} "
        f"(width {encoder.config['width']:g}, {parameters:,} parameters, {size_mb:,.0f} MiB) into {folder}; "
        f"peak memory {meter.peak_mb:,.0f} MiB, {record['seconds']} s"
    )
    print(
        "descriptors: [0,1] = their 'dorsal' (appearance views), [1,0] = 'ventral' (spatial views), [1,1] = 'default'"
    )
    return record
