"""One feature path: every entry point that computes frozen features at a fixed descriptor leaves the encoder's modes as
it found them and gives features that do not depend on the batch size (eval-mode BatchNorm)."""

from __future__ import annotations

import pytest
import torch

from amortinv.augment import VisionAugment
from amortinv.encoders import build_encoder
from amortinv.features import frozen_features
from amortinv.fewshot.invariance import FeatureCache
from amortinv.measure.invariance import invariance_grid, invariance_path, measure_invariance
from amortinv.spaces import load_space
from amortinv.ssl.knn import extract_features

torch.manual_seed(0)
IMAGES = torch.randint(0, 256, (20, 3, 16, 16), dtype=torch.uint8)
DESCRIPTOR = torch.tensor([0.3, 0.8])


def encoder_in_mixed_modes() -> torch.nn.Module:
    """A Hyper-ResNet in training mode with one block in eval mode, its BatchNorm statistics moved off their init."""
    torch.manual_seed(1)
    enc = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.0625).train()
    with torch.no_grad():
        enc(torch.randn(8, 3, 16, 16) * 2 + 1, DESCRIPTOR)  # a training pass updates the running statistics
    enc.layer2.eval()
    return enc


def modes(module: torch.nn.Module) -> list[bool]:
    return [m.training for m in module.modules()]


class _Labelled(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return len(IMAGES)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, int]:
        return IMAGES[k], k % 2


def _entry_points():
    floats = IMAGES.float() / 255
    augment = VisionAugment(load_space("groups2"), 16)
    return {
        "frozen_features": lambda enc, bs: frozen_features(enc, IMAGES, DESCRIPTOR, batch_size=bs),
        "knn extract_features": lambda enc, bs: extract_features(enc, _Labelled(), augment, DESCRIPTOR, batch_size=bs)[
            0
        ],
        "few-shot FeatureCache": lambda enc, bs: FeatureCache(
            enc, IMAGES, (16, 16), torch.device("cpu"), batch_size=bs
        ).features("x", DESCRIPTOR),
        "measure_invariance": lambda enc, bs: torch.tensor(
            [
                r["cosine"]
                for r in measure_invariance(
                    enc, floats[:6], [DESCRIPTOR], ["hflip", "brightness"], floats[6:], labels=["x"], batch_size=bs
                )["results"]["x"]["transforms"].values()
            ]
        ),
        "invariance_path": lambda enc, bs: torch.tensor(
            [p["cosine"] for p in invariance_path(enc, floats[:6], "hflip", [1.0, 0.0], [0.0, 1.0], 3, batch_size=bs)]
        ),
        "invariance_grid": lambda enc, bs: invariance_grid(enc, floats[:6], "brightness", steps=2, batch_size=bs),
    }


@pytest.mark.parametrize("name", list(_entry_points()))
def test_feature_entry_points_restore_modes_and_do_not_depend_on_the_batch_size(name):
    fn = _entry_points()[name]
    enc = encoder_in_mixed_modes()
    before = modes(enc)
    small, large = fn(enc, 3), fn(enc, 64)
    assert modes(enc) == before, f"{name} changed the encoder's train/eval modes"
    torch.testing.assert_close(small, large, atol=1e-5, rtol=1e-5)
    enc.eval()
    reference = fn(enc, 64)
    torch.testing.assert_close(large, reference, atol=1e-6, rtol=0)  # eval mode was used, not the batch statistics


def test_a_plain_encoder_ignores_the_descriptor():
    enc = build_encoder("resnet18", cifar_stem=True, width=0.0625)
    torch.testing.assert_close(
        frozen_features(enc, IMAGES, DESCRIPTOR), frozen_features(enc, IMAGES, None), atol=0, rtol=0
    )
