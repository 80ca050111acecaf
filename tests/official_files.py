"""Synthetic checkpoints in the layout of the paper's released AI-MoCo-v2 Hyper-ResNet-50 (facts from the authors' code:
DDP prefixes, query and momentum encoders, per-descriptor heads and queues, optimiser and scaler entries), at a reduced
width: for the import tests and the docs' import command."""

from __future__ import annotations

import torch
import torch.nn.functional as F

WIDTH = 1 / 16  # stage widths 4, 8, 16, 32; bottleneck outputs 16 ... 128
STAGES = (3, 4, 6, 3)


def official_backbone(width: float = WIDTH, k: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors named as in the authors' Hyper-ResNet-50 (stem, per block emb1, hypernet1-3, hypernet_down in a
    stage's first block, bn1-3, the unused bn_down, downsample.1), scaled so that activations stay O(1)."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def norm(name: str, c: int, scale: float = 1.0) -> None:
        sd[f"{name}.weight"] = scale * (1 + 0.1 * torch.randn(c, generator=g))
        sd[f"{name}.bias"] = 0.1 * torch.randn(c, generator=g)
        sd[f"{name}.running_mean"] = 0.1 * torch.randn(c, generator=g)
        sd[f"{name}.running_var"] = 0.5 + torch.rand(c, generator=g)
        sd[f"{name}.num_batches_tracked"] = torch.tensor(1000)

    def generator(name: str, o: int, i: int, ks: int) -> None:
        n = o * i * ks * ks
        sd[f"{name}.layer.0.weight"] = torch.randn(32, 16, generator=g) / 4
        sd[f"{name}.layer.0.bias"] = 0.1 * torch.randn(32, generator=g)
        sd[f"{name}.layer.2.weight"] = torch.randn(n, 32, generator=g) * (2 / (i * ks * ks)) ** 0.5 / 8
        sd[f"{name}.layer.2.bias"] = torch.randn(n, generator=g) * (2 / (i * ks * ks)) ** 0.5

    c = [round(v * width) for v in (64, 128, 256, 512)]
    sd["conv1.weight"] = torch.randn(c[0], 3, 7, 7, generator=g) * (2 / 147) ** 0.5
    norm("bn1", c[0])
    cin = c[0]
    for s, blocks in enumerate(STAGES):
        for b in range(blocks):
            p = f"layer{s + 1}.{b}"
            sd[f"{p}.emb1.weight"] = torch.randn(16, k, generator=g)
            for name, o, i, ks in (
                ("hypernet1", c[s], cin, 1),
                ("hypernet2", c[s], c[s], 3),
                ("hypernet3", 4 * c[s], c[s], 1),
            ):
                generator(f"{p}.{name}", o, i, ks)
            for name, ch, scale in (
                ("bn1", c[s], 1.0),
                ("bn2", c[s], 1.0),
                ("bn3", 4 * c[s], 0.2),
                ("bn_down", 4 * c[s], 1.0),
            ):
                norm(f"{p}.{name}", ch, scale)  # a small last BatchNorm per block keeps the residual sum O(1)
            if b == 0:
                generator(f"{p}.hypernet_down", 4 * c[s], cin, 1)
                norm(f"{p}.downsample.1", 4 * c[s], 0.5)
            cin = 4 * c[s]
    return sd


def official_checkpoint(backbone: dict[str, torch.Tensor], dim: int = 16, queue: int = 64) -> dict:
    """The released file's layout: {epoch, arch, state_dict, optimizer, scaler}, DDP prefixes, both encoders, heads, queues."""
    feat = backbone["layer4.2.bn3.weight"].shape[0]
    state = {}
    for prefix, heads in (("module.base_encoder.", "predictor_b"), ("module.momentum_encoder.", "predictor_m")):
        state.update({prefix + k: v.clone() for k, v in backbone.items()})
        for j in range(3):
            state.update(
                {
                    f"{prefix}{heads}.{j}.0.weight": torch.randn(feat, feat),
                    f"{prefix}{heads}.{j}.0.bias": torch.zeros(feat),
                    f"{prefix}{heads}.{j}.2.weight": torch.randn(dim, feat),
                    f"{prefix}{heads}.{j}.2.bias": torch.zeros(dim),
                }
            )
    for name in ("dorsal", "ventral", "default"):
        state[f"module.queue_{name}"] = F.normalize(torch.randn(dim, queue), dim=0)
        state[f"module.queue_ptr_{name}"] = torch.zeros(1, dtype=torch.long)
    trained = [v for k, v in state.items() if k.startswith("module.base_encoder.") and v.is_floating_point()]
    optimizer = {
        "state": {n: {"momentum_buffer": torch.zeros_like(v)} for n, v in enumerate(trained)},
        "param_groups": [{"lr": 0.03, "momentum": 0.9, "weight_decay": 1e-4, "params": list(range(len(trained)))}],
    }
    return {
        "epoch": 200,
        "arch": "resnet50",
        "state_dict": state,
        "optimizer": optimizer,
        "scaler": {
            "scale": 65536.0,
            "growth_factor": 2.0,
            "backoff_factor": 0.5,
            "growth_interval": 2000,
            "_growth_tracker": 0,
        },
    }
