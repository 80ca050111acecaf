"""The authors' released AI-MoCo-v2 Hyper-ResNet-50 (``hyper_resnet50_imagenet100-moco_2_checkpoint_0300.pth.tar``) as an amortinv encoder.

The file (linked from the README of ``ruchikachavhan/amortized-invariance-learning-ssl``) is a
``torch.save`` of ``{epoch, arch, state_dict, optimizer, scaler}`` from a DDP run: the query
encoder under ``module.base_encoder.``, its momentum copy under ``module.momentum_encoder.``, one
projection head per training descriptor (``predictor_b.{0,1,2}``: Linear(2048, 2048), ReLU,
Linear(2048, 128)) and one queue per descriptor (``queue_{dorsal,ventral,default}``, [128, 65536]).

Their Bottleneck computes exactly what ours does: a block embedding ``emb1`` = Linear(K, 16, no
bias) of the descriptor, and per conv a generator ``hypernetN.layer`` = Linear(16, 32), ReLU,
Linear(32, O*I*k*k) whose output is viewed as the (O, I, k, k) kernel (``hypernet_down`` for the
shortcut's 1x1 conv, followed by the BatchNorm ``downsample.1``); the ImageNet stem (7x7/2 conv,
BatchNorm, ReLU, 3x3/2 max-pool) is shared, and the feature is the global average of layer 4
(their ``fc`` is an identity; their dropout acts in training only). So the import is a renaming
(``KEY_MAP``). The one difference in parameters: each of their blocks also holds a BatchNorm
``bn_down`` that its forward never uses, 2 x 4 x planes parameters per block, 30,208 in the
16 blocks of ResNet-50 (773,823,168 = 773,792,960 + 30,208); it is dropped.

Descriptors: their index 0 ("dorsal") trained on appearance augmentations only, i = [0, 1]; index
1 ("ventral") on spatial ones, i = [1, 0]; index 2 ("default") on both, i = [1, 1]: bit 0 is
spatial invariance, as in our ``groups2``, so descriptors carry over unchanged. Their appearance
views apply colour jitter and grayscale with probability 1 (our ``reference`` recipe).
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from amortinv.encoders.registry import build_encoder
from amortinv.encoders.resnet import RESNET_LAYERS, ResNet

__all__ = [
    "FORMAT_NAME",
    "DESCRIPTORS",
    "official_key",
    "official_backbone_shapes",
    "read_official_checkpoint",
    "encoder_from_official",
]

FORMAT_NAME = "official-ai-moco"
QUERY_PREFIXES = ("module.base_encoder.", "base_encoder.")
HEAD_KEY = re.compile(r"predictor_b\.(\d+)\.(\d+)\.(weight|bias)$")
KEY_MAP = {
    "emb1": "embed",
    "hypernet1.layer.0": "conv1.hidden",
    "hypernet1.layer.2": "conv1.out",
    "hypernet2.layer.0": "conv2.hidden",
    "hypernet2.layer.2": "conv2.out",
    "hypernet3.layer.0": "conv3.hidden",
    "hypernet3.layer.2": "conv3.out",
    "hypernet_down.layer.0": "downsample.0.hidden",
    "hypernet_down.layer.2": "downsample.0.out",
}
"""Their name inside a block -> ours (BatchNorms and the stem keep their names)."""
UNUSED = "bn_down"
DESCRIPTORS = (
    {
        "official_index": 0,
        "official_name": "dorsal",
        "descriptor": [0.0, 1.0],
        "views": "appearance augmentations only: colour jitter and grayscale with probability 1, blur (no crop, no flip)",
    },
    {
        "official_index": 1,
        "official_name": "ventral",
        "descriptor": [1.0, 0.0],
        "views": "spatial augmentations only: random resized crop and horizontal flip",
    },
    {
        "official_index": 2,
        "official_name": "default",
        "descriptor": [1.0, 1.0],
        "views": "MoCo-v2's default augmentations: crop, flip, colour jitter, grayscale, blur",
    },
)
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def official_key(ours: str) -> str:
    """The official backbone key (without the DDP prefix) of one of our Hyper-ResNet-50 state-dict keys."""
    parts = ours.split(".")
    if not parts[0].startswith("layer"):
        return ours  # stem: conv1, bn1
    block, rest = ".".join(parts[:2]), ".".join(parts[2:])
    for theirs, mine in KEY_MAP.items():
        if rest.startswith(mine + "."):
            return f"{block}.{theirs}{rest[len(mine) :]}"
    return ours  # bn1..bn3, downsample.1


def official_backbone_shapes(
    width: float = 1.0, k: int = 2, embed_dim: int = 16, hidden_dim: int = 32
) -> dict[str, tuple[int, ...]]:
    """Every backbone tensor of the official Hyper-ResNet-50 (their names, ``bn_down`` included) and its shape,
    enumerated from the architecture alone (stage widths, three-conv bottlenecks, a shortcut in each stage's first block)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(name: str, c: int) -> None:
        shapes.update({f"{name}.{p}": (c,) if p != "num_batches_tracked" else () for p in _BN})

    def hyper(name: str, o: int, i: int, ks: int) -> None:
        shapes.update(
            {
                f"{name}.layer.0.weight": (hidden_dim, embed_dim),
                f"{name}.layer.0.bias": (hidden_dim,),
                f"{name}.layer.2.weight": (o * i * ks * ks, hidden_dim),
                f"{name}.layer.2.bias": (o * i * ks * ks,),
            }
        )

    widths = [max(1, int(round(c * width))) for c in (64, 128, 256, 512)]
    shapes["conv1.weight"] = (widths[0], 3, 7, 7)
    bn("bn1", widths[0])
    inplanes = widths[0]
    for s, (planes, blocks) in enumerate(zip(widths, RESNET_LAYERS[50][1])):
        for b in range(blocks):
            p = f"layer{s + 1}.{b}"
            shapes[f"{p}.emb1.weight"] = (embed_dim, k)
            hyper(f"{p}.hypernet1", planes, inplanes, 1)
            hyper(f"{p}.hypernet2", planes, planes, 3)
            hyper(f"{p}.hypernet3", 4 * planes, planes, 1)
            for n, c in (("bn1", planes), ("bn2", planes), ("bn3", 4 * planes), (UNUSED, 4 * planes)):
                bn(f"{p}.{n}", c)
            if b == 0:
                hyper(f"{p}.hypernet_down", 4 * planes, inplanes, 1)
                bn(f"{p}.downsample.1", 4 * planes)
            inplanes = 4 * planes
    return shapes


def read_official_checkpoint(
    path: str | Path,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any]]:
    """The query backbone's tensors (their names, prefix removed), the projection heads' tensors, and facts about the file.

    Read with ``torch.load(weights_only=True, mmap=True)``: no code from the file runs, and tensors stay in the
    file until used (the optimiser state and the momentum encoder are never read).

    Raises:
        FileNotFoundError, ValueError: one line naming the file and what is wrong with it.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
        raise ValueError(
            f"{path} holds Python objects besides tensors ({first}); amortinv reads checkpoints with weights_only=True "
            "and will not run code from a file: re-save its state_dict alone where you trust it"
        ) from None
    except Exception as err:  # torch raises many types for a truncated or foreign file
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"{path} is not a readable PyTorch checkpoint (truncated, or not a torch.save file?): {reason}"
        ) from None
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not any(k.startswith(QUERY_PREFIXES) for k in state):
        raise ValueError(
            f"{path} is not an AI-MoCo checkpoint: no tensors under 'module.base_encoder.' in its state_dict"
        )
    prefix = next(p for p in QUERY_PREFIXES if any(k.startswith(p) for k in state))
    backbone, heads = {}, {}
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        if HEAD_KEY.match(name):
            heads[name] = value
        elif not name.startswith("fc."):
            backbone[name] = value
    facts = {
        "format": FORMAT_NAME,
        "path": str(path.resolve()),
        "bytes": path.stat().st_size,
        **{k: ckpt[k] for k in ("epoch", "arch") if isinstance(ckpt, dict) and isinstance(ckpt.get(k), (int, str))},
    }
    return backbone, heads, facts


def _architecture(backbone: dict[str, torch.Tensor], path: str | Path) -> dict[str, Any]:
    """Width, K, embedding and hidden sizes read off the tensors' shapes (checked against the full key list later)."""
    try:
        stem, emb, hidden = (
            backbone["conv1.weight"],
            backbone["layer1.0.emb1.weight"],
            backbone["layer1.0.hypernet1.layer.0.weight"],
        )
    except KeyError as err:
        raise ValueError(
            f"{path}: the query encoder lacks {err.args[0]!r}; is it an AI-MoCo Hyper-ResNet-50 checkpoint?"
        ) from None
    k = int(emb.shape[1])
    if k != 2:
        raise ValueError(
            f"{path}: its descriptors have K = {k} factors (layer1.0.emb1.weight {tuple(emb.shape)}); "
            f"the {FORMAT_NAME} format is the K = 2 model (spatial, appearance)"
        )
    return {"width": stem.shape[0] / 64, "k": k, "embed_dim": int(emb.shape[0]), "hidden_dim": int(hidden.shape[0])}


def _check_keys(backbone: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]], path: str | Path) -> None:
    missing, extra = sorted(set(expected) - set(backbone)), sorted(set(backbone) - set(expected))
    wrong = [
        f"{n} {tuple(backbone[n].shape)} (expected {expected[n]})"
        for n in sorted(set(expected) & set(backbone))
        if tuple(backbone[n].shape) != expected[n]
    ]
    for what, names in (("lacks", missing), ("has unexpected", extra), ("has wrong shapes for", wrong)):
        if names:
            raise ValueError(
                f"{path}: the query encoder {what} {len(names)} tensors of the official Hyper-ResNet-50, e.g. "
                f"{', '.join(names[:3])}"
            )


def encoder_from_official(backbone: dict[str, torch.Tensor], path: str | Path = "checkpoint") -> ResNet:
    """Our Hyper-ResNet-50 holding the official backbone's tensors (built on the meta device and given the
    tensors themselves with ``assign``: no copy, so a memory-mapped file stays mapped)."""
    arch = _architecture(backbone, path)
    _check_keys(
        backbone, official_backbone_shapes(arch["width"], arch["k"], arch["embed_dim"], arch["hidden_dim"]), path
    )
    with torch.device("meta"):
        encoder = build_encoder(
            "hyper_resnet50",
            invariance_dim=arch["k"],
            cifar_stem=False,
            width=arch["width"],
            embed_dim=arch["embed_dim"],
            hidden_dim=arch["hidden_dim"],
        )
    state = {ours: backbone[official_key(ours)] for ours in encoder.state_dict()}
    encoder.load_state_dict(state, strict=True, assign=True)
    return encoder.eval()
