"""The interface every amortinv encoder implements: ``forward(x, i) -> (B, feature_dim)``."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["Encoder", "check_descriptor"]


def check_descriptor(i: Any, k: int, ref: torch.Tensor | None = None) -> torch.Tensor:
    """Check that ``i`` is one descriptor of shape (k,) with finite values in [0, 1].

    Gradients flow through the returned tensor (downstream learning of ``i`` needs them); it is
    cast to ``ref``'s device and floating dtype when ``ref`` is given.

    Raises:
        ValueError: with the expected and received shape or the offending values.
    """
    if isinstance(i, str):
        raise ValueError(
            f"invariance descriptor must be a tensor or a sequence of {k} numbers, got the string {i!r}: "
            "parse text with amortinv.spaces.parse_descriptors(text, space)"
        )
    if not isinstance(i, torch.Tensor):
        try:
            i = torch.as_tensor(i, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"invariance descriptor must be a numeric vector of length {k}, got {i!r}") from err
    if i.ndim != 1 or i.shape[0] != k:
        hint = " (one descriptor per call: the same i for the whole batch)" if i.ndim == 2 else ""
        raise ValueError(f"invariance descriptor must have shape ({k},), got {tuple(i.shape)}{hint}")
    with torch.no_grad():
        if not torch.isfinite(i).all():
            raise ValueError(f"invariance descriptor has non-finite values: {i.tolist()}")
        if (i < 0).any() or (i > 1).any():
            raise ValueError(f"invariance descriptor must lie in [0, 1], got {i.tolist()}")
    if ref is not None:
        i = i.to(device=ref.device, dtype=ref.dtype if torch.is_floating_point(ref) else torch.float32)
    return i


class Encoder(nn.Module):
    """Base class: an image encoder, optionally conditioned on a K-dim invariance descriptor.

    Subclasses implement ``forward(x, i=None)`` returning features (B, feature_dim), ``config``
    (the name and keyword arguments that rebuild them with ``build_encoder``) and ``stages()``.
    """

    def __init__(self, invariance_dim: int = 0) -> None:
        super().__init__()
        self.invariance_dim = int(invariance_dim)

    @property
    def conditioned(self) -> bool:
        """True when the output depends on ``i`` (Hyper-ResNet, Prompt-ViT)."""
        return self.invariance_dim > 0

    @property
    def feature_dim(self) -> int:
        raise NotImplementedError

    @property
    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    def stages(self) -> list[nn.Module]:
        """The encoder's consecutive stages, last one last (for stage-wise fine-tuning)."""
        raise NotImplementedError(f"{type(self).__name__} does not define stages(); fine-tune it whole (stages=0)")

    def kernel_step_gains(self, descriptors: torch.Tensor) -> list[tuple[nn.Parameter, float]]:
        """Learning-rate gains for generated kernels' output layers, averaged over ``descriptors``
        (n, K); see ``HyperConv2d.kernel_step_gain``. Encoders without generated kernels: none."""
        return []

    @property
    def modality(self) -> str:
        """``audio`` for an encoder with a waveform front end, else ``vision`` (see ``amortinv.modality``)."""
        return "audio" if getattr(self, "arch", {}).get("frontend") else "vision"

    @property
    def in_channels(self) -> int:
        return int(self.arch["in_channels"])  # type: ignore[attr-defined]

    def check_inputs(self, x: torch.Tensor | None, i: Any) -> torch.Tensor | None:
        """Validate a batch (B, C, H, W) and a descriptor; returns ``i`` as a tensor (None if plain)."""
        if x is not None and (x.ndim != 4 or x.shape[1] != self.in_channels):
            raise ValueError(f"encoder input must have shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if not self.conditioned:
            return None
        if i is None:
            raise ValueError(f"this encoder is conditioned on a descriptor of length {self.invariance_dim}: pass i")
        ref = next(self.parameters())
        return check_descriptor(i, self.invariance_dim, ref)
