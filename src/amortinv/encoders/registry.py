"""``build_encoder(name, invariance_dim=K, **options)``: every encoder by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from amortinv.encoders.base import Encoder
from amortinv.encoders.resnet import ResNet
from amortinv.encoders.vit import VisionTransformer

__all__ = ["build_encoder", "ENCODERS"]


def _resnet(depth: int, hyper: bool) -> Callable[..., Encoder]:
    def make(invariance_dim: int = 0, **kw: Any) -> Encoder:
        return ResNet(depth=depth, invariance_dim=invariance_dim if hyper else 0, **kw)

    return make


def _vit(size: str, prompt: bool) -> Callable[..., Encoder]:
    def make(invariance_dim: int = 0, **kw: Any) -> Encoder:
        return VisionTransformer(size=size, invariance_dim=invariance_dim if prompt else 0, **kw)

    return make


ENCODERS: dict[str, Callable[..., Encoder]] = {
    **{f"resnet{d}": _resnet(d, False) for d in (18, 34, 50)},
    **{f"hyper_resnet{d}": _resnet(d, True) for d in (18, 34, 50)},
    **{f"vit_{s}": _vit(s, False) for s in ("tiny", "small", "base")},
    **{f"prompt_vit_{s}": _vit(s, True) for s in ("tiny", "small", "base")},
}


def build_encoder(name: str, invariance_dim: int = 0, **options: Any) -> Encoder:
    """Build an encoder.

    Args:
        name: ``resnet18|34|50``, ``hyper_resnet18|34|50``, ``vit_tiny|small|base`` or
            ``prompt_vit_tiny|small|base``.
        invariance_dim: K, the descriptor length (ignored by plain encoders, which take no ``i``).
        options: architecture options of ``ResNet`` (cifar_stem, width, in_channels, embed_dim,
            hidden_dim) or ``VisionTransformer`` (img_size, patch_size, projectors, pos_embed, ...).
    Returns:
        An ``Encoder``: ``forward(x (B, C, H, W), i (K,)) -> (B, feature_dim)``.
    """
    if name == "embeddings":  # LooC++: a plain backbone and its projection heads (amortinv.encoders.embeddings)
        from amortinv.encoders.embeddings import EmbeddingEncoder

        return EmbeddingEncoder(**options)
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder '{name}'; choose from {sorted(ENCODERS)} (or embeddings)")
    conditioned = name.startswith(("hyper_", "prompt_"))
    if conditioned and invariance_dim < 1:
        raise ValueError(f"encoder '{name}' needs invariance_dim >= 1 (the descriptor length K)")
    cls, fixed = (ResNet, "depth") if "resnet" in name else (VisionTransformer, "size")
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self", fixed, "invariance_dim"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"encoder '{name}' has no options {unknown}; it takes {sorted(allowed)}")
    return ENCODERS[name](invariance_dim=invariance_dim, **options)
