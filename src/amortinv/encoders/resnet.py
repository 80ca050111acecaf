"""One ResNet definition for plain and Hyper-ResNets (BasicBlock and Bottleneck).

A Hyper-ResNet is the same network with every block conv (downsample convs included) a
``HyperConv2d`` fed the block's embedding of the descriptor; the stem, every BatchNorm and any
head are shared, ordinary layers (SPEC section 3). Module names follow torchvision's ResNet,
so a plain or materialised encoder's state dict loads into ``torchvision.models.resnet*`` with
only the classifier ``fc`` missing (ImageNet stem).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from amortinv.checks import at_least, finite
from amortinv.encoders.base import Encoder
from amortinv.encoders.frontend import LogMel
from amortinv.encoders.hyper import BlockEmbedding, HyperConv2d, PlainConv2d

__all__ = ["ResNet", "RESNET_LAYERS"]

RESNET_LAYERS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
}

Conv = HyperConv2d | PlainConv2d


class _Block(nn.Module):
    """Shared plumbing of both block types: the optional embedding and the shortcut."""

    expansion = 1

    def _shortcut(self, inplanes: int, planes: int, stride: int, conv: Any) -> None:
        out = planes * self.expansion
        self.downsample = (
            nn.Sequential(conv(inplanes, out, 1, stride, 0), nn.BatchNorm2d(out))
            if stride != 1 or inplanes != out
            else None
        )

    def _identity(self, x: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        if self.downsample is None:
            return x
        return self.downsample[1](self.downsample[0](x, z))

    def _z(self, i: torch.Tensor | None) -> torch.Tensor | None:
        return None if self.embed is None or i is None else self.embed(i)


class BasicBlock(_Block):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int, conv: Any, embed: BlockEmbedding | None) -> None:
        super().__init__()
        self.embed = embed
        self.conv1 = conv(inplanes, planes, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv(planes, planes, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self._shortcut(inplanes, planes, stride, conv)

    def forward(self, x: torch.Tensor, i: torch.Tensor | None = None) -> torch.Tensor:
        z = self._z(i)
        out = F.relu(self.bn1(self.conv1(x, z)))
        out = self.bn2(self.conv2(out, z))
        return F.relu(out + self._identity(x, z))


class Bottleneck(_Block):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int, conv: Any, embed: BlockEmbedding | None) -> None:
        super().__init__()
        self.embed = embed
        self.conv1 = conv(inplanes, planes, 1, 1, 0)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv(planes, planes, 3, stride, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv(planes, planes * 4, 1, 1, 0)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self._shortcut(inplanes, planes, stride, conv)

    def forward(self, x: torch.Tensor, i: torch.Tensor | None = None) -> torch.Tensor:
        z = self._z(i)
        out = F.relu(self.bn1(self.conv1(x, z)))
        out = F.relu(self.bn2(self.conv2(out, z)))
        out = self.bn3(self.conv3(out, z))
        return F.relu(out + self._identity(x, z))


def _is_hyper_key(key: str) -> bool:
    """State-dict keys that exist only in a Hyper-ResNet (block embeddings, hypernetwork layers)."""
    parts = key.split(".")
    return "embed" in parts or parts[-2] in ("hidden", "out")


class ResNet(Encoder):
    """Plain or invariance-conditioned (hyper) ResNet returning pooled features (B, D).

    Args:
        depth: 18, 34 or 50.
        invariance_dim: K; 0 builds a plain ResNet that ignores ``i``.
        cifar_stem: 3x3 stride-1 stem without max-pool (small images) instead of ImageNet's.
        width: channel multiplier (1.0 = torchvision's widths).
        in_channels: input channels (1 for spectrograms).
        embed_dim, hidden_dim: hypernetwork sizes (16 and 32 in the paper).
        frontend: log-mel settings (``amortinv.encoders.frontend.LogMel``; ``default_frontend(rate)``):
            the encoder then takes waveforms (B, 1, L) and needs ``in_channels=1``.
    """

    def __init__(
        self,
        depth: int = 18,
        invariance_dim: int = 0,
        cifar_stem: bool = False,
        width: float = 1.0,
        in_channels: int = 3,
        embed_dim: int = 16,
        hidden_dim: int = 32,
        frontend: dict[str, Any] | None = None,
    ) -> None:
        if depth not in RESNET_LAYERS:
            raise ValueError(f"ResNet depth must be one of {sorted(RESNET_LAYERS)}, got {depth}")
        finite("width", width, above=0.0)
        for name, value, low in (
            ("in_channels", in_channels, 1),
            ("invariance_dim", invariance_dim, 0),
            ("embed_dim", embed_dim, 1),
            ("hidden_dim", hidden_dim, 1),
        ):
            at_least(name, value, low)
        super().__init__(invariance_dim)
        self.arch = {
            "depth": depth,
            "invariance_dim": invariance_dim,
            "cifar_stem": cifar_stem,
            "width": width,
            "in_channels": in_channels,
            "embed_dim": embed_dim,
            "hidden_dim": hidden_dim,
        }
        self.frontend = LogMel(**frontend) if frontend else None
        if self.frontend is not None:
            if in_channels != 1:
                raise ValueError(
                    f"a log-mel front end makes 1-channel spectrograms: in_channels must be 1, got {in_channels}"
                )
            self.arch["frontend"] = dict(self.frontend.settings)
        kind, layers = RESNET_LAYERS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        widths = [max(1, int(round(c * width))) for c in (64, 128, 256, 512)]
        hyper = invariance_dim > 0

        def conv(cin: int, cout: int, k: int, stride: int, pad: int) -> Conv:
            if hyper:
                return HyperConv2d(cin, cout, k, stride, pad, embed_dim=embed_dim, hidden_dim=hidden_dim)
            return PlainConv2d(cin, cout, k, stride, pad)

        if cifar_stem:
            self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.bn1 = nn.BatchNorm2d(widths[0])
        inplanes = widths[0]
        for stage, (planes, blocks) in enumerate(zip(widths, layers)):
            stage_blocks = nn.ModuleList()
            for b in range(blocks):
                stride = 2 if stage > 0 and b == 0 else 1
                embed = BlockEmbedding(invariance_dim, embed_dim) if hyper else None
                stage_blocks.append(block(inplanes, planes, stride, conv, embed))
                inplanes = planes * block.expansion
            self.add_module(f"layer{stage + 1}", stage_blocks)
        self._feature_dim = inplanes

    @property
    def feature_dim(self) -> int:
        return self._feature_dim

    @property
    def config(self) -> dict[str, Any]:
        name = ("hyper_resnet" if self.invariance_dim else "resnet") + str(self.arch["depth"])
        kwargs = {k: v for k, v in self.arch.items() if k != "depth"}
        return {"name": name, **kwargs}

    def stages(self) -> Sequence[nn.ModuleList]:
        """The four residual stages (for stage-wise fine-tuning)."""
        return [self.layer1, self.layer2, self.layer3, self.layer4]

    def kernel_step_gains(self, descriptors: torch.Tensor) -> list[tuple[nn.Parameter, float]]:
        gains = []
        if not self.invariance_dim:
            return gains
        for stage in self.stages():
            for blk in stage:
                with torch.no_grad():
                    zs = blk.embed(descriptors.to(blk.embed.weight))
                for mod in blk.modules():
                    if isinstance(mod, HyperConv2d):
                        g = mod.kernel_step_gain(zs)
                        gains += [(mod.out.weight, g), (mod.out.bias, g)]
        return gains

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(F.relu(self.bn1(self.conv1(x))))

    def forward(self, x: torch.Tensor, i: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled features (B, feature_dim) of images x (B, C, H, W) (waveforms (B, 1, L) with a front end) at descriptor i (K,)."""
        x = self.frontend(x) if self.frontend is not None else x
        i = self.check_inputs(x, i)
        out = self.stem(x)
        for stage in self.stages():
            for blk in stage:
                out = blk(out, i)
        return torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)

    @torch.no_grad()
    def materialise(self, i: torch.Tensor | Sequence[float]) -> ResNet:
        """A plain ResNet with the kernels generated at ``i`` written in (same outputs in eval mode)."""
        if not self.invariance_dim:
            raise ValueError("materialise() needs a Hyper-ResNet; this ResNet is plain already")
        i = self.check_inputs(None, i)
        plain = ResNet(**{**self.arch, "invariance_dim": 0}).to(self.conv1.weight.device)
        state = {k: v for k, v in self.state_dict().items() if not _is_hyper_key(k)}
        for s, stage in enumerate(self.stages()):
            for b, blk in enumerate(stage):
                z = blk.embed(i)
                for name, mod in blk.named_modules():
                    if isinstance(mod, HyperConv2d):
                        state[f"layer{s + 1}.{b}.{name}.weight"] = mod.weight(z)
        plain.load_state_dict(state, strict=True)
        return plain.train(self.training)
