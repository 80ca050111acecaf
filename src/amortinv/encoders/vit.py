"""Vision Transformer and Prompt-ViT (Appendix A.1.2, SPEC section 3).

Token sequence: ``[CLS + pos_0, patches + pos_1..N, INV]``. The invariance token ``INV`` is
appended last, without a position embedding, and comes from the P-projector MLP: the mean of P
two-layer MLPs ``Linear(K, D) -> ReLU -> Linear(D, D)``, computed exactly as one MLP of hidden
width ``P*D`` whose output weights are divided by P. The feature is the final-normed CLS token.
A plain ViT is the same network without the invariance token.

Parameter names follow timm (``patch_embed.proj``, ``cls_token``, ``pos_embed``,
``blocks.k.attn.qkv`` ...), so pre-trained timm and MoCo-v3 weights load directly
(``amortinv.encoders.io.load_pretrained_vit``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from amortinv.encoders.base import Encoder

__all__ = ["VisionTransformer", "InvarianceProjector", "VIT_SIZES", "sincos_pos_embed"]

VIT_SIZES: dict[str, tuple[int, int, int]] = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12)}


def sincos_pos_embed(dim: int, grid: int) -> torch.Tensor:
    """2-D sin-cos position embedding (1, 1 + grid*grid, dim) with a zero CLS entry (MoCo-v3's)."""
    if dim % 4:
        raise ValueError(f"sin-cos position embedding needs dim divisible by 4, got {dim}")
    gy, gx = torch.meshgrid(
        torch.arange(grid, dtype=torch.float32), torch.arange(grid, dtype=torch.float32), indexing="ij"
    )
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4))
    out_w, out_h = gx.flatten()[:, None] * omega, gy.flatten()[:, None] * omega
    pe = torch.cat([out_w.sin(), out_w.cos(), out_h.sin(), out_h.cos()], dim=1)
    return torch.cat([torch.zeros(1, dim), pe])[None]


class PatchEmbed(nn.Module):
    def __init__(self, img_size: int, patch_size: int, in_channels: int, dim: int) -> None:
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} must be a multiple of patch_size {patch_size}")
        self.img_size, self.grid = img_size, img_size // patch_size
        self.proj = nn.Conv2d(in_channels, dim, patch_size, patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.img_size, self.img_size):
            raise ValueError(f"ViT input must be {self.img_size}x{self.img_size}, got {tuple(x.shape[-2:])}")
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=1e-6), Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class InvarianceProjector(nn.Module):
    """The mean of P MLPs ``Linear(K, D) -> ReLU -> Linear(D, D)`` as one MLP of hidden width P*D.

    ``fc1`` stacks the P first layers; ``fc2`` holds the P second layers side by side, applied
    with its weight divided by P (its one bias is the mean of the P biases).
    """

    def __init__(self, invariance_dim: int, dim: int, projectors: int) -> None:
        super().__init__()
        if projectors < 1:
            raise ValueError(f"the number of invariance projectors P must be >= 1, got {projectors}")
        self.projectors = projectors
        self.fc1 = nn.Linear(invariance_dim, projectors * dim)
        self.fc2 = nn.Linear(projectors * dim, dim)

    def forward(self, i: torch.Tensor) -> torch.Tensor:
        """(K,) or (B, K) -> (D,) or (B, D)."""
        return F.linear(F.relu(self.fc1(i)), self.fc2.weight / self.projectors, self.fc2.bias)


class VisionTransformer(Encoder):
    """ViT (``invariance_dim=0``) or Prompt-ViT returning the final-normed CLS token (B, dim).

    Args:
        size: ``tiny``, ``small`` or ``base`` (width, depth, heads), unless dim/depth/heads given.
        invariance_dim: K; 0 builds a plain ViT.
        img_size, patch_size, in_channels: input geometry.
        projectors: P, the number of averaged invariance projectors (256 in the paper's ViT-B).
        pos_embed: ``learned`` or ``sincos`` (fixed, MoCo-v3).
    """

    def __init__(
        self,
        size: str = "small",
        invariance_dim: int = 0,
        img_size: int = 224,
        patch_size: int = 16,
        in_channels: int = 3,
        projectors: int = 8,
        pos_embed: str = "learned",
        mlp_ratio: float = 4.0,
        dim: int | None = None,
        depth: int | None = None,
        heads: int | None = None,
    ) -> None:
        if size not in VIT_SIZES:
            raise ValueError(f"ViT size must be one of {sorted(VIT_SIZES)}, got '{size}'")
        if pos_embed not in ("learned", "sincos"):
            raise ValueError(f"pos_embed must be 'learned' or 'sincos', got '{pos_embed}'")
        super().__init__(invariance_dim)
        d0, depth0, heads0 = VIT_SIZES[size]
        dim, depth, heads = dim or d0, depth or depth0, heads or heads0
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.arch: dict[str, Any] = {
            "size": size,
            "invariance_dim": invariance_dim,
            "img_size": img_size,
            "patch_size": patch_size,
            "in_channels": in_channels,
            "projectors": projectors,
            "pos_embed": pos_embed,
            "mlp_ratio": mlp_ratio,
            "dim": dim,
            "depth": depth,
            "heads": heads,
        }
        self.patch_embed = PatchEmbed(img_size, patch_size, in_channels, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        num_tokens = 1 + self.patch_embed.grid**2
        if pos_embed == "sincos":
            self.pos_embed = nn.Parameter(sincos_pos_embed(dim, self.patch_embed.grid), requires_grad=False)
        else:
            self.pos_embed = nn.Parameter(torch.randn(1, num_tokens, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.prompt = InvarianceProjector(invariance_dim, dim, projectors) if invariance_dim else None
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.patch_embed.proj.weight
        bound = math.sqrt(6.0 / float(3 * w[0].numel() + w.shape[0]))
        nn.init.uniform_(w, -bound, bound)  # MoCo-v3's patch-embedding init

    @property
    def feature_dim(self) -> int:
        return int(self.arch["dim"])

    @property
    def config(self) -> dict[str, Any]:
        name = ("prompt_vit_" if self.invariance_dim else "vit_") + self.arch["size"]
        return {"name": name, **{k: v for k, v in self.arch.items() if k != "size"}}

    def stages(self) -> list[nn.ModuleList]:
        """The blocks in four consecutive groups (for stage-wise fine-tuning, like a ResNet's stages)."""
        depth = len(self.blocks)
        bounds = [round(depth * k / 4) for k in range(5)]
        return [nn.ModuleList(self.blocks[bounds[k] : bounds[k + 1]]) for k in range(4) if bounds[k + 1] > bounds[k]]

    def tokens(self, x: torch.Tensor, i: torch.Tensor | None = None) -> torch.Tensor:
        """The input token sequence (B, 1 + N [+ 1], dim) fed to the first block."""
        i = self.check_inputs(x, i)
        patches = self.patch_embed(x) + self.pos_embed[:, 1:]
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(len(x), -1, -1)
        seq = [cls, patches]
        if self.prompt is not None:
            seq.append(self.prompt(i).view(1, 1, -1).expand(len(x), -1, -1))
        return torch.cat(seq, dim=1)

    def forward(self, x: torch.Tensor, i: torch.Tensor | None = None) -> torch.Tensor:
        """CLS features (B, dim) of images x (B, C, img_size, img_size) at descriptor i (K,)."""
        h = self.tokens(x, i)
        for blk in self.blocks:
            h = blk(h)
        return self.norm(h)[:, 0]
