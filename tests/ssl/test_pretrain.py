import json
import math

import lightning as L
import pytest
import torch
from conftest import tiny_config

from amortinv.cli import main
from amortinv.encoders import load_encoder
from amortinv.ssl.pretrain import PretrainConfig, run_pretrain

TINY_ENCODER = '{"cifar_stem": true, "width": 0.0625}'


def cli_args(root, out, *extra):
    return [
        "pretrain",
        "--data",
        "npz",
        "--data-root",
        str(root),
        "--batch-size",
        "16",
        "--epochs",
        "1",
        "--max-steps",
        "3",
        "--encoder-options",
        TINY_ENCODER,
        "--proj-hidden",
        "32",
        "--proj-dim",
        "16",
        "--queue-size",
        "64",
        "--pred-hidden",
        "32",
        "--knn-bank",
        "64",
        "--progress",
        "false",
        "--out",
        str(out),
        *extra,
    ]


@pytest.mark.parametrize(
    ("extra", "name"),
    [
        (["--method", "simclr"], "hyper_resnet18"),
        (["--method", "mocov2", "--per-descriptor-heads", "true"], "hyper_resnet18"),
        (["--method", "mocov3", "--optimizer", "lars", "--lr", "0.3"], "hyper_resnet18"),
        (["--method", "simclr", "--encoder", "resnet18", "--fixed-descriptor", "1,1"], "resnet18"),
    ],
)
def test_pretrain_smoke_produces_loadable_encoder(tiny_npz, tmp_path, extra, name):
    out = tmp_path / "run"
    main(cli_args(tiny_npz, out, *extra))
    result = json.loads((out / "result.json").read_text())
    assert result["steps"] == 3 and result["encoder"]["name"] == name
    assert math.isfinite(result["final_loss"]) and result["images_per_s"] > 0
    assert (out / "metrics.csv").read_text().count("\n") >= 3
    assert (out / "checkpoints" / "last.ckpt").is_file()
    enc = load_encoder(out, name=name).eval()
    x = torch.rand(2, 3, 16, 16)
    feats = enc(x, torch.ones(2)) if enc.conditioned else enc(x)
    assert feats.shape == (2, enc.feature_dim) and torch.isfinite(feats).all()
    assert set(result["knn_top1"]) == (
        {"[1,1] spatial+appearance"}
        if "resnet18" == name
        else {"[1,0] spatial", "[0,1] appearance", "[1,1] spatial+appearance"}
    )
    if name == "resnet18":
        assert result["baseline_fixed_descriptor"] == [1.0, 1.0] and result["descriptor_counts"] is None
    else:
        assert sum(result["descriptor_counts"].values()) == 3


def test_pretrain_bad_input_is_clear(tiny_npz, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(cli_args(tiny_npz, tmp_path, "--encoder", "resnet18"))
    assert "pass --fixed-descriptor" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(cli_args(tiny_npz, tmp_path, "--fixed-descriptor", "1,2"))
    assert "[0, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(cli_args(tiny_npz, tmp_path, "--method", "byol"))
    assert "unknown method 'byol'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(cli_args(tiny_npz, tmp_path, "--resume", "last"))
    assert "checkpoint to resume from not found" in capsys.readouterr().err


class Recorder(L.Callback):
    """Records, per optimiser step, the descriptor drawn and a snapshot of the MoCo queues."""

    def __init__(self, stop_after_epoch: int | None = None) -> None:
        self.descriptors: list[int] = []
        self.queues: list[torch.Tensor] = []
        self.stop_after_epoch = stop_after_epoch

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.descriptors.append(module.descriptor_index(trainer.global_step - 1))
        if hasattr(module.objective, "queues"):
            self.queues.append(module.objective.queues.keys.detach().clone())

    def on_train_epoch_end(self, trainer, module):
        if self.stop_after_epoch is not None and trainer.current_epoch + 1 >= self.stop_after_epoch:
            trainer.should_stop = True


def small_cfg(root, out, **kw) -> PretrainConfig:
    """The tests' tiny config, MoCo-v2 for two epochs unless ``kw`` says otherwise."""
    return tiny_config(root, out, **{"method": "mocov2", "epochs": 2, **kw})


def test_queue_of_a_descriptor_changes_only_on_its_steps(tiny_npz, tmp_path):
    rec = Recorder()
    run_pretrain(small_cfg(tiny_npz, tmp_path / "q", epochs=2), callbacks=[rec])
    assert len(rec.descriptors) == 12 and len(set(rec.descriptors)) > 1
    start = None
    for step, (d, snap) in enumerate(zip(rec.descriptors, rec.queues)):
        prev = rec.queues[step - 1] if step else start
        if prev is None:
            continue
        changed = [not torch.equal(snap[j], prev[j]) for j in range(3)]
        assert changed == [j == d for j in range(3)], (step, d, changed)


def test_resume_reproduces_uninterrupted_run(tiny_npz, tmp_path):
    full_rec = Recorder()
    run_pretrain(small_cfg(tiny_npz, tmp_path / "full"), callbacks=[full_rec])
    first = Recorder(stop_after_epoch=1)
    run_pretrain(small_cfg(tiny_npz, tmp_path / "cut"), callbacks=[first])
    assert len(first.descriptors) == 6
    second = Recorder()
    run_pretrain(small_cfg(tiny_npz, tmp_path / "cut", resume="last"), callbacks=[second])
    assert first.descriptors + second.descriptors == full_rec.descriptors
    a = load_encoder(tmp_path / "full").state_dict()
    b = load_encoder(tmp_path / "cut").state_dict()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k
    c = torch.load(tmp_path / "full" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    d = torch.load(tmp_path / "cut" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert torch.allclose(c["objective.queues.keys"], d["objective.queues.keys"], atol=1e-6)
    assert torch.equal(c["objective.queues.ptr"], d["objective.queues.ptr"])
    # the run folder's metrics.csv holds both launches
    steps = [line.split(",")[1] for line in (tmp_path / "cut" / "metrics.csv").read_text().splitlines()[1:]]
    assert {"0", "11"} <= set(steps)


def test_different_seed_changes_the_run(tiny_npz, tmp_path):
    run_pretrain(small_cfg(tiny_npz, tmp_path / "a", epochs=1, max_steps=2))
    run_pretrain(small_cfg(tiny_npz, tmp_path / "b", epochs=1, max_steps=2, seed=4))
    a, b = load_encoder(tmp_path / "a").state_dict(), load_encoder(tmp_path / "b").state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_accumulation_tensorboard_and_knn_monitor(tiny_npz, tmp_path):
    out = tmp_path / "acc"
    cfg = small_cfg(
        tiny_npz, out, method="simclr", epochs=2, accumulate=2, logger="tensorboard", knn_every=1, knn_bank=64
    )
    result = run_pretrain(cfg)
    assert result["steps"] == 6 and result["global_batch"] == 32  # 12 batches, 2 per optimiser step
    assert list((out / "logs").glob("launch0/events.out.tfevents.*"))
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert "val/knn_top1" in header


def test_run_folders_are_never_mixed(tiny_npz, tmp_path):
    run_pretrain(small_cfg(tiny_npz, tmp_path / "r", epochs=1, max_steps=2))
    with pytest.raises(ValueError, match="is not empty: --resume last continues"):
        run_pretrain(small_cfg(tiny_npz, tmp_path / "r", epochs=1, max_steps=2))
    with pytest.raises(ValueError, match="finished run"):
        run_pretrain(small_cfg(tiny_npz, tmp_path / "r", epochs=1, max_steps=2, resume="last"))
    with pytest.raises(ValueError, match=r"other settings \(max_steps: 2 -> 5; seed: 3 -> 5\)"):
        run_pretrain(small_cfg(tiny_npz, tmp_path / "r", epochs=1, max_steps=5, seed=5, resume="last"))
    run_pretrain(small_cfg(tiny_npz, tmp_path / "r", epochs=1, max_steps=3, overwrite=True))
    assert json.loads((tmp_path / "r" / "run_config.json").read_text())["max_steps"] == 3
    assert len(list((tmp_path / "r" / "logs").glob("launch*"))) == 1  # the old run's logs are gone


def test_resume_refuses_unusable_checkpoints_in_one_line(tiny_npz, tmp_path, capsys):
    import pickle

    run_pretrain(small_cfg(tiny_npz, tmp_path / "r", epochs=2, max_steps=3))
    good = tmp_path / "r" / "checkpoints" / "last.ckpt"
    state = torch.load(good, weights_only=True)
    bad = {
        "pickled.ckpt": lambda p: p.write_bytes(pickle.dumps({"global_step": 1, "obj": Recorder()})),
        "truncated.ckpt": lambda p: p.write_bytes(good.read_bytes()[:1000]),
        "keyless.ckpt": lambda p: torch.save({"state_dict": state["state_dict"]}, p),
        "other_model.ckpt": lambda p: torch.save(
            {**state, "state_dict": {k: v[:1] if v.ndim else v for k, v in state["state_dict"].items()}}, p
        ),
    }
    for name, make in bad.items():
        path = tmp_path / name
        make(path)
        with pytest.raises(SystemExit) as err:
            main(cli_args(tiny_npz, tmp_path / "other", "--resume", str(path)))
        lines = capsys.readouterr().err.strip().splitlines()
        assert err.value.code == 2 and len(lines) == 1 and "--resume" in lines[0] and str(path) in lines[0], (
            name,
            lines,
        )
        assert "weights_only=False" not in lines[0]


def test_merged_metrics_keep_each_step_once(tmp_path):
    from amortinv.ssl.run_folder import merge_metrics

    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("epoch,step,train/loss\n" + "".join(f"0,{s},{s}.0\n" for s in range(19)))  # killed after step 18
    second.write_text(
        "epoch,step,train/loss,train/lr\n" + "".join(f"1,{s},{s}.5,0.1\n" for s in range(16, 30))
    )  # resumed at 16
    merge_metrics([first, second], tmp_path / "m.csv")
    rows = (tmp_path / "m.csv").read_text().splitlines()
    steps = [int(r.split(",")[1]) for r in rows[1:]]
    assert steps == list(range(30)) and rows[0] == "epoch,step,train/loss,train/lr"
    assert rows[17].split(",")[2] == "16.5"  # the resumed launch's row for step 16


def test_a_live_run_locks_its_folder(tiny_npz, tmp_path):
    import json
    import socket
    import subprocess
    import sys

    out = tmp_path / "busy"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        from amortinv.ssl.run_folder import _process_start

        (out / ".lock").write_text(
            json.dumps({"pid": sleeper.pid, "host": socket.gethostname(), "started": _process_start(sleeper.pid)})
        )
        for kw in ({}, {"overwrite": True}, {"resume": "last"}):
            with pytest.raises(ValueError, match=f"in use by another run \\(pid {sleeper.pid}\\)"):
                run_pretrain(small_cfg(tiny_npz, out, epochs=1, max_steps=1, **kw))
    finally:
        sleeper.kill()
        sleeper.wait()
    # a stale lock (its process is gone) does not block: overwrite then runs, and leaves no lock behind
    run_pretrain(small_cfg(tiny_npz, out, epochs=1, max_steps=1, overwrite=True))
    assert (out / "result.json").is_file() and not (out / ".lock").exists()


class _Preempt(L.Callback):
    """Sends this process SIGTERM after global step ``at`` (mid-epoch), as a scheduler would."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == self.at:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_mid_epoch_exits_143_and_resume_ends_as_the_uninterrupted_run(
    tiny_npz, tmp_path, capsys, reference_run
):
    full = reference_run(small_cfg(tiny_npz, "", method="simclr", epochs=2))  # 6 steps per epoch
    with pytest.raises(SystemExit) as err:
        run_pretrain(small_cfg(tiny_npz, tmp_path / "cut", method="simclr", epochs=2), callbacks=[_Preempt(at=4)])
    assert err.value.code == 143 and "interrupted by SIGTERM at step 4" in capsys.readouterr().err
    assert torch.load(tmp_path / "cut" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4
    assert not (tmp_path / "cut" / "result.json").exists()
    result = run_pretrain(small_cfg(tiny_npz, tmp_path / "cut", method="simclr", epochs=2, resume="last"))
    assert result["steps"] == 12 and result["finished"]
    a, b = load_encoder(full).state_dict(), load_encoder(tmp_path / "cut").state_dict()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k


class _FailAt(L.Callback):
    """Raises an error after global step ``at``, as a bad batch deep in a run would."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == self.at:
            raise RuntimeError("injected failure")


def test_a_failed_run_leaves_no_folder_unless_a_checkpoint_can_resume_it(tiny_npz, tmp_path, capsys):
    for out in (tmp_path / "new", tmp_path / "existing"):
        if out.name == "existing":
            out.mkdir()  # a folder the user made stays, empty
        with pytest.raises(RuntimeError, match="injected failure"):
            run_pretrain(small_cfg(tiny_npz, out, method="simclr", epochs=2), callbacks=[_FailAt(at=2)])  # epoch 1 of 2
        assert not out.exists() if out.name == "new" else list(out.iterdir()) == []
    late = tmp_path / "late"
    with pytest.raises(RuntimeError, match="injected failure"):
        run_pretrain(
            small_cfg(tiny_npz, late, method="simclr", epochs=2), callbacks=[_FailAt(at=8)]
        )  # after epoch 1's checkpoint
    assert "keeps its checkpoints" in capsys.readouterr().err
    assert not (late / ".lock").exists() and (late / "logs").is_dir()
    assert run_pretrain(small_cfg(tiny_npz, late, method="simclr", epochs=2, resume="last"))["finished"]


def test_a_corrupt_image_found_during_training_is_one_line_and_leaves_no_folder(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    for c in ("cat", "dog"):
        (tmp_path / "flat" / c).mkdir(parents=True)
        for k in range(3):
            Image.fromarray(np.full((16, 16, 3), 40 * k, np.uint8)).save(tmp_path / "flat" / c / f"{k}.png")
    broken = (
        tmp_path / "flat" / "dog" / "2.png"
    )  # the last sample: read by the loader, not by the checks before training
    broken.write_bytes(b"not an image")
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as err:
        main(
            [
                "pretrain",
                "--data",
                "imagefolder",
                "--data-root",
                str(tmp_path / "flat"),
                "--batch-size",
                "2",
                "--epochs",
                "1",
                "--encoder-options",
                TINY_ENCODER,
                "--proj-hidden",
                "32",
                "--proj-dim",
                "16",
                "--progress",
                "false",
                "--out",
                str(out),
            ]
        )
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("amortinv: error")]
    assert err.value.code == 2 and len(lines) == 1 and f"unreadable image {broken}" in lines[0]
    assert not out.exists()


def test_resume_replays_the_random_crops_of_long_clips(tmp_path):
    """Audio clips longer than the window are cropped at random for pre-training; the crops are a
    function of (seed, epoch, index), so a preempted and resumed run ends as the uninterrupted one."""
    import numpy as np

    from amortinv.ssl.pretrain import InputsOnly

    rng = np.random.default_rng(0)
    (tmp_path / "clips").mkdir()
    for split in ("train", "test"):
        clips = [(0.3 * rng.standard_normal(int(rng.integers(1500, 2500))) * 32767).astype(np.int16) for _ in range(48)]
        np.savez(
            tmp_path / "clips" / f"{split}.npz",
            audio=np.concatenate(clips),
            labels=np.arange(48) % 2,
            sample_rate=8000,
            offsets=np.concatenate([[0], np.cumsum([len(c) for c in clips])]),
        )
    cfg = dict(
        data="audionpz",
        space="audio7",
        clip_seconds=0.125,
        method="simclr",
        epochs=2,
        encoder_options={"width": 0.0625},
    )
    from amortinv.data import build_dataset

    inputs = InputsOnly(
        build_dataset("audionpz", tmp_path / "clips", "train", clip_seconds=0.125, crop="random"), seed=3
    )
    assert torch.equal(inputs[(5, 1)], inputs[(5, 1)]) and not torch.equal(inputs[(5, 1)], inputs[(5, 2)])
    run_pretrain(small_cfg(tmp_path / "clips", tmp_path / "full", **cfg))  # 3 steps per epoch
    with pytest.raises(SystemExit):
        run_pretrain(small_cfg(tmp_path / "clips", tmp_path / "cut", **cfg), callbacks=[_Preempt(at=4)])
    run_pretrain(small_cfg(tmp_path / "clips", tmp_path / "cut", **cfg, resume="last"))
    a, b = load_encoder(tmp_path / "full").state_dict(), load_encoder(tmp_path / "cut").state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_auto_is_one_command_for_a_first_and_a_requeued_launch(tiny_npz, tmp_path, capsys, reference_run):
    full = reference_run(small_cfg(tiny_npz, "", method="simclr", epochs=1))  # 6 steps
    job = small_cfg(tiny_npz, tmp_path / "job", method="simclr", epochs=1, resume="auto")
    with pytest.raises(SystemExit) as err:
        run_pretrain(job, callbacks=[_Preempt(at=3)])  # first launch: nothing to resume, a fresh run, preempted
    assert err.value.code == 143
    assert run_pretrain(job)["finished"]  # the requeued launch, same command: resumes from last.ckpt
    a, b = load_encoder(full).state_dict(), load_encoder(tmp_path / "job").state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    with pytest.raises(ValueError, match="holds a finished run"):
        run_pretrain(job)


class _PreemptAtBatch(L.Callback):
    """Sends this process SIGTERM after batch ``at`` of the first epoch."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if batch_idx == self.at and trainer.current_epoch == 0:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_mid_accumulation_stops_after_the_optimiser_step_and_resumes_exactly(tiny_npz, tmp_path, reference_run):
    """With 2 batches per step, SIGTERM after batch 2 (the first half of step 2) stops after batch 3,
    so no accumulated gradient is lost and the resumed run ends as the uninterrupted one."""
    cfg = dict(method="simclr", epochs=2, accumulate=2)  # 6 batches, 3 steps per epoch
    full = reference_run(small_cfg(tiny_npz, "", **cfg))
    with pytest.raises(SystemExit):
        run_pretrain(small_cfg(tiny_npz, tmp_path / "cut", **cfg), callbacks=[_PreemptAtBatch(at=2)])
    assert torch.load(tmp_path / "cut" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2
    run_pretrain(small_cfg(tiny_npz, tmp_path / "cut", **cfg, resume="last"))
    a, b = load_encoder(full).state_dict(), load_encoder(tmp_path / "cut").state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_the_progress_bar_total_stops_at_max_steps(tiny_npz, tmp_path):
    import lightning as L

    totals = []

    class Look(L.Callback):
        def on_train_batch_end(self, trainer, *args):  # noqa: ANN001, ANN002
            totals.append(trainer.progress_bar_callback.total_train_batches)

    run_pretrain(small_cfg(tiny_npz, tmp_path / "r", epochs=1, max_steps=2, progress=True), callbacks=[Look()])
    assert totals == [2, 2]  # the epoch has 6 batches; the run stops after 2
