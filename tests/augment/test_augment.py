import pytest
import torch

from amortinv import InvarianceSpace
from amortinv.augment import VisionAugment

G = InvarianceSpace.from_name("groups2")


def half_dark(n: int = 64, size: int = 32) -> torch.Tensor:
    """Grey images dark on the left half, bright on the right: geometry is readable after any appearance op."""
    x = torch.full((n, 3, size, size), 200, dtype=torch.uint8)
    x[..., : size // 2] = 40
    return x


def left_minus_right(views: torch.Tensor) -> torch.Tensor:
    w = views.shape[-1]
    return views[..., : w // 2 - 2].mean(dim=(1, 2, 3)) - views[..., w // 2 + 2 :].mean(dim=(1, 2, 3))


def test_shapes_dtype_and_normalisation(images):
    aug = VisionAugment(G, 24)
    v1, v2 = aug(images, [1, 1])
    assert v1.shape == v2.shape == (8, 3, 24, 24) and v1.dtype == torch.float32
    # spatial+appearance off-by-factor: with everything off the views are the normalised base image
    off = VisionAugment(InvarianceSpace(name="t", factors=("spatial",), ops={"spatial": ("crop",)}, min_active=0), 32)
    a, b = off(images, [0])
    expected = off.normalise(images.float() / 255)
    assert torch.allclose(a, expected) and torch.allclose(b, expected)


def test_spatial_off_keeps_geometry_identical():
    torch.manual_seed(0)
    aug = VisionAugment(G, 32)
    x = half_dark()
    for _ in range(3):
        v1, v2 = aug(x, [0, 1])  # appearance only
        d1, d2 = left_minus_right(v1), left_minus_right(v2)
        assert (d1 < 0).all() and (d2 < 0).all(), "appearance ops must never move or flip content"
        # the dark/bright edge stays in the middle: columns left of centre darker than right in both views
        col1, col2 = v1.mean(dim=(1, 2)), v2.mean(dim=(1, 2))
        assert (col1[:, :14].max(1).values < col1[:, 18:].min(1).values).all()
        assert (col2[:, :14].max(1).values < col2[:, 18:].min(1).values).all()
    # with spatial on, some samples are flipped: the same check fails for them
    v1, _ = aug(x, [1, 0])
    assert (left_minus_right(v1) > 0).any()


def test_appearance_off_keeps_colours():
    torch.manual_seed(0)
    aug = VisionAugment(G, 32)
    x = torch.zeros(32, 3, 32, 32, dtype=torch.uint8)
    x[:, 0] = 255  # pure red
    v1, v2 = aug(x, [1, 0])  # spatial only: crops/flips of a constant image leave it unchanged
    red = aug.normalise(x.float() / 255)
    assert torch.allclose(v1, red, atol=1e-5) and torch.allclose(v2, red, atol=1e-5)
    w1, _ = aug(x, [0, 1])
    assert not torch.allclose(w1, red, atol=1e-3)


def test_per_sample_randomness_and_two_independent_views():
    torch.manual_seed(1)
    aug = VisionAugment(G, 32)
    x = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8).repeat(16, 1, 1, 1)
    for d in G.training_descriptors():
        v1, v2 = aug(x, d)
        flat = v1.flatten(1)
        distinct = {tuple(r.round(decimals=3).tolist()) for r in flat}
        assert len(distinct) > 8, f"samples of one batch share their random parameters for {d.tolist()}"
        assert not torch.allclose(v1, v2)


def test_reproducible_with_seed(images):
    aug = VisionAugment(G, 32)
    torch.manual_seed(5)
    a = aug(images, [1, 1])
    torch.manual_seed(5)
    b = aug(images, [1, 1])
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_reference_recipe_makes_every_appearance_view_grey(images):
    torch.manual_seed(0)
    ref = VisionAugment(G, 32, recipe="reference")
    v, _ = ref(images, [0, 1])
    rgb = ref.denormalise(v)
    assert (rgb.max(1).values - rgb.min(1).values).max() < 1e-4
    default, _ = VisionAugment(G, 32)(images, [0, 1])
    rgb = VisionAugment(G, 32).denormalise(default)
    assert (rgb.max(1).values - rgb.min(1).values).max() > 0.05


def test_moco_recipe_adds_solarize_to_appearance():
    moco = VisionAugment(G, 32, recipe="moco")
    assert moco.active_ops([0, 1]) == ("color_jitter", "grayscale", "blur", "solarize")
    assert moco.active_ops([1, 0]) == ("crop", "flip")
    ind = VisionAugment(InvarianceSpace.from_name("individual5"), 32)
    assert ind.active_ops([1, 0, 0, 0, 1]) == ("crop", "blur")


def test_float_input_and_resizing():
    x = torch.rand(4, 3, 48, 40)
    aug = VisionAugment(G, 32)
    v1, _ = aug(x, [0, 1])
    assert v1.shape == (4, 3, 32, 32)
    v1, _ = aug(x, [1, 0])
    assert v1.shape == (4, 3, 32, 32)


def test_bad_inputs():
    aug = VisionAugment(G, 32)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        aug(torch.zeros(3, 32, 32), [1, 0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        aug(torch.full((2, 3, 32, 32), 2.0), [1, 0])
    with pytest.raises(ValueError, match="binary"):
        aug(torch.zeros(2, 3, 32, 32), [0.5, 1])
    with pytest.raises(ValueError, match="shape"):
        aug(torch.zeros(2, 3, 32, 32), [1, 0, 1])
    with pytest.raises(ValueError, match="does not know"):
        VisionAugment(InvarianceSpace.from_name("audio7"), 32)
    with pytest.raises(ValueError, match="recipe"):
        VisionAugment(G, 32, recipe="fancy")
