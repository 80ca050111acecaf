"""The paper's competitors as plain objectives: AugSelf, CASSLE and LooC (no Lightning).

Each keeps one fixed set of invariances in a plain encoder and tries to keep information about the
augmentations some other way; they are trained at a fixed descriptor (the default recipe: all of a
space's factors on) with ``amortinv pretrain --competitor NAME``:

- ``AugSelf`` (Lee et al., NeurIPS 2021): an MLP on the two views' backbone features (concatenated
  both ways round) predicts how their crops and colour jitters differ; ``weight`` x that loss is added
  to SimCLR's or MoCo-v2's (the authors: 1.0 on STL-10/CIFAR-scale data, 0.5 on ImageNet-100).
- ``CASSLE`` (Przewięźlikowski et al., 2024): the projector sees the backbone features concatenated
  with an MLP embedding of the view's own augmentation parameters (SimCLR, or MoCo-v2 with a momentum
  copy of that MLP on the key side).
- ``LooC`` (Xiao et al., ICLR 2021): one all-invariant embedding space and one space per factor left
  out, each a projection head on the shared backbone, trained on a query, a key with every augmentation
  drawn anew and a key per factor that shares that factor with the query (SimCLR's in-batch negatives
  instead of the paper's MoCo queues).

Each objective makes its own inputs from the augmentation engine (``make_inputs``): two views and their
parameter vectors (``amortinv.augment.params.PARAM_NAMES``), or LooC's 2 + F views.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from amortinv.augment.params import PARAM_NAMES
from amortinv.encoders.base import Encoder
from amortinv.encoders.embeddings import EmbeddingEncoder
from amortinv.ssl.distributed import gather_no_grad
from amortinv.ssl.heads import mlp
from amortinv.ssl.losses import augself_loss, augself_targets, info_nce_queue, leave_one_out_loss, nt_xent
from amortinv.ssl.objectives import ContrastiveObjective, MoCoV2Objective, SimCLRObjective
from amortinv.ssl.optim import momentum_update

__all__ = [
    "AugSelfSimCLR",
    "AugSelfMoCoV2",
    "CASSLESimCLR",
    "CASSLEMoCoV2",
    "LooCSimCLR",
    "COMPETITORS",
    "competitor_objective",
    "embedding_encoder",
    "looc_embeddings",
]

AUGSELF_GROUPS = ("crop", "colour")
CASSLE_EMBED = 64  # width and output of the augmentation-parameter MLP (3 layers)


class _AugSelf:
    """AugSelf's predictors and loss, mixed into SimCLR or MoCo-v2 (``augself_weight``, ``jitter``: the recipe's)."""

    def __init__(
        self, encoder: Encoder, *, augself_weight: float, jitter: tuple[float, float, float, float], **kwargs: object
    ) -> None:
        super().__init__(encoder, **kwargs)
        d = self.encoder.feature_dim
        self.augself_weight, self.jitter = float(augself_weight), tuple(jitter)
        self.augself = nn.ModuleDict({g: mlp(2 * d, kwargs["proj_hidden"], 4, 3) for g in AUGSELF_GROUPS})

    def online(self) -> nn.ModuleList:
        return nn.ModuleList([*super().online(), self.augself])

    def make_inputs(self, augment, images: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, ...]:  # noqa: ANN001
        return augment.views_with_params(images, d)

    def auxiliary(self, f1: torch.Tensor, f2: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
        """``augself_weight`` x AugSelf's loss of features (B, D) of views with parameters w (B, 16), both ways round."""
        pairs = torch.cat([torch.cat([f1, f2], 1), torch.cat([f2, f1], 1)])
        t12, t21 = augself_targets(w1, w2, self.jitter), augself_targets(w2, w1, self.jitter)
        targets = {g: torch.cat([t12[g], t21[g]]) for g in AUGSELF_GROUPS}
        return self.augself_weight * augself_loss({g: self.augself[g](pairs) for g in AUGSELF_GROUPS}, targets)


class AugSelfSimCLR(_AugSelf, SimCLRObjective):
    """SimCLR plus AugSelf's loss on both views' backbone features."""

    def forward(
        self, v1: torch.Tensor, v2: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, head: int, i: torch.Tensor | None
    ) -> torch.Tensor:
        f1, f2 = self.encoder(torch.cat([v1, v2]), i).chunk(2)
        z1, z2 = self.projector(torch.cat([f1, f2]), head).chunk(2)
        return nt_xent(z1, z2, self.temperature) + self.auxiliary(f1, f2, w1, w2)


class AugSelfMoCoV2(_AugSelf, MoCoV2Objective):
    """As the authors' MoCo: the query's features from the online encoder, the key's from the momentum encoder."""

    def forward(
        self, v1: torch.Tensor, v2: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, head: int, i: torch.Tensor | None
    ) -> torch.Tensor:
        f1 = self.encoder(v1, i)
        with torch.no_grad():
            f2 = self.key_encoder(v2, i)
            k = self.key_projector(f2, head)
        loss = info_nce_queue(self.projector(f1, head), k, self.queues.get(head).clone(), self.temperature)
        self.queues.enqueue(head, gather_no_grad(k))
        return loss + self.auxiliary(f1, f2, w1, w2)


class _CASSLE:
    """CASSLE's projector input: the backbone features concatenated with an MLP embedding of the view's own
    augmentation parameters (``PARAM_NAMES``), for the online projector and, under MoCo, its momentum copy."""

    def __init__(self, encoder: Encoder, **kwargs: object) -> None:
        super().__init__(encoder, **kwargs)
        self.augmentation_embedding = mlp(len(PARAM_NAMES), CASSLE_EMBED, CASSLE_EMBED, 3)

    def _heads(self, hidden: int, dim: int, layers: int):  # noqa: ANN202
        return lambda: mlp(self.encoder.feature_dim + CASSLE_EMBED, hidden, dim, layers, last_bn=self.last_bn)

    def online(self) -> nn.ModuleList:
        return nn.ModuleList([*super().online(), self.augmentation_embedding])

    def make_inputs(self, augment, images: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, ...]:  # noqa: ANN001
        return augment.views_with_params(images, d)


class CASSLESimCLR(_CASSLE, SimCLRObjective):
    """SimCLR whose projector reads ``[features, MLP(view parameters)]``."""

    def forward(
        self, v1: torch.Tensor, v2: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, head: int, i: torch.Tensor | None
    ) -> torch.Tensor:
        f = self.encoder(torch.cat([v1, v2]), i)
        z1, z2 = self.projector(torch.cat([f, self.augmentation_embedding(torch.cat([w1, w2]))], 1), head).chunk(2)
        return nt_xent(z1, z2, self.temperature)


class CASSLEMoCoV2(_CASSLE, MoCoV2Objective):
    """MoCo-v2 whose projectors read ``[features, MLP(view parameters)]``: the query's through the online MLP, the
    key's through its momentum copy (updated with the key encoder and projector)."""

    def __init__(self, encoder: Encoder, **kwargs: object) -> None:
        super().__init__(encoder, **kwargs)
        self.key_augmentation_embedding = copy.deepcopy(self.augmentation_embedding).requires_grad_(False)

    def update_keys(self, m: float) -> None:
        super().update_keys(m)
        momentum_update(self.augmentation_embedding, self.key_augmentation_embedding, m)

    def forward(
        self, v1: torch.Tensor, v2: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, head: int, i: torch.Tensor | None
    ) -> torch.Tensor:
        q = self.projector(torch.cat([self.encoder(v1, i), self.augmentation_embedding(w1)], 1), head)
        with torch.no_grad():
            k = self.key_projector(torch.cat([self.key_encoder(v2, i), self.key_augmentation_embedding(w2)], 1), head)
        loss = info_nce_queue(q, k, self.queues.get(head).clone(), self.temperature)
        self.queues.enqueue(head, gather_no_grad(k))
        return loss


class LooCSimCLR(ContrastiveObjective):
    """LooC on SimCLR: 1 + F projection heads (space 0 all-invariant, space f leaves factor f out).

    ``factors``: the space's factors a key is made for (those the fixed descriptor switches on).
    """

    def __init__(self, encoder: Encoder, *, factors: tuple[str, ...], **kwargs: object) -> None:
        if not factors:
            raise ValueError("LooC needs at least one augmentation factor switched on by --fixed-descriptor")
        self.factors = tuple(factors)
        super().__init__(encoder, **{**kwargs, "num_heads": 1 + len(self.factors), "per_head": True})

    def make_inputs(self, augment, images: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, ...]:  # noqa: ANN001
        return tuple(augment.leave_one_out_views(images, d, self.factors))

    def extra_encoders(self) -> dict[str, Encoder]:
        """``embeddings``: the backbone with every space's head, concatenated (the paper's LooC++)."""
        return {"embeddings": embedding_encoder(copy.deepcopy(self.encoder), self.projector.heads.state_dict())}

    def forward(self, *views: torch.Tensor, head: int, i: torch.Tensor | None) -> torch.Tensor:
        f = self.encoder(torch.cat(views), i)
        z = torch.stack([self.projector(f, s) for s in range(self.num_heads)])  # (S, V N, D)
        return leave_one_out_loss(z.unflatten(1, (len(views), len(views[0]))), self.temperature)


COMPETITORS: dict[str, dict[str, type[ContrastiveObjective]]] = {
    "augself": {"simclr": AugSelfSimCLR, "mocov2": AugSelfMoCoV2},
    "cassle": {"simclr": CASSLESimCLR, "mocov2": CASSLEMoCoV2},
    "looc": {"simclr": LooCSimCLR},
}
"""competitor -> method -> objective."""


def competitor_objective(competitor: str, method: str) -> type[ContrastiveObjective]:
    """The objective of ``competitor`` on ``method`` (ValueError naming what exists otherwise)."""
    if method not in COMPETITORS.get(competitor, {}):
        raise ValueError(
            f"no objective for --competitor {competitor!r} with --method {method!r}; known: "
            + ", ".join(f"{c} ({'/'.join(m)})" for c, m in COMPETITORS.items())
        )
    return COMPETITORS[competitor][method]


def embedding_encoder(backbone: Encoder, heads: dict[str, torch.Tensor]) -> EmbeddingEncoder:
    """An ``EmbeddingEncoder`` of ``backbone`` and the projection heads' state dict ``heads`` (keys ``<k>.<layer>...``
    of a ``ModuleList`` of ``mlp`` heads), its sizes read off the weights."""
    count = 1 + max(int(k.split(".", 1)[0]) for k in heads)
    linears = sorted({int(k.split(".")[1]) for k, v in heads.items() if k.startswith("0.") and v.ndim == 2})
    hidden, dim = heads[f"0.{linears[0]}.weight"].shape[0], heads[f"0.{linears[-1]}.weight"].shape[0]
    enc = EmbeddingEncoder(backbone, heads=count, hidden=hidden, dim=dim, layers=len(linears))
    enc.heads.load_state_dict(heads)
    return enc.eval()


def looc_embeddings(run: str | Path) -> EmbeddingEncoder:
    """The LooC++ encoder of a finished LooC run folder: its encoder and the heads of ``checkpoints/last.ckpt``."""
    from amortinv.encoders import load_encoder

    state = torch.load(Path(run) / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    prefix = "objective.projector.heads."
    heads = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if not heads:
        raise ValueError(f"{run} is not a LooC run: its checkpoint holds no projection heads")
    return embedding_encoder(load_encoder(run), heads)
