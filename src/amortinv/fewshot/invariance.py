"""Per-episode invariance learning on a support set, and the feature cache it reads.

For every image of the pool, the cache holds exact features at each candidate descriptor (all
ones, each training descriptor, and the 1-bit corners when K <= 4) and, for the descriptors a
search may start from, the Jacobian dF/di (forward mode), each computed once. An episode then:

1. starts at the candidate with the lowest support objective (read from the cache);
2. takes ``steps`` projected Adam steps on ``i`` along the exact gradient of the support
   objective under the first-order model ``F(i) = F(i0) + J (i - i0)`` of the support features
   (free: no encoder pass);
3. embeds the support images exactly at the end point and keeps it only if the exact objective
   is lower than at the start (so a poor linear model cannot make an episode worse on its own
   objective); the queries are embedded exactly at the kept descriptor.

Only support images and labels enter steps 1-3: queries never influence ``i`` or ``lam``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from amortinv.encoders.base import Encoder
from amortinv.features import frozen_features
from amortinv.fewshot.settings import EpisodeSearch
from amortinv.spaces import InvarianceSpace
from amortinv.transfer.learn import DescriptorParameter, encode_with_tangents

__all__ = ["FeatureCache", "learn_support_descriptor", "candidate_descriptors"]


def candidate_descriptors(space: InvarianceSpace) -> dict[str, torch.Tensor]:
    """The space's candidate descriptors (all ones, the training descriptors or a fixed sample of them)
    and (K <= 4) every 1-bit corner, by label."""
    rows = list(space.candidate_descriptors())
    if space.dim <= 4:
        rows += [torch.tensor(c, dtype=torch.float32) for c in itertools.product((0.0, 1.0), repeat=space.dim)]
    return {space.label(d): d for d in rows}


@dataclass
class FeatureCache:
    """Exact features (and Jacobians at the search starts) of every image of a pool, per descriptor."""

    encoder: Encoder
    images: torch.Tensor
    size: tuple[int, int]
    device: torch.device
    batch_size: int = 128

    def __post_init__(self) -> None:
        self.feats: dict[str, torch.Tensor] = {}
        self.jacobians: dict[str, torch.Tensor] = {}

    def features(self, label: str, i: torch.Tensor | None) -> torch.Tensor:
        """Features (M, D) of the whole pool at ``i`` (None for a plain encoder)."""
        if label not in self.feats:
            self.feats[label] = frozen_features(
                self.encoder, self.images, i, size=self.size, batch_size=self.batch_size, device=self.device
            )
        return self.feats[label]

    def jacobian(self, label: str, i: torch.Tensor) -> torch.Tensor:
        """dF/di (K, M, D) of the whole pool at ``i``."""
        if label not in self.jacobians:
            self.feats[label], self.jacobians[label] = encode_with_tangents(
                self.encoder, self.images, i, size=self.size, batch_size=self.batch_size, device=self.device
            )
        return self.jacobians[label]

    def exact(self, idx: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """Features (len(idx), D) of some pool images at any ``i`` (one encoder pass)."""
        return frozen_features(
            self.encoder, self.images[idx], i, size=self.size, batch_size=self.batch_size, device=self.device
        )


def learn_support_descriptor(
    cache: FeatureCache,
    starts: dict[str, torch.Tensor],
    support: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
    search: EpisodeSearch,
) -> tuple[torch.Tensor, torch.Tensor, str, bool]:
    """Learn ``i`` on support images ``support`` (indices into the pool) for ``objective(feats)``.

    Returns the descriptor, the support features at it, the start's label and whether the
    search moved (see the module docstring).
    """
    with torch.no_grad():
        start_values = {label: float(objective(cache.features(label, d)[support])) for label, d in starts.items()}
    label = min(start_values, key=start_values.get)
    i0 = starts[label]
    f0, jac = cache.features(label, i0)[support].double(), cache.jacobian(label, i0)[:, support].double()
    param = DescriptorParameter(i0.double(), search.lr_i)
    for _ in range(search.steps):
        with torch.enable_grad():
            value = objective(f0 + torch.einsum("k,ksd->sd", param.value - i0.double(), jac))
            (grad,) = torch.autograd.grad(value, param.value)
        param.step(grad)
    i = param.current().float()
    if torch.equal(i, i0):
        return i0, f0.float(), label, False
    exact = cache.exact(support, i)
    with torch.no_grad():
        if float(objective(exact)) < start_values[label]:
            return i, exact, label, True
    return i0, f0.float(), label, False
