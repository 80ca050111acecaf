"""The batched ops of the vision engine against torchvision's functional ops, and the parameter draws
against torchvision's recipes."""

from dataclasses import replace

import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF

from amortinv import InvarianceSpace
from amortinv.augment import VisionAugment
from amortinv.augment import ops as O
from amortinv.augment.params import sample_crop_boxes, sample_view_params
from amortinv.augment.vision import RECIPES, _on_samples

G = InvarianceSpace.from_name("groups2")


def smooth_images(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Random colour images with structure at several scales (float in [0, 1])."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, max(2, h // 4), max(2, w // 4), generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return (0.8 * x + 0.2 * torch.rand(n, 3, h, w, generator=g)).clamp(0, 1)


@pytest.mark.parametrize(
    "box,size", [((3, 5, 17, 21), (32, 32)), ((0, 0, 32, 32), (32, 32)), ((10, 2, 12, 30), (24, 40))]
)
@pytest.mark.parametrize("flip", [False, True])
def test_crop_flip_equals_torchvision_when_upscaling(box, size, flip):
    x = smooth_images(2, 32, 32)
    out = O.resized_crop_flip(x, torch.tensor([box] * 2, dtype=torch.float), torch.tensor([flip] * 2), size)
    ref = TF.resized_crop(x, *box, list(size), antialias=True)
    ref = TF.horizontal_flip(ref) if flip else ref
    assert out.shape == (2, 3, *size)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_crop_downscaling_is_close_to_antialiased_resize():
    x = smooth_images(3, 200, 160, seed=1)
    boxes = torch.tensor([[10, 20, 150, 120], [0, 0, 200, 160], [50, 30, 90, 100]], dtype=torch.float)
    s = O.supersampling(boxes, (48, 48))
    assert s == 5  # 200 rows onto 48: shrink 4.17, rounded up
    out = O.resized_crop_flip(x, boxes, torch.zeros(3, dtype=torch.bool), (48, 48), s)
    aliased = O.resized_crop_flip(x, boxes, torch.zeros(3, dtype=torch.bool), (48, 48), 1)
    for k, (t, lf, h, w) in enumerate(boxes.int().tolist()):
        ref = TF.resized_crop(x[k], t, lf, h, w, [48, 48], antialias=True)
        err, plain = (out[k] - ref).abs().mean(), (aliased[k] - ref).abs().mean()
        assert err < 0.02 and err < 0.5 * plain, (
            f"supersampled crop strays from the antialiased resize: {err} vs {plain}"
        )


@pytest.mark.parametrize(
    "op,ref,factor",
    [
        ("brightness", TF.adjust_brightness, 1.3),
        ("brightness", TF.adjust_brightness, 0.6),
        ("contrast", TF.adjust_contrast, 1.4),
        ("contrast", TF.adjust_contrast, 0.7),
        ("saturation", TF.adjust_saturation, 1.4),
        ("saturation", TF.adjust_saturation, 0.6),
    ],
)
def test_linear_jitter_equals_torchvision(op, ref, factor):
    x = smooth_images(4, 20, 28)
    f = {k: torch.ones(4) for k in ("brightness", "contrast", "saturation")}
    f[op] = torch.tensor([factor, 1.0, factor, 1.0])
    out = O.linear_jitter(x.clone(), f["brightness"], f["contrast"], f["saturation"])
    torch.testing.assert_close(out[0], ref(x[0], factor), atol=1e-6, rtol=0)
    torch.testing.assert_close(out[1], x[1], atol=0, rtol=0)  # factor 1 is the identity, bit for bit


@pytest.mark.parametrize("shift", [-0.1, 0.05, 0.3, -0.5])
def test_hue_equals_torchvision(shift):
    x = smooth_images(3, 16, 16)
    x[0, :, :4, :4] = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)  # pure colours and greys included
    x[0, :, 4:8, :4] = 0.5
    out = O.hue(x, torch.full((3,), shift))
    torch.testing.assert_close(out, TF.adjust_hue(x, shift), atol=2e-5, rtol=0)


def test_grayscale_blur_solarize_equal_torchvision():
    x = smooth_images(3, 24, 30)
    torch.testing.assert_close(O.grayscale(x), TF.rgb_to_grayscale(x, num_output_channels=3), atol=1e-6, rtol=0)
    sigma = torch.tensor([0.1, 0.9, 2.0])
    out = O.gaussian_blur(x, sigma, 5)
    for k, s in enumerate(sigma.tolist()):
        torch.testing.assert_close(out[k], TF.gaussian_blur(x[k], [5, 5], [s, s]), atol=1e-5, rtol=0)
    torch.testing.assert_close(O.solarize(x), TF.solarize(x, 0.5), atol=0, rtol=0)
    with pytest.raises(ValueError, match="too large"):
        O.gaussian_blur(x[..., :4, :4], sigma, 9)


def test_crop_boxes_follow_random_resized_crop():
    torch.manual_seed(0)
    ours = sample_crop_boxes(20000, 32, 48, (0.2, 1.0), (3 / 4, 4 / 3))
    theirs = torch.tensor(
        [T.RandomResizedCrop.get_params(torch.zeros(1, 32, 48), [0.2, 1.0], [3 / 4, 4 / 3]) for _ in range(20000)],
        dtype=torch.float,
    )
    for b in (ours, theirs):
        assert (b[:, 0] >= 0).all() and (b[:, 0] + b[:, 2] <= 32).all() and (b[:, 1] + b[:, 3] <= 48).all()
    area = lambda b: b[:, 2] * b[:, 3] / (32 * 48)  # noqa: E731
    assert abs(area(ours).mean() - area(theirs).mean()) < 0.01
    assert abs((ours[:, 3] / ours[:, 2]).log().mean() - (theirs[:, 3] / theirs[:, 2]).log().mean()) < 0.01
    assert abs(ours[:, 1].mean() - theirs[:, 1].mean()) < 0.3 and abs(ours[:, 0].mean() - theirs[:, 0].mean()) < 0.3
    # an image far outside the ratio range falls back to the clamped centre crop, as torchvision
    thin = sample_crop_boxes(4, 2, 100, (0.9, 1.0), (3 / 4, 4 / 3))
    assert (
        thin.tolist()
        == [[0.0, 48.0, 2.0, 3.0]] * 4
        == [list(map(float, T.RandomResizedCrop.get_params(torch.zeros(1, 2, 100), [0.9, 1.0], [3 / 4, 4 / 3])))] * 4
    )


def test_sampled_parameters_match_the_recipe():
    torch.manual_seed(0)
    n, r = 20000, RECIPES["moco"]
    p = sample_view_params(("crop", "flip", "color_jitter", "grayscale", "blur", "solarize"), r, n, 32, 32)
    for rate, want in ((p.flip, 0.5), (p.jitter, 0.8), (p.grayscale, 0.2), (p.blur, 0.5), (p.solarize, 0.2)):
        assert abs(rate.float().mean() - want) < 0.015
    f = p.jitter_factors
    assert f[:, :3].min() >= 0.6 and f[:, :3].max() <= 1.4 and f[:, 3].abs().max() <= 0.1
    assert (f.mean(0) - torch.tensor([1.0, 1.0, 1.0, 0.0])).abs().max() < 0.01
    assert (p.jitter_order.sort(dim=1).values == torch.arange(4)).all()  # permutations
    position_share = torch.stack([(p.jitter_order == j).float().mean(0) for j in range(4)])
    assert (position_share - 0.25).abs().max() < 0.015  # every op equally likely at every position
    assert 0.1 <= p.blur_sigma.min() and p.blur_sigma.max() <= 2.0 and abs(p.blur_sigma.mean() - 1.05) < 0.02


def test_subset_and_masked_paths_agree():
    x = smooth_images(6, 16, 16)
    mask = torch.tensor([True, False, True, True, False, False])
    shift = torch.linspace(-0.1, 0.1, 6)
    for m in (mask, torch.tensor([False, True, True, True, False, False])):  # scattered, then one contiguous run
        expected = x.clone()
        expected[m] = O.hue(x[m], shift[m])
        for subset in (True, False):  # gathered / whole batch and masked (a run is a slice either way)
            out = _on_samples(x.clone(), m, lambda xs, idx: O.hue(xs, shift[idx]), subset=subset)
            assert torch.equal(out, expected)
        assert not torch.allclose(expected[m], x[m])


def test_views_from_uint8_and_float_agree_and_odd_sizes():
    torch.manual_seed(0)
    u8 = (smooth_images(5, 37, 23) * 255).round().to(torch.uint8)
    aug = VisionAugment(G, (20, 30))
    p = aug.sample(u8, [1, 1])
    torch.testing.assert_close(aug.apply(u8, p), aug.apply(u8.float() / 255, p), atol=1e-5, rtol=0)
    for size, src in (((4, 4), (6, 5)), ((224, 224), (300, 260)), ((9, 40), (9, 40))):
        aug = VisionAugment(G, size)
        for d in G.training_descriptors():
            v1, v2 = aug(torch.randint(0, 256, (3, 3, *src), dtype=torch.uint8), d)
            assert v1.shape == v2.shape == (3, 3, *size) and torch.isfinite(v1).all()


def test_jitter_applies_each_samples_ops_in_its_own_order_like_torchvision():
    x = smooth_images(40, 12, 12)
    torch.manual_seed(0)
    p = sample_view_params(("color_jitter",), RECIPES["simclr"], 40, 12, 12)
    fns = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    expected = x.clone()
    for b in range(40):
        if p.jitter[b]:
            for op in p.jitter_order[b].tolist():
                expected[b] = fns[op](expected[b], float(p.jitter_factors[b, op]))
    torch.testing.assert_close(VisionAugment._jitter(x.clone(), p), expected, atol=2e-5, rtol=0)
    assert len({tuple(o) for o in p.jitter_order.tolist()}) > 10  # many different orders were exercised


def test_chunked_cpu_views_equal_whole_batch_views_and_the_engine_moves_like_a_module(monkeypatch):
    import amortinv.augment.vision as V

    torch.manual_seed(0)
    x = (smooth_images(10, 56, 48) * 255).to(torch.uint8)  # larger than the output: some crops shrink
    aug = VisionAugment(G, 40).to("cpu").float()  # nn.Module plumbing (.to) must keep working
    p = aug.sample(x, [1, 1])
    assert O.supersampling(p.boxes, aug.size) == 2 and p.jitter.sum() >= 5
    whole = aug._view_of(x, replace(p, supersample=2))  # the whole batch in one go, in its own order
    for chunk_images in (3, 64):  # chunks of 3 images; one chunk (both reorder the samples by hue position)
        monkeypatch.setattr(V, "CPU_CHUNK_BYTES", chunk_images * 12 * 40 * 40)
        assert torch.equal(aug.apply(x, p), whole)


def test_ordering_by_hue_position_makes_each_positions_hue_samples_one_run():
    from amortinv.augment.vision import _by_hue_position

    torch.manual_seed(0)
    p = sample_view_params(("color_jitter",), RECIPES["simclr"], 200, 8, 8)
    order = _by_hue_position(p)
    assert sorted(order.tolist()) == list(range(200))  # a permutation
    q = p.select(order)
    for k in range(4):
        idx = ((q.jitter_order[:, k] == 3) & q.jitter).nonzero().squeeze(1)
        assert len(idx) > 20 and idx.tolist() == list(range(int(idx[0]), int(idx[0]) + len(idx)))
    assert not q.jitter[-int((~p.jitter).sum()) :].any()  # the samples without jitter come last
    assert _by_hue_position(sample_view_params(("crop",), RECIPES["simclr"], 5, 8, 8)) is None


def test_each_view_is_a_pure_function_of_the_seed_and_its_parameters():
    x = (smooth_images(8, 32, 32) * 255).to(torch.uint8)
    aug = VisionAugment(G, 32, recipe="moco")
    torch.manual_seed(3)
    p = aug.sample(x, [1, 1])
    torch.manual_seed(3)
    assert torch.equal(aug.view(x, [1, 1]), aug.apply(x, p))
    q = p.select(torch.tensor([2, 5]))
    torch.testing.assert_close(aug.apply(x[[2, 5]], q), aug.apply(x, p)[[2, 5]], atol=1e-6, rtol=0)
