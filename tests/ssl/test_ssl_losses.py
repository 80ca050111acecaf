import math

import pytest
import torch
import torch.nn.functional as F

from amortinv.ssl import (
    LARS,
    DescriptorHeads,
    DescriptorQueues,
    build_optimizer,
    gather,
    info_nce_queue,
    mlp,
    moco_v3_loss,
    momentum_schedule,
    momentum_update,
    nt_xent,
    warmup_cosine,
)


def orthonormal(n: int, d: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, n, dtype=torch.float64))
    return q.T  # (n, d) rows orthonormal


@pytest.mark.parametrize(("t", "expected"), [(0.1, 1.380108), (0.2, 6.092617)])
def test_info_nce_spec_vector(t, expected):
    torch.manual_seed(0)
    basis = orthonormal(2, 8)
    q = basis[:1]
    queue = basis[1:].repeat(65536, 1)  # every entry orthogonal to q
    loss = info_nce_queue(q, q.clone(), queue, temperature=t)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert loss.item() == pytest.approx(math.log(1 + 65536 * math.exp(-1 / t)), rel=1e-9)


@pytest.mark.parametrize(("t", "expected"), [(0.2, 0.016010), (1.0, 2.974674)])
def test_moco_v3_spec_vector_and_scale_invariance(t, expected):
    torch.manual_seed(0)
    q = orthonormal(4, 16)
    loss = moco_v3_loss(q, q, q.clone(), q.clone(), temperature=t)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    scaled = moco_v3_loss(3.7 * q, 0.2 * q, q.clone(), q.clone(), temperature=t)
    assert scaled.item() == pytest.approx(loss.item(), abs=1e-9)


def reference_nt_xent(z1: torch.Tensor, z2: torch.Tensor, t: float) -> torch.Tensor:
    """Textbook NT-Xent, anchor by anchor."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    total = 0.0
    for a in range(2 * n):
        pos = (a + n) % (2 * n)
        sims = torch.stack([z[a] @ z[j] / t for j in range(2 * n) if j != a])
        total = total - (z[a] @ z[pos] / t - torch.logsumexp(sims, 0))
    return total / (2 * n)


def test_nt_xent_matches_direct_computation():
    torch.manual_seed(0)
    z1, z2 = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    for t in (0.1, 0.5):
        assert torch.allclose(nt_xent(z1, z2, t), reference_nt_xent(z1, z2, t), atol=1e-10)
    with pytest.raises(ValueError, match="one shape"):
        nt_xent(z1, z2[:3])


def test_gather_is_identity_without_process_group():
    x = torch.randn(3, 2, requires_grad=True)
    assert gather(x) is x


def test_queue_fifo_wraparound():
    q = DescriptorQueues(num_queues=3, dim=4, size=5)
    before = q.keys.clone()
    keys = torch.randn(3, 4)
    q.enqueue(1, keys)
    assert torch.allclose(q.get(1)[:3], F.normalize(keys, dim=1))
    assert torch.equal(q.get(1)[3:], before[1, 3:]) and torch.equal(q.keys[[0, 2]], before[[0, 2]])
    assert q.ptr.tolist() == [0, 3, 0]
    more = torch.randn(4, 4)
    q.enqueue(1, more)  # wraps: positions 3, 4, 0, 1
    assert torch.allclose(q.get(1)[[3, 4, 0, 1]], F.normalize(more, dim=1))
    assert int(q.ptr[1]) == 2


def test_momentum_update_and_schedules():
    online, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    w_o, w_t = online.weight.detach().clone(), target.weight.detach().clone()
    momentum_update(online, target, 0.9)
    assert torch.allclose(target.weight, 0.9 * w_t + 0.1 * w_o)
    assert momentum_schedule(0, 100, 0.99) == pytest.approx(0.99)
    assert momentum_schedule(50, 100, 0.99) == pytest.approx(0.995)
    assert momentum_schedule(100, 100, 0.99) == pytest.approx(1.0)
    assert warmup_cosine(0, 100, 10) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(55, 100, 10) == pytest.approx(0.5)
    assert warmup_cosine(100, 100, 10) == pytest.approx(0.0, abs=1e-12)


def test_optimizers_are_real():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    adamw = build_optimizer("adamw", model, lr=0.1, weight_decay=0.5)
    assert isinstance(adamw, torch.optim.AdamW)
    decay = {id(p): g["weight_decay"] for g in adamw.param_groups for p in g["params"]}
    assert decay[id(model[0].weight)] == 0.5 and decay[id(model[0].bias)] == 0.0 and decay[id(model[1].weight)] == 0.0
    # decoupled decay: with zero gradient AdamW still shrinks the weights by lr * wd
    w = model[0].weight.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    adamw.step()
    assert torch.allclose(model[0].weight, w * (1 - 0.1 * 0.5))
    lars = build_optimizer("lars", model, lr=0.1, weight_decay=0.0)
    assert isinstance(lars, LARS)
    x = torch.randn(8, 4)
    loss = model(x).pow(2).sum()
    loss.backward()
    before = model[0].weight.detach().clone()
    lars.step()
    step = (model[0].weight - before).norm() / before.norm()
    assert step.item() == pytest.approx(0.1 * 0.001, rel=1e-3)  # trust ratio: lr * eta relative step
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_optimizer("adam", model, 0.1, 0.0)


def test_heads_shared_and_per_descriptor():
    shared = DescriptorHeads(lambda: mlp(8, 16, 4), 3, per_descriptor=False)
    per = DescriptorHeads(lambda: mlp(8, 16, 4, layers=3, last_bn=True), 3, per_descriptor=True)
    x = torch.randn(5, 8)
    assert len(shared.heads) == 1 and torch.equal(shared(x, 0), shared(x, 2))
    assert len(per.heads) == 3 and not torch.allclose(per(x, 0), per(x, 2))
    assert per(x, 1).shape == (5, 4)


def test_objectives_are_plain_modules_that_train_without_lightning():
    import subprocess
    import sys

    from amortinv.encoders import build_encoder
    from amortinv.ssl.objectives import OBJECTIVES

    opts = dict(num_heads=3, per_head=False, proj_hidden=16, proj_dim=8, proj_layers=2, temperature=0.2)
    extra = {"simclr": {}, "mocov2": {"queue_size": 8}, "mocov3": {"pred_hidden": 16}}
    v1, v2, i = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16), torch.tensor([1.0, 0.0])
    for name, cls in OBJECTIVES.items():
        obj = cls(build_encoder("hyper_resnet18", 2, cifar_stem=True, width=0.0625), **opts, **extra[name])
        if hasattr(obj, "update_keys"):
            obj.update_keys(0.9)
        loss = obj(v1, v2, 1, i)
        loss.backward()
        assert torch.isfinite(loss) and all(p.grad is not None for p in obj.encoder.parameters() if p.requires_grad), (
            name
        )
    check = "import amortinv.ssl.objectives, sys; print('lightning' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", check], capture_output=True, text=True).stdout.strip() == "False"
