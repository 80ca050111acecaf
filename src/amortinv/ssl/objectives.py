"""The methods' maths as plain PyTorch modules: encoder + heads -> loss of one step (no Lightning).

``objective(v1, v2, head, i)`` returns the loss of two views (B, ...) made at descriptor ``i``
(None for a plain encoder), using projection head ``head`` (the descriptor's index when heads are
per descriptor). ``SimCLRObjective``: NT-Xent over both views of the global batch.
``MoCoV2Objective``: InfoNCE against one queue per head, keys from a momentum copy.
``MoCoV3Objective``: the symmetric loss with a predictor. The momentum copies are updated by
``update_keys(m)`` (the trainer decides ``m``). The LightningModules of ``amortinv.ssl.methods``
wrap these with descriptor sampling, augmentation, optimisation and logging.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from amortinv.encoders.base import Encoder
from amortinv.ssl.distributed import gather_no_grad
from amortinv.ssl.heads import DescriptorHeads, mlp
from amortinv.ssl.losses import info_nce_queue, moco_v3_loss, nt_xent
from amortinv.ssl.optim import momentum_update
from amortinv.ssl.queues import DescriptorQueues

__all__ = ["ContrastiveObjective", "SimCLRObjective", "MoCoV2Objective", "MoCoV3Objective", "OBJECTIVES"]


class ContrastiveObjective(nn.Module):
    """An encoder with ``num_heads`` projection heads (shared unless ``per_head``) and a temperature."""

    last_bn = False

    def __init__(
        self,
        encoder: Encoder,
        *,
        num_heads: int,
        per_head: bool,
        proj_hidden: int,
        proj_dim: int,
        proj_layers: int,
        temperature: float,
    ) -> None:
        super().__init__()
        self.encoder, self.temperature = encoder, temperature
        self.num_heads, self.per_head, self.proj_dim = num_heads, per_head, proj_dim
        self.projector = DescriptorHeads(self._heads(proj_hidden, proj_dim, proj_layers), num_heads, per_head)

    def _heads(self, hidden: int, dim: int, layers: int) -> Callable[[], nn.Module]:
        return lambda: mlp(self.encoder.feature_dim, hidden, dim, layers, last_bn=self.last_bn)

    def make_inputs(self, augment: Callable, images: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The inputs of one step, ahead of ``head`` and ``i``: two views of ``images`` at binary descriptor ``d``."""
        return augment(images, d)

    def project(self, x: torch.Tensor, head: int, i: torch.Tensor | None) -> torch.Tensor:
        """Projections (B, proj_dim) of inputs x at descriptor i."""
        return self.projector(self.encoder(x, i), head)

    def online(self) -> nn.ModuleList:
        """The modules an optimiser trains."""
        return nn.ModuleList([self.encoder, self.projector])

    def extra_encoders(self) -> dict[str, Encoder]:
        """Further encoders the run folder should hold beside the encoder (name -> encoder), e.g. LooC++'s."""
        return {}


class SimCLRObjective(ContrastiveObjective):
    def forward(self, v1: torch.Tensor, v2: torch.Tensor, head: int, i: torch.Tensor | None) -> torch.Tensor:
        z1, z2 = self.project(torch.cat([v1, v2]), head, i).chunk(2)
        return nt_xent(z1, z2, self.temperature)


class _MomentumObjective(ContrastiveObjective):
    """Adds momentum (key) copies of the encoder and projector."""

    def __init__(self, encoder: Encoder, **kwargs: object) -> None:
        super().__init__(encoder, **kwargs)
        self.key_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.key_projector = copy.deepcopy(self.projector).requires_grad_(False)

    def update_keys(self, m: float) -> None:
        """Move the key copies towards the online modules: key = m key + (1 - m) online."""
        momentum_update(self.encoder, self.key_encoder, m)
        momentum_update(self.projector, self.key_projector, m)

    @torch.no_grad()
    def keys(self, x: torch.Tensor, head: int, i: torch.Tensor | None) -> torch.Tensor:
        return self.key_projector(self.key_encoder(x, i), head)


class MoCoV2Objective(_MomentumObjective):
    def __init__(self, encoder: Encoder, *, queue_size: int, **kwargs: object) -> None:
        super().__init__(encoder, **kwargs)
        self.queues = DescriptorQueues(self.num_heads, self.proj_dim, queue_size)

    def forward(self, v1: torch.Tensor, v2: torch.Tensor, head: int, i: torch.Tensor | None) -> torch.Tensor:
        q, k = self.project(v1, head, i), self.keys(v2, head, i)
        loss = info_nce_queue(q, k, self.queues.get(head).clone(), self.temperature)
        self.queues.enqueue(head, gather_no_grad(k))
        return loss


class MoCoV3Objective(_MomentumObjective):
    last_bn = True

    def __init__(self, encoder: Encoder, *, pred_hidden: int, **kwargs: object) -> None:
        super().__init__(encoder, **kwargs)
        dim = self.proj_dim
        self.predictor = DescriptorHeads(lambda: mlp(dim, pred_hidden, dim, 2), self.num_heads, self.per_head)

    def online(self) -> nn.ModuleList:
        return nn.ModuleList([self.encoder, self.projector, self.predictor])

    def forward(self, v1: torch.Tensor, v2: torch.Tensor, head: int, i: torch.Tensor | None) -> torch.Tensor:
        n, both = len(v1), torch.cat([v1, v2])
        q = self.predictor(self.project(both, head, i), head)
        k = self.keys(both, head, i)
        return moco_v3_loss(q[:n], q[n:], k[:n], k[n:], self.temperature)


OBJECTIVES: dict[str, type[ContrastiveObjective]] = {
    "simclr": SimCLRObjective,
    "mocov2": MoCoV2Objective,
    "mocov3": MoCoV3Objective,
}
