"""AugSelf, CASSLE and LooC: the parameters handed to them, their losses by hand, LooC's views, resume, DDP."""

from __future__ import annotations

import json
import math

import lightning as L
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from amortinv.augment.params import PARAM_NAMES, ViewParams
from amortinv.augment.vision import VisionAugment
from amortinv.encoders import load_encoder
from amortinv.spaces import InvarianceSpace
from amortinv.ssl.losses import augself_loss, augself_targets, leave_one_out_loss
from amortinv.ssl.pretrain import PretrainConfig, run_pretrain

SPACE = InvarianceSpace.from_name("groups2")


def test_the_parameter_vector_remakes_the_views_it_came_with(images):
    aug = VisionAugment(SPACE, 24)
    torch.manual_seed(3)
    v1, v2, w1, w2 = aug.views_with_params(images, [1, 1])
    assert w1.shape == (len(images), len(PARAM_NAMES)) and not torch.equal(w1, w2)
    for view, w in ((v1, w1), (v2, w2)):
        remade = aug.apply(images, ViewParams.from_vector(w, 32, 32))
        assert torch.allclose(remade, view, atol=1e-5)
    assert ((w1[:, 2:4] > 0) & (w1[:, 2:4] <= 1)).all()  # crop sizes as fractions of the image


def test_the_vector_reads_each_op_as_documented():
    p = ViewParams(
        boxes=torch.tensor([[4.0, 8.0, 16.0, 8.0]]),
        flip=torch.tensor([True]),
        jitter=torch.tensor([False]),
        jitter_factors=torch.tensor([[1.2, 0.7, 1.1, 0.05]]),
        jitter_order=torch.tensor([[3, 0, 2, 1]]),
        blur=torch.tensor([True]),
        blur_sigma=torch.tensor([0.8]),
    )
    row = dict(zip(PARAM_NAMES, p.vector(32, 32)[0].tolist()))
    assert (row["crop_top"], row["crop_left"], row["crop_height"], row["crop_width"]) == (0.125, 0.25, 0.5, 0.25)
    assert (
        row["flip"] == 1 and row["grayscale"] == 0 and row["solarize"] == 0 and row["blur_sigma"] == pytest.approx(0.8)
    )
    assert [row[k] for k in ("brightness", "contrast", "saturation", "hue")] == [1, 1, 1, 0]  # not jittered: identity
    p.jitter = torch.tensor([True])
    row = dict(zip(PARAM_NAMES, p.vector(32, 32)[0].tolist()))
    assert [round(row[k], 6) for k in ("brightness", "contrast", "saturation", "hue")] == [1.2, 0.7, 1.1, 0.05]
    positions = [row[f"{k}_position"] * 3 for k in ("brightness", "contrast", "saturation", "hue")]
    assert positions == pytest.approx([1, 3, 2, 0])  # the order 3, 0, 2, 1 puts hue first and contrast last


def test_looc_keys_share_exactly_the_left_out_factor(images):
    made: list[ViewParams] = []

    class Recording(VisionAugment):
        def apply(self, images, p):  # noqa: ANN001, ANN202
            made.append(p)
            return super().apply(images, p)

    views = Recording(SPACE, 24).leave_one_out_views(images, [1, 1], SPACE.factors)
    assert len(views) == 4 and all(v.shape == (8, 3, 24, 24) for v in views)
    query, k0, *keys = made
    fields = {
        "spatial": ("boxes", "flip"),
        "appearance": ("jitter", "jitter_factors", "jitter_order", "grayscale", "blur", "blur_sigma"),
    }
    for factor, key in zip(SPACE.factors, keys):
        for f, names in fields.items():
            for name in names:
                same = torch.equal(getattr(key, name), getattr(query, name))
                assert same == (f == factor), (factor, name)
    assert all(not torch.equal(getattr(k0, n), getattr(query, n)) for n in ("boxes", "jitter_factors"))


def test_augself_loss_equals_a_hand_computation():
    w1, w2 = torch.zeros(1, 16), torch.zeros(1, 16)
    w1[0, :5] = torch.tensor([0.0, 0.0, 0.5, 0.5, 1.0])  # top-left half crop, flipped: centre (0.25, 1 - 0.25)
    w2[0, :5] = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.0])  # bottom-right half crop: centre (0.75, 0.75)
    w1[0, 5:9], w2[0, 5:9] = torch.tensor([1.4, 1.0, 0.8, 0.1]), torch.tensor([1.0, 1.0, 1.0, 0.0])
    t = augself_targets(w1, w2, (0.4, 0.4, 0.4, 0.1))
    assert t["crop"].tolist() == [[-0.5, 0.0, 0.0, 0.0]]
    assert t["colour"][0].tolist() == pytest.approx([0.5, 0.0, -0.25, 0.5])
    pred = {"crop": torch.tensor([[0.0, 0.0, 0.0, 0.0]]), "colour": torch.tensor([[math.atanh(0.5), 0.0, 0.0, 0.0]])}
    expected = (0.25 / 4) + ((0.0 + 0.0 + 0.0625 + 0.25) / 4)
    assert augself_loss(pred, t).item() == pytest.approx(expected)


def test_leave_one_out_loss_equals_a_hand_computation():
    torch.manual_seed(0)
    z = torch.randn(3, 4, 2, 5)  # 3 spaces, query + 3 keys, 2 images
    tau = 0.5
    u = torch.nn.functional.normalize(z, dim=-1)

    def ce(logits: list[float], target: int) -> float:
        return -logits[target] + math.log(sum(math.exp(v) for v in logits))

    total = 0.0
    for n in range(2):
        q = u[0, 0, n]
        total += sum(ce([(q @ u[0, v, m]).item() / tau for m in range(2)], n) for v in (1, 2, 3)) / 3 / 2
        for s in (1, 2):
            q = u[s, 0, n]
            logits = [(q @ u[s, 1 + s, m]).item() / tau for m in range(2)]
            logits += [(q @ u[s, v, n]).item() / tau for v in (1, 2, 3) if v != 1 + s]
            total += ce(logits, n) / 2
    assert leave_one_out_loss(z, tau).item() == pytest.approx(total, rel=1e-5)


class _StopAfterEpoch(L.Callback):
    def on_train_epoch_end(self, trainer, module):  # noqa: ANN001
        trainer.should_stop = True


def _cfg(root, out, competitor: str, method: str = "simclr", **kw) -> PretrainConfig:  # noqa: ANN001
    return PretrainConfig(
        method=method,
        competitor=competitor,
        encoder="resnet18",
        fixed_descriptor="1,1",
        data="npz",
        data_root=str(root),
        batch_size=16,
        epochs=2,
        seed=5,
        encoder_options={"width": 0.0625},
        proj_hidden=32,
        proj_dim=16,
        queue_size=64,
        knn_eval=False,
        progress=False,
        out=str(out),
        **kw,
    )


@pytest.mark.parametrize(
    "competitor,method",
    [("augself", "simclr"), ("augself", "mocov2"), ("cassle", "simclr"), ("cassle", "mocov2"), ("looc", "simclr")],
)
def test_each_competitor_resumes_exactly(tiny_npz, tmp_path, competitor, method, reference_run):
    full = reference_run(_cfg(tiny_npz, "", competitor, method))
    run_pretrain(_cfg(tiny_npz, tmp_path / "cut", competitor, method), callbacks=[_StopAfterEpoch()])
    run_pretrain(_cfg(tiny_npz, tmp_path / "cut", competitor, method, resume="last"))
    a, b = load_encoder(full).state_dict(), load_encoder(tmp_path / "cut").state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
    c = torch.load(full / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    d = torch.load(tmp_path / "cut" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    extra = [
        k
        for k in c
        if k.startswith(
            (
                "objective.augself",
                "objective.augmentation_embedding",
                "objective.key_augmentation_embedding",
                "objective.projector.heads.2",
            )
        )
    ]
    assert extra, "the competitor's own modules are in the checkpoint"
    assert all(torch.allclose(c[k].float(), d[k].float(), atol=1e-6) for k in extra)
    result = json.loads((full / "result.json").read_text())
    assert result["competitor"] == competitor and result["steps"] == 12


def test_cassle_on_mocov2_reads_the_keys_parameters_through_the_momentum_copy_of_its_mlp():
    from amortinv.encoders import build_encoder
    from amortinv.ssl.competitors import CASSLEMoCoV2
    from amortinv.ssl.losses import info_nce_queue

    torch.manual_seed(0)
    encoder = build_encoder("resnet18", cifar_stem=True, width=0.0625)
    objective = CASSLEMoCoV2(
        encoder, num_heads=1, per_head=False, proj_hidden=32, proj_dim=16, proj_layers=2, temperature=0.2, queue_size=8
    ).eval()
    v1, v2 = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    w1, w2 = torch.rand(4, len(PARAM_NAMES)), torch.rand(4, len(PARAM_NAMES))
    with torch.no_grad():
        for p in objective.augmentation_embedding.parameters():
            p.add_(1.0)  # the online MLP moves; its momentum copy has not yet
        queue = objective.queues.get(0).clone()
        f1, f2 = objective.encoder(v1, None), objective.key_encoder(v2, None)
        q = objective.projector(torch.cat([f1, objective.augmentation_embedding(w1)], 1), 0)
        k = objective.key_projector(torch.cat([f2, objective.key_augmentation_embedding(w2)], 1), 0)
        assert not torch.allclose(objective.augmentation_embedding(w2), objective.key_augmentation_embedding(w2))
        loss = objective(v1, v2, w1, w2, head=0, i=None)
    assert math.isclose(float(loss), float(info_nce_queue(q, k, queue, 0.2)), rel_tol=1e-5)
    objective.update_keys(0.0)  # m = 0: the copies become the online modules
    for a, b in zip(objective.augmentation_embedding.parameters(), objective.key_augmentation_embedding.parameters()):
        assert torch.equal(a, b)
    assert not any(p.requires_grad for p in objective.key_augmentation_embedding.parameters())


def test_competitor_settings_are_refused_in_one_line(tiny_npz, tmp_path):
    with pytest.raises(ValueError, match="--competitor looc runs with --method simclr, not mocov2"):
        _cfg(tiny_npz, tmp_path, "looc", "mocov2")
    with pytest.raises(ValueError, match="give --fixed-descriptor"):
        PretrainConfig(competitor="augself")
    with pytest.raises(
        ValueError, match=r"unknown competitor .byol. \(--competitor\); choose from augself, cassle, looc"
    ):
        PretrainConfig(competitor="byol", fixed_descriptor="1,1")


B = 3


def _ddp_losses(model: torch.nn.Module, views: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """LooC's loss of 2 spaces over 3 views of (B, 6) inputs, plus AugSelf's loss on the first two views."""
    z = model(views)  # (3, N, 2 * 4): two 4-d spaces side by side
    looc = leave_one_out_loss(torch.stack([z[..., :4], z[..., 4:]]), 0.3)
    pairs = torch.cat([torch.cat([z[0], z[1]], 1), torch.cat([z[1], z[0]], 1)])[:, :8]
    targets = augself_targets(w[0], w[1], (0.4, 0.4, 0.4, 0.1))
    targets = {k: torch.cat([v, -v]) for k, v in targets.items()}
    return looc + augself_loss({"crop": pairs[:, :4], "colour": pairs[:, 4:]}, targets)


def _ddp_inputs() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.Tanh(), torch.nn.Linear(12, 8))
    return model, torch.randn(3, 2 * B, 6), torch.rand(2, 2 * B, 16)


def _ddp_worker(rank: int, world: int, init_file: str, queue) -> None:  # noqa: ANN001
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model, views, w = _ddp_inputs()
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        part = slice(rank * B, (rank + 1) * B)
        loss = _ddp_losses(ddp, views[:, part], w[:, part])
        loss.backward()
        queue.put((rank, [p.grad.numpy().copy() for p in model.parameters()]))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_a_two_rank_step_of_looc_and_augself_matches_one_process(tmp_path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, str(tmp_path / "init"), queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    model, views, w = _ddp_inputs()
    _ddp_losses(model, views, w).backward()
    for rank, grads in results:
        for g, p in zip(grads, model.parameters()):
            assert torch.allclose(torch.from_numpy(g), p.grad, atol=1e-6), rank


def test_a_competitor_on_audio_data_is_refused_in_one_line(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        np.savez(tmp_path / f"{split}.npz", audio=rng.normal(size=(8, 800)).astype(np.float32),
                 labels=np.arange(8) % 2, sample_rate=np.array(8000))  # fmt: skip
    cfg = PretrainConfig(competitor="augself", encoder="resnet18", fixed_descriptor="1,1,1,1,1,1,1", data="audionpz",
                         data_root=str(tmp_path), batch_size=4, max_steps=1, knn_eval=False, progress=False,
                         out=str(tmp_path / "run"))  # fmt: skip
    with pytest.raises(ValueError, match="the audio engine does not hand out: it trains on images"):
        run_pretrain(cfg)


def test_a_looc_run_also_writes_its_concatenated_embeddings_as_a_plain_encoder(tiny_npz, tmp_path):
    from amortinv.ssl.competitors import looc_embeddings

    run_pretrain(_cfg(tiny_npz, tmp_path / "looc", "looc", max_steps=2))
    plus = load_encoder(tmp_path / "looc" / "embeddings")  # LooC++: every command reads it as a plain encoder
    backbone = load_encoder(tmp_path / "looc")
    assert not plus.conditioned and plus.feature_dim == 3 * 16 and plus.config["backbone"] == backbone.config
    x = torch.rand(5, 3, 16, 16)
    with torch.no_grad():
        f = backbone(x)
        by_hand = torch.cat([torch.nn.functional.normalize(h(f), dim=1) for h in plus.heads], dim=1)
        assert torch.allclose(plus(x), by_hand, atol=1e-6)
        assert torch.allclose(looc_embeddings(tmp_path / "looc")(x), plus(x), atol=1e-6)  # from the checkpoint alike
    state = torch.load(tmp_path / "looc" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert torch.equal(plus.heads[2][0].weight, state["objective.projector.heads.2.0.weight"])
