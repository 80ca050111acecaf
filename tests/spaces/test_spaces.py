import pytest
import torch

from amortinv import InvarianceSpace, parse_descriptors, quantise


def test_builtin_descriptor_counts_and_order():
    g = InvarianceSpace.from_name("groups2")
    assert g.factors == ("spatial", "appearance")
    assert g.training_descriptors().tolist() == [[1, 0], [0, 1], [1, 1]]
    ind = InvarianceSpace.from_name("individual5").training_descriptors()
    assert ind.shape == (26, 5) and ind.dtype == torch.float32
    assert ind[0].tolist() == [0, 0, 0, 1, 1]
    assert ind[-1].tolist() == [1, 1, 1, 1, 1]
    assert (ind.sum(1) >= 2).all() and len({tuple(r) for r in ind.tolist()}) == 26
    # binary order: each row's value as a binary number increases
    weights = 2 ** torch.arange(4, -1, -1).float()
    assert ((ind @ weights).diff() > 0).all()
    audio = InvarianceSpace.from_name("audio7")
    assert audio.training_descriptors().shape == (120, 7)
    assert audio.factors[0] == "pitch_shift" and audio.factors[-1] == "time_stretch"


def test_unknown_space_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown invariance space 'groups3'"):
        InvarianceSpace.from_name("groups3")


def test_user_defined_space_roundtrip():
    cfg = {"name": "mine", "factors": {"geo": ["crop"], "colour": ["color_jitter", "grayscale"]}, "min_active": 1}
    space = InvarianceSpace.from_config(cfg)
    assert space.training_descriptors().tolist() == [[0, 1], [1, 0], [1, 1]]
    assert space.ops["colour"] == ("color_jitter", "grayscale")
    assert InvarianceSpace.from_config(space.to_config()) == space
    with pytest.raises(ValueError, match="unknown keys"):
        InvarianceSpace.from_config({"factors": ["a"], "bogus": 1})
    with pytest.raises(ValueError, match="repeated factor"):
        InvarianceSpace(name="x", factors=("a", "a"))


def test_sampling_is_stateless_same_on_ranks_and_after_resume():
    space = InvarianceSpace.from_name("individual5")
    run = [space.sample_index(t, seed=3) for t in range(200)]
    # two "ranks" each with their own fresh object draw the same sequence
    rank0 = [InvarianceSpace.from_name("individual5").sample_index(t, seed=3) for t in range(200)]
    assert run == rank0
    # resuming at step 120 continues the same sequence
    assert [space.sample_index(t, seed=3) for t in range(120, 200)] == run[120:]
    # the draw depends on the seed and covers the whole set roughly uniformly
    assert run != [space.sample_index(t, seed=4) for t in range(200)]
    counts = torch.bincount(torch.tensor([space.sample_index(t) for t in range(2600)]), minlength=26)
    assert counts.min() > 50 and counts.max() < 160
    assert torch.equal(space.sample(7, seed=3), space.training_descriptors()[run[7]])


def test_validate_accepts_good_and_names_the_problem():
    g = InvarianceSpace.from_name("groups2")
    assert g.validate([0.25, 1]).tolist() == [0.25, 1.0]
    with pytest.raises(ValueError, match=r"groups2.*shape \(2,\).*\(3,\)"):
        g.validate([1, 0, 1])
    with pytest.raises(ValueError, match=r"groups2.*\[0, 1\]"):
        g.validate([1.5, 0])
    with pytest.raises(ValueError, match="non-finite"):
        g.validate([float("nan"), 0])
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        g.validate(torch.ones(1, 2))
    with pytest.raises(ValueError, match="binary"):
        g.validate([0.5, 1], binary=True)
    with pytest.raises(ValueError, match="numeric"):
        g.validate("ab")


def test_quantise_levels_and_ties():
    i = torch.tensor([0.0, 0.2, 0.49, 0.5, 0.51, 0.8, 1.0])
    assert quantise(i, 1).tolist() == [0, 0, 0, 1, 1, 1, 1]
    q2 = quantise(i, 2)
    assert torch.allclose(q2 * 3, torch.tensor([0.0, 1, 1, 2, 2, 2, 3]))
    q3 = quantise(torch.linspace(0, 1, 50), 3)
    assert len(q3.unique()) == 8 and ((q3 * 7 - (q3 * 7).round()).abs() < 1e-5).all()
    x = torch.rand(100)
    assert (quantise(x, 3) - x).abs().max() <= 0.5 / 7 + 1e-6
    with pytest.raises(ValueError, match="bits"):
        quantise(i, 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        quantise(torch.tensor([1.2]), 1)


def test_parse_descriptors():
    g = InvarianceSpace.from_name("groups2")
    assert parse_descriptors("1,0; 0,1;1,1", g).tolist() == [[1, 0], [0, 1], [1, 1]]
    with pytest.raises(ValueError, match="could not parse"):
        parse_descriptors("1,a", g)
    with pytest.raises(ValueError, match="shape"):
        parse_descriptors("1,0,1", g)


def test_ones_share_weights_sampling_statelessly():
    g = InvarianceSpace.from_name("groups2")
    w = g.sampling_weights(0.5)
    assert w.tolist() == pytest.approx([0.25, 0.25, 0.5])  # [1,0], [0,1], [1,1]
    draws = [g.sample_index(t, seed=3, weights=w) for t in range(4000)]
    assert abs(draws.count(2) / 4000 - 0.5) < 0.03 and abs(draws.count(0) / 4000 - 0.25) < 0.03
    assert draws[:50] == [g.sample_index(t, seed=3, weights=w) for t in range(50)]
    assert g.sampling_weights(None) is None
    with pytest.raises(ValueError, match="ones_share"):
        g.sampling_weights(1.0)
    no_ones = InvarianceSpace("s", ("a", "b"), descriptors=((1, 0), (0, 1)))
    with pytest.raises(ValueError, match="all-ones"):
        no_ones.sampling_weights(0.5)
