"""Every entry of every registry works (as timm tests every model): encoders, methods and competitors, recipes,
spaces, datasets' modalities."""

from __future__ import annotations

import pytest
import torch

from amortinv.augment.audio import AUDIO_RECIPES, AudioAugment
from amortinv.augment.vision import RECIPES, VisionAugment
from amortinv.encoders import build_encoder
from amortinv.encoders.registry import ENCODERS
from amortinv.spaces import BUILTIN_SPACES
from amortinv.ssl.competitors import COMPETITORS
from amortinv.ssl.config import COMPETITOR_METHODS, METHOD_DEFAULTS
from amortinv.ssl.methods import METHODS
from amortinv.ssl.objectives import OBJECTIVES


def _small(name: str) -> dict:
    if "resnet" in name:
        return {"cifar_stem": True, "width": 0.0625}
    return {"img_size": 16, "patch_size": 8, "dim": 32, "depth": 1, "heads": 2, "projectors": 2}


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_every_encoder_builds_and_maps_a_batch_to_features(name):
    torch.manual_seed(0)
    enc = build_encoder(name, invariance_dim=2, **_small(name)).eval()
    x = torch.rand(3, 3, 16, 16) if "vit" in name else torch.rand(3, 3, 32, 32)
    i = torch.tensor([1.0, 0.0]) if enc.conditioned else None
    feats = enc(x, i)
    assert feats.shape == (3, enc.feature_dim) and torch.isfinite(feats).all()
    assert enc.conditioned == name.startswith(("hyper_", "prompt_"))
    assert (
        build_encoder(enc.config["name"], **{k: v for k, v in enc.config.items() if k != "name"}).feature_dim
        == enc.feature_dim
    )


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_has_an_objective_and_defaults_and_computes_a_finite_loss(method):
    from amortinv.spaces import InvarianceSpace

    assert method in OBJECTIVES and method in METHOD_DEFAULTS
    space = InvarianceSpace.from_name("groups2")
    torch.manual_seed(0)
    enc = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.0625)
    module = METHODS[method](
        enc, space, image_size=16, proj_hidden=16, proj_dim=8, **({"queue_size": 8} if method == "mocov2" else {})
    )
    inputs = module.views(torch.randint(0, 255, (4, 3, 16, 16), dtype=torch.uint8), 0, 0)
    loss = module.objective(*inputs, head=0, i=space.training_descriptors()[0])
    assert loss.ndim == 0 and torch.isfinite(loss)


@pytest.mark.parametrize("competitor,method", [(c, m) for c, ms in sorted(COMPETITORS.items()) for m in sorted(ms)])
def test_every_competitor_is_declared_where_the_option_is_checked_and_trains_a_step(competitor, method):
    from amortinv.spaces import InvarianceSpace

    assert method in COMPETITOR_METHODS[competitor]
    space = InvarianceSpace.from_name("groups2")
    torch.manual_seed(0)
    enc = build_encoder("resnet18", cifar_stem=True, width=0.0625)
    module = METHODS[method](enc, space, image_size=16, fixed_descriptor=[1.0, 1.0], proj_hidden=16, proj_dim=8,
                             competitor=competitor, **({"queue_size": 8} if method == "mocov2" else {}))  # fmt: skip
    inputs = module.views(torch.randint(0, 255, (4, 3, 16, 16), dtype=torch.uint8), 0, 0)
    loss = module.objective(*inputs, head=0, i=None)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in enc.parameters() if p.requires_grad)


def test_the_competitor_tables_agree():
    assert {c: tuple(sorted(m)) for c, m in COMPETITORS.items()} == {
        c: tuple(sorted(m)) for c, m in COMPETITOR_METHODS.items()
    }


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_vision_recipe_makes_two_views(recipe):
    torch.manual_seed(0)
    v1, v2 = VisionAugment(BUILTIN_SPACES["groups2"], 16, recipe=recipe)(
        torch.randint(0, 255, (4, 3, 20, 20), dtype=torch.uint8), [1, 1]
    )
    assert v1.shape == v2.shape == (4, 3, 16, 16) and not torch.equal(v1, v2)


@pytest.mark.parametrize("recipe", sorted(AUDIO_RECIPES))
def test_every_audio_recipe_makes_two_views(recipe):
    torch.manual_seed(0)
    space = BUILTIN_SPACES["audio7"]
    v1, v2 = AudioAugment(space, 800, recipe=recipe)(torch.randn(4, 1, 1000), torch.ones(space.dim))
    assert v1.shape == v2.shape == (4, 1, 800) and not torch.equal(v1, v2)


@pytest.mark.parametrize("name", sorted(BUILTIN_SPACES))
def test_every_builtin_space_round_trips_and_samples_its_training_descriptors(name):
    from amortinv.spaces import InvarianceSpace

    space = BUILTIN_SPACES[name]
    assert InvarianceSpace.from_config(space.to_config()) == space
    drawn = {tuple(space.sample(step, seed=0).tolist()) for step in range(200)}
    assert drawn <= {tuple(d.tolist()) for d in space.training_descriptors()} and len(drawn) > 1


@pytest.mark.parametrize("name", ["vision", "audio"])
def test_every_modality_hands_out_its_measured_transforms_and_each_identity_changes_nothing(name):
    from amortinv.modality import MODALITIES

    modality = MODALITIES[name]
    measured = modality.measurement()
    assert measured.modality == name and set(measured.groups["all"]) == set(measured.transforms)
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16) if name == "vision" else 0.1 * torch.randn(2, 1, 800)
    modality.check((x * 255).to(torch.uint8) if name == "vision" else x)  # a raw batch of this modality
    for t in measured.transforms:
        assert measured.identity[t] in measured.grids[t] and measured.identity[t] not in measured.params(t)
        assert torch.allclose(measured.apply(t, x, measured.identity[t]), x, atol=1e-4), t
    with pytest.raises(ValueError, match=f"unknown {name} transform"):
        measured.apply("no_such_transform", x, 1.0)
