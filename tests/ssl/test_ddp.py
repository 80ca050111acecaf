"""Two CPU processes (gloo): same descriptors on both ranks; SimCLR on 2 x b equals 1 x 2b; Lightning DDP runs,
preemption included."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from amortinv.encoders import load_encoder
from amortinv.spaces import InvarianceSpace
from amortinv.ssl import nt_xent

pytestmark = pytest.mark.slow  # processes that import torch and train: .ci/run runs them with -m slow

B = 4


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 16), torch.nn.Tanh(), torch.nn.Linear(16, 8))


def make_views() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(2 * B, 12, generator=g), torch.randn(2 * B, 12, generator=g)


def worker(rank: int, world: int, init_file: str, queue) -> None:  # noqa: ANN001
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        space = InvarianceSpace.from_name("individual5")
        mine = torch.tensor([space.sample_index(t, seed=7) for t in range(50)])
        everyone = [torch.zeros_like(mine) for _ in range(world)]
        dist.all_gather(everyone, mine)
        model = DistributedDataParallel(make_model())
        v1, v2 = make_views()
        part = slice(rank * B, (rank + 1) * B)
        loss = nt_xent(model(v1[part]), model(v2[part]), temperature=0.3)
        loss.backward()
        mean_loss = loss.detach().clone()
        dist.all_reduce(mean_loss)
        queue.put(
            (
                rank,
                all(torch.equal(everyone[0], e) for e in everyone),
                (mean_loss / world).item(),
                [p.grad.numpy().copy() for p in model.parameters()],
            )
        )  # by value: no shared memory
    finally:
        dist.destroy_process_group()


def test_two_ranks_match_one_process(tmp_path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, 2, str(tmp_path / "init"), queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = sorted(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    model = make_model()
    v1, v2 = make_views()
    loss = nt_xent(model(v1), model(v2), temperature=0.3)
    loss.backward()
    for rank, same_descriptors, ddp_loss, grads in results:
        assert same_descriptors, f"rank {rank} drew other descriptors"
        assert ddp_loss == pytest.approx(loss.item(), rel=1e-5)
        for g, p in zip(grads, model.parameters()):
            assert torch.allclose(torch.from_numpy(g), p.grad, atol=1e-6), rank


COMPETITOR = ["--encoder", "resnet18", "--fixed-descriptor", "1,1", "--competitor"]


@pytest.mark.parametrize(
    "extra",
    [
        ["--method", "simclr"],
        ["--method", "mocov2", "--queue-size", "32"],
        [*COMPETITOR, "looc"],
        ["--method", "mocov2", "--queue-size", "32", *COMPETITOR, "augself"],
    ],
    ids=["simclr", "mocov2", "looc", "augself_mocov2"],
)
def test_lightning_ddp_pretrain_on_two_cpu_processes(tiny_npz, tmp_path, extra):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "amortinv.cli",
        "pretrain",
        *extra,
        "--data",
        "npz",
        "--data-root",
        str(tiny_npz),
        "--accelerator",
        "cpu",
        "--devices",
        "2",
        "--strategy",
        "ddp",
        "--batch-size",
        "8",
        "--max-steps",
        "3",
        "--encoder-options",
        '{"cifar_stem": true, "width": 0.0625}',
        "--proj-hidden",
        "32",
        "--proj-dim",
        "16",
        "--knn-eval",
        "false",
        "--progress",
        "false",
        "--out",
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    result = json.loads((out / "result.json").read_text())
    assert result["devices"] == 2 and result["global_batch"] == 16 and result["steps"] == 3
    assert result["competitor"] == (extra[-1] if "--competitor" in extra else None)
    if "mocov2" in extra:  # each step, the keys of both ranks (2 x 8) entered the drawn queue of 32 slots
        state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        counts = list((result["descriptor_counts"] or {"fixed": 3}).values())  # the steps each descriptor was drawn
        assert sum(counts) == 3 and state["objective.queues.ptr"].tolist() == [(16 * int(c)) % 32 for c in counts]


PREEMPTED_DDP_RUN = """
import os, signal, sys
import lightning as L
from amortinv.ssl.pretrain import PretrainConfig, run_pretrain

class Preempt(L.Callback):  # the scheduler's SIGTERM reaches the launching process (rank 0) mid-epoch
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == 4 and trainer.global_rank == 0:
            os.kill(os.getpid(), signal.SIGTERM)

out, mode = sys.argv[1], sys.argv[2]
cfg = PretrainConfig(method="simclr", data="npz", data_root=sys.argv[3], batch_size=8, epochs=2, seed=3,
                     encoder_options={"cifar_stem": True, "width": 0.0625}, proj_hidden=32, proj_dim=16, knn_eval=False,
                     progress=False, out=out, accelerator="cpu", devices=2, strategy="ddp", resume="last" if mode == "resume" else None)
run_pretrain(cfg, callbacks=[Preempt()] if mode == "cut" else [])
"""


def test_sigterm_under_ddp_exits_143_on_every_rank_and_resume_ends_as_the_uninterrupted_run(tiny_npz, tmp_path):
    """Two CPU ranks (gloo): 6 steps per epoch; SIGTERM at step 4 stops both ranks at the same step with one line,
    leaves ``last.ckpt`` there, and ``--resume last`` ends bit-for-bit where an uninterrupted run ends."""
    script = tmp_path / "run.py"
    script.write_text(PREEMPTED_DDP_RUN)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def launch(out: str, mode: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(script), str(tmp_path / out), mode, str(tiny_npz)],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            cwd=tmp_path,
        )

    assert launch("full", "full").returncode == 0
    cut = launch("cut", "cut")
    assert cut.returncode == 143, cut.stderr[-3000:]
    assert cut.stderr.count("amortinv: interrupted by SIGTERM at step 4") == 1
    assert torch.load(tmp_path / "cut" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4
    assert not (tmp_path / "cut" / "result.json").exists()
    resumed = launch("cut", "resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((tmp_path / "cut" / "result.json").read_text())["steps"] == 12
    a, b = load_encoder(tmp_path / "full").state_dict(), load_encoder(tmp_path / "cut").state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
