"""A backbone followed by several projection heads, their L2-normalised outputs concatenated (LooC++).

LooC (Xiao et al., ICLR 2021) trains one embedding space per augmentation left out on a shared backbone; its
"LooC++" rows evaluate the concatenation of all the spaces' embeddings. ``EmbeddingEncoder`` is that model as an
ordinary plain encoder: every command reads it like any other (``encoder.json`` names ``embeddings``, the backbone's
config and the heads' sizes). ``run_pretrain`` writes one beside a LooC run's encoder (``<run>/embeddings``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from amortinv.encoders.base import Encoder

__all__ = ["EmbeddingEncoder"]


def _head(in_dim: int, hidden: int, out_dim: int, layers: int) -> nn.Sequential:
    """The projection head of ``amortinv.ssl.heads.mlp`` (Linear, BatchNorm, ReLU between layers)."""
    from amortinv.ssl.heads import mlp

    return mlp(in_dim, hidden, out_dim, layers)


class EmbeddingEncoder(Encoder):
    """``backbone`` (a plain encoder) then ``heads`` MLP heads (hidden, dim, layers); features (B, heads x dim).

    Args:
        backbone: the config of the plain backbone (``Encoder.config``), or the backbone itself.
        heads, hidden, dim, layers: the projection heads' count and sizes.
    """

    def __init__(self, backbone: dict[str, Any] | Encoder, heads: int, hidden: int, dim: int, layers: int) -> None:
        super().__init__(0)
        if isinstance(backbone, dict):
            from amortinv.encoders.registry import build_encoder

            backbone = build_encoder(backbone["name"], **{k: v for k, v in backbone.items() if k != "name"})
        if backbone.conditioned:
            raise ValueError("an embedding encoder wraps a plain backbone (LooC's)")
        self.backbone = backbone
        self.heads = nn.ModuleList(_head(backbone.feature_dim, hidden, dim, layers) for _ in range(heads))
        self.sizes = {"heads": int(heads), "hidden": int(hidden), "dim": int(dim), "layers": int(layers)}

    @property
    def feature_dim(self) -> int:
        return self.sizes["heads"] * self.sizes["dim"]

    @property
    def config(self) -> dict[str, Any]:
        return {"name": "embeddings", "backbone": self.backbone.config, **self.sizes}

    @property
    def modality(self) -> str:
        return self.backbone.modality

    @property
    def in_channels(self) -> int:
        return self.backbone.in_channels

    def stages(self) -> Sequence[nn.Module]:
        return [*self.backbone.stages(), self.heads]

    def forward(self, x: torch.Tensor, i: torch.Tensor | None = None) -> torch.Tensor:
        """Inputs (B, C, H, W) -> the heads' normalised embeddings side by side (B, heads x dim)."""
        f = self.backbone(x, None)
        return torch.cat([F.normalize(head(f), dim=1) for head in self.heads], dim=1)
