"""Saving and loading encoders (safetensors + a JSON architecture config), and pre-trained ViT weights.

Nothing here unpickles arbitrary objects: weights are read with safetensors, or with
``torch.load(weights_only=True)`` for ``.pth``/``.pt`` checkpoints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from amortinv.encoders.base import Encoder
from amortinv.encoders.registry import build_encoder
from amortinv.encoders.vit import VisionTransformer

__all__ = [
    "save_encoder",
    "write_safetensors",
    "load_encoder",
    "encoder_paths",
    "read_encoder_config",
    "read_state_dict",
    "load_pretrained_vit",
]

FORMAT = "amortinv-encoder/1"


def encoder_paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights.safetensors, weights.json)`` for a path given with or without the suffix, or a run folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "encoder.safetensors"
    if path.suffix in (".json", ".safetensors"):
        path = path.with_suffix("")
    return path.with_suffix(".safetensors"), path.with_suffix(".json")


_DTYPES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float64: "F64",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def write_safetensors(
    path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """Write ``tensors`` as a safetensors file, one tensor at a time (the format: an 8-byte header length, a JSON
    header of dtypes, shapes and byte offsets, then the raw bytes).

    ``safetensors.torch.save_file`` first copies every tensor into one bytes object, so saving needs twice the
    model's memory; streaming needs one tensor's (a 3 GB Hyper-ResNet-50 imported from a memory-mapped
    checkpoint is written without ever being in memory twice). Files read back with ``safetensors`` as usual.
    The file is written to a temporary name beside ``path`` and moved into place.
    """
    path = Path(path)
    header: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, t in tensors.items():
        size = t.numel() * t.element_size()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as safetensors writes it
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(len(text).to_bytes(8, "little") + text)
            for t in tensors.values():
                f.write(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def save_encoder(path: str | Path, encoder: Encoder, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``path.safetensors`` (the state dict) and ``path.json`` (config + metadata); returns the weights path."""
    from amortinv.results import check_output_folder

    weights, config_path = encoder_paths(path)
    check_output_folder(weights.parent, name="path")
    weights.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors(weights, encoder.state_dict(), metadata={"format": FORMAT})
    config_path.write_text(
        json.dumps({"format": FORMAT, "encoder": encoder.config, "metadata": metadata or {}}, indent=2) + "\n"
    )
    return weights


def read_encoder_config(path: str | Path) -> dict[str, Any]:
    """The JSON written by ``save_encoder`` (``encoder`` config and ``metadata``)."""
    _, config_path = encoder_paths(path)
    if not config_path.is_file():
        raise FileNotFoundError(f"encoder config not found: {config_path} (saved by amortinv.save_encoder?)")
    try:
        cfg = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_path} is not valid JSON: {err}") from err
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT or "name" not in cfg.get("encoder", {}):
        raise ValueError(f"{config_path} is not an amortinv encoder config (format {FORMAT})")
    return cfg


def load_encoder(path: str | Path, map_location: str | torch.device = "cpu", **expected: Any) -> Encoder:
    """Rebuild a saved encoder and load its weights.

    Args:
        path: the ``.safetensors`` or ``.json`` file, the path without suffix, or a run folder
            holding ``encoder.safetensors``.
        expected: architecture options the caller relies on (e.g. ``name="hyper_resnet18"``,
            ``invariance_dim=2``); any that differ from the saved config is an error.
    Raises:
        FileNotFoundError, ValueError: missing files, a config that differs from ``expected``,
            or weights that do not fit the architecture (each difference is named).
    """
    weights, config_path = encoder_paths(path)
    cfg = read_encoder_config(path)["encoder"]
    diffs = [f"{k}: saved {cfg.get(k)!r}, expected {v!r}" for k, v in expected.items() if cfg.get(k) != v]
    if diffs:
        raise ValueError(f"encoder at {config_path} does not match: " + "; ".join(diffs))
    if not weights.is_file():
        raise FileNotFoundError(f"encoder weights not found: {weights}")
    try:
        options = {k: v for k, v in cfg.items() if k != "name"}
        encoder = build_encoder(cfg["name"], **options)
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{config_path} does not describe an amortinv encoder ({type(err).__name__}: {err})") from None
    try:
        state = load_file(str(weights), device=str(map_location))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{weights} is not a readable safetensors file: {err}") from err
    own = encoder.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own.keys() & state.keys()
        if state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        raise ValueError(
            f"weights in {weights} do not fit the {cfg['name']} described by {config_path.name}: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
            f"{'...' if len(unexpected) > 5 else ''}, shape mismatches {shapes[:5]}"
        )
    encoder.load_state_dict(state)
    return encoder.to(map_location).eval()  # loaded for use: BatchNorm with its running statistics


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file or a ``.pth``/``.pt``/``.tar`` checkpoint (``weights_only=True``).

    Checkpoints that nest the weights under ``state_dict`` or ``model`` are unwrapped.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or unsafe files
        raise ValueError(f"could not read {path} safely (corrupt, or contains non-tensor objects): {err}") from err
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return obj


_MOCO_PREFIXES = ("module.base_encoder.", "base_encoder.", "module.encoder_q.", "module.", "encoder.")


def load_pretrained_vit(model: VisionTransformer, path: str | Path) -> dict[str, list[str]]:
    """Load a pre-trained ViT state dict (timm or MoCo-v3 layout) into ``model``, keeping its patch embedding.

    The classifier / projection head and MoCo's momentum encoder are dropped; the Prompt-ViT's
    invariance projector, absent from such files, keeps its initialisation.

    Returns:
        ``{"loaded": [...], "missing": [...], "unexpected": [...]}`` key lists (a report to print).
    Raises:
        ValueError: when a tensor's shape does not fit (e.g. another patch or image size).
    """
    raw = read_state_dict(path)
    state: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        if "momentum_encoder" in key:
            continue
        for prefix in _MOCO_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        if key.startswith(("head.", "fc.", "predictor.")):
            continue
        state[key] = value
    own = model.state_dict()
    bad = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    if bad:
        raise ValueError(f"pre-trained ViT at {path} does not fit this model: " + "; ".join(bad[:5]))
    if not set(state) & set(own):
        raise ValueError(
            f"{path} holds no tensor of this ViT (names like {sorted(state)[:3]}): is it a timm or MoCo-v3 ViT checkpoint?"
        )
    result = model.load_state_dict(state, strict=False)
    return {
        "loaded": sorted(set(state) & set(own)),
        "missing": sorted(result.missing_keys),
        "unexpected": sorted(result.unexpected_keys),
    }
