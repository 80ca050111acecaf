"""Bad input and faults (issue 26): each is refused in one line naming the input, with exit 2 (or a
``ValueError`` from the library), and writes or replaces nothing; Ctrl-C is as safe as SIGTERM."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from conftest import TINY_ENCODER, tiny_config

from amortinv.cli import main
from amortinv.encoders import build_encoder, load_encoder, save_encoder
from amortinv.spaces import load_space
from amortinv.ssl.callbacks import AtomicCheckpointIO
from amortinv.ssl.config import PretrainConfig
from amortinv.ssl.pretrain import run_pretrain
from amortinv.theory import generalisation_bound


@pytest.fixture(scope="module")
def audio_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    np.savez(
        root / "clips.npz",
        audio=rng.normal(0, 0.1, (12, 800)).astype(np.float32),
        labels=np.arange(12) % 3,
        sample_rate=8000,
    )
    return root / "clips.npz"


def refused(capsys: pytest.CaptureFixture, *argv: str) -> str:
    """Run the CLI in process; assert exit 2 with exactly one ``amortinv: error:`` line, and return it."""
    with pytest.raises(SystemExit) as err:
        main(list(argv))
    assert err.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("amortinv: error:")]
    assert len(lines) == 1, lines
    return lines[0]


def small(root: Path, out: Path, **kw: object) -> PretrainConfig:
    """The tests' tiny SimCLR config (one epoch of 6 steps), ``kw`` overriding."""
    return tiny_config(root, out, **kw)


# ---------------------------------------------------------------- settings checked where they are defined
@pytest.mark.parametrize(
    "argv, names",
    [
        (["pretrain", "--knn-bank", "-1"], "--knn-bank"),
        (["pretrain", "--method", "mocov2", "--queue-size", "1000000000000"], "465.7 TiB"),
        (["pretrain", "--sample-rate", "0"], "--sample-rate"),
        (["pretrain", "--sample-rate", "-8000"], "--sample-rate"),
        (["pretrain", "--lr", "nan"], "--lr"),
        (["pretrain", "--momentum", "1.5"], "--momentum"),
        (["pretrain", "--ones-share", "inf"], "--ones-share"),
        (["pretrain", "--weight-decay", "-1"], "--weight-decay"),
    ],
)
def test_pretrain_settings_refuse_out_of_range_values_before_any_work(argv, names, tmp_path, capsys):
    line = refused(capsys, *argv, "--out", str(tmp_path / "run"))
    assert names in line
    assert not (tmp_path / "run").exists()


def test_encoder_options_are_merged_over_the_family_defaults():
    assert PretrainConfig(encoder_options={"width": 0.5}).encoder_options == {"cifar_stem": True, "width": 0.5}
    assert PretrainConfig(encoder_options={"cifar_stem": False}).encoder_options == {"cifar_stem": False, "width": 0.25}
    assert PretrainConfig(encoder="prompt_vit_tiny", encoder_options={"img_size": 32}).encoder_options == {
        "img_size": 32
    }


@pytest.mark.parametrize(
    "argv, names",
    [
        (["--lams", "nan"], "--lams"),
        (["--lams", "1,-1"], "--lams"),
        (["--lrs", "inf"], "--lrs"),
        (["--val-fraction", "0"], "--val-fraction"),
        (["--test-limit", "0"], "--test-limit"),
        (["--methods", "ai"], "plain encoder"),
    ],
)
def test_transfer_refuses_bad_values_and_learners_that_do_not_apply(
    saved_encoders, tiny_npz, argv, names, tmp_path, capsys
):
    encoder = saved_encoders["plain"] if "--methods" in argv else saved_encoders["ai"]
    line = refused(
        capsys,
        "transfer",
        "--encoder",
        str(encoder),
        "--data",
        "npz",
        "--data-root",
        str(tiny_npz),
        *argv,
        "--out",
        str(tmp_path / "t"),
    )
    assert names in line
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize(
    "argv, names",
    [(["--limit", "0"], "--limit"), (["--lams", "nan"], "--lams"), (["--lams", "0.1,0"], "--lams")],
)
def test_fewshot_refuses_bad_values_limit_0_included(saved_encoders, tiny_npz, argv, names, tmp_path, capsys):
    """``--limit 0`` is refused, not taken as no limit; a grid with NaN or 0 is refused before any work."""
    line = refused(
        capsys,
        "fewshot",
        "--encoder",
        str(saved_encoders["ai"]),
        "--data",
        "npz",
        "--data-root",
        str(tiny_npz),
        *argv,
        "--out",
        str(tmp_path / "f"),
    )
    assert names in line and not (tmp_path / "f").exists()


# ---------------------------------------------------------------- commands that refuse what they cannot do
def test_export_refuses_a_folder_holding_a_run_unless_overwrite(saved_encoders, tmp_path, capsys):
    run = tmp_path / "run"
    save_encoder(run / "encoder", build_encoder("resnet18", **TINY_ENCODER))
    (run / "result.json").write_text('{"steps": 99}')
    before = (run / "encoder.safetensors").read_bytes()
    line = refused(capsys, "export", "--encoder", str(saved_encoders["ai"]), "--descriptor", "1,0", "--out", str(run))
    assert "--overwrite true" in line and str(run) in line
    assert (run / "encoder.safetensors").read_bytes() == before and (run / "result.json").is_file()
    main(
        [
            "export",
            "--encoder",
            str(saved_encoders["ai"]),
            "--descriptor",
            "1,0",
            "--out",
            str(run),
            "--overwrite",
            "true",
        ]
    )
    assert sorted(p.name for p in run.iterdir()) == [
        "encoder.json",
        "encoder.safetensors",
    ]  # the old result.json went with its run
    assert json.loads((run / "encoder.json").read_text())["metadata"]["descriptor"] == {
        "spatial": 1.0,
        "appearance": 0.0,
    }


def test_export_transfer_that_is_not_json_names_the_file(saved_encoders, tmp_path, capsys):
    bad = tmp_path / "result.json"
    bad.write_bytes(b"\xff\xfe\x00binary")
    line = refused(
        capsys, "export", "--encoder", str(saved_encoders["ai"]), "--transfer", str(bad), "--out", str(tmp_path / "e")
    )
    assert str(bad) in line and not (tmp_path / "e").exists()


def test_measure_baseline_that_is_conditioned_is_refused_before_measuring(saved_encoders, tiny_npz, tmp_path, capsys):
    line = refused(
        capsys,
        "measure",
        "--encoder",
        str(saved_encoders["ai"]),
        "--baseline",
        str(saved_encoders["ai"]),
        "--data",
        "npz",
        "--data-root",
        str(tiny_npz),
        "--num-images",
        "4",
        "--reference-images",
        "4",
        "--out",
        str(tmp_path / "m"),
    )
    assert "--baseline" in line and not (tmp_path / "m").exists()


def test_an_image_encoder_on_audio_data_names_both(saved_encoders, audio_npz, tmp_path, capsys):
    line = refused(
        capsys,
        "transfer",
        "--encoder",
        str(saved_encoders["ai"]),
        "--data",
        "audionpz",
        "--data-root",
        str(audio_npz),
        "--out",
        str(tmp_path / "t"),
    )
    assert str(saved_encoders["ai"]) in line and "vision" in line and "audio" in line


def test_bound_out_under_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file.txt").write_text("x")
    line = refused(
        capsys,
        "bound",
        "--empirical",
        "0.1",
        "--n",
        "100",
        "--x-norm",
        "1",
        "--b-norm",
        "1",
        "--out",
        str(tmp_path / "file.txt" / "b.json"),
    )
    assert "is a file" in line


# ---------------------------------------------------------------- data that is at fault says so
def test_audio_npz_with_nan_samples_or_rate_0_names_file_and_item(tmp_path, capsys):
    clips = np.zeros((4, 800), np.float32)
    clips[2, 10] = np.nan
    np.savez(tmp_path / "nan.npz", audio=clips, labels=np.arange(4), sample_rate=8000)
    line = refused(
        capsys,
        "preview",
        "--data",
        "audionpz",
        "--data-root",
        str(tmp_path / "nan.npz"),
        "--out",
        str(tmp_path / "p.png"),
    )
    assert "nan.npz" in line and "clip 2" in line and "not finite" in line
    np.savez(tmp_path / "rate0.npz", audio=clips[:2] * 0, labels=np.arange(2), sample_rate=0)
    line = refused(
        capsys,
        "preview",
        "--data",
        "audionpz",
        "--data-root",
        str(tmp_path / "rate0.npz"),
        "--out",
        str(tmp_path / "p.png"),
    )
    assert "rate0.npz" in line and "sample_rate" in line


def test_audio_data_takes_the_audio_space_by_default_and_a_vision_space_is_refused_with_the_fix(
    audio_npz, tmp_path, capsys
):
    main(
        [
            "preview",
            "--data",
            "audionpz",
            "--data-root",
            str(audio_npz),
            "--num-images",
            "2",
            "--out",
            str(tmp_path / "p.png"),
        ]
    )
    assert (tmp_path / "p.png").is_file() and "audio7" in capsys.readouterr().out + "audio7"
    line = refused(
        capsys,
        "pretrain",
        "--data",
        "audionpz",
        "--data-root",
        str(audio_npz),
        "--space",
        "groups2",
        "--batch-size",
        "4",
        "--out",
        str(tmp_path / "run"),
    )
    assert "--space audio7" in line and not (tmp_path / "run").exists()


def test_non_finite_loss_from_non_finite_inputs_blames_the_batch():
    from amortinv.ssl.methods import METHODS

    module = METHODS["simclr"](
        build_encoder("hyper_resnet18", invariance_dim=2, **TINY_ENCODER),
        load_space("groups2"),
        image_size=8,
        proj_hidden=8,
        proj_dim=4,
    )
    trainer = L.Trainer(
        max_steps=1, logger=False, enable_progress_bar=False, enable_checkpointing=False, accelerator="cpu"
    )
    module.trainer = trainer
    module.loss = lambda *a: torch.tensor(float("nan"))
    batch = torch.full((4, 3, 8, 8), float("nan"))
    module.views = lambda images, idx, batch_idx: (images, images)
    with pytest.raises(ValueError, match="batch itself holds non-finite inputs"):
        module.training_step(batch, 0)
    with pytest.raises(FloatingPointError, match="from finite inputs: the run diverged"):
        module.training_step(torch.zeros(4, 3, 8, 8), 0)


# ---------------------------------------------------------------- library functions check their arguments
def test_library_functions_raise_value_error_naming_the_argument(tmp_path):
    with pytest.raises(ValueError, match="empirical"):
        generalisation_bound(float("nan"), 100, 10, 1.0, 1.0, 4)
    with pytest.raises(ValueError, match="empirical"):
        generalisation_bound(1.5, 100, 10, 1.0, 1.0, 4, m=1.0)
    assert math.isfinite(generalisation_bound(0.5, 100, 10, 1.0, 1.0, 4).bound)
    hyper = build_encoder("hyper_resnet18", invariance_dim=2, **TINY_ENCODER)
    with pytest.raises(ValueError, match="parse_descriptors"):
        hyper.materialise("1,0")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        save_encoder(tmp_path / "file" / "encoder", hyper)
    with pytest.raises(ValueError, match="width"):
        build_encoder("hyper_resnet18", invariance_dim=2, width="abc")


# ---------------------------------------------------------------- locks
def _lock_of(pid: int, started: str | None) -> str:
    import socket

    return json.dumps({"pid": pid, "host": socket.gethostname(), "started": started, "command": "amortinv pretrain"})


def test_stale_and_foreign_locks_are_taken_over_and_a_live_run_is_refused(tiny_npz, tmp_path):
    from amortinv.ssl.run_folder import _process_start

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name, text in (
        ("dead", _lock_of(dead.pid, "123")),
        ("garbage", "not a lock"),
        ("bare_pid_1", "1"),
        ("reused_pid_1", _lock_of(1, "not its start")),
    ):
        out = tmp_path / name
        out.mkdir()
        (out / ".lock").write_text(text)
        assert run_pretrain(small(tiny_npz, out, max_steps=1))["finished"], (
            name
        )  # no --overwrite needed: only a stale lock was there
        assert not (out / ".lock").exists()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        out = tmp_path / "live"
        out.mkdir()
        (out / ".lock").write_text(_lock_of(live.pid, _process_start(live.pid)))
        with pytest.raises(ValueError, match=f"in use by another run \\(pid {live.pid}\\)"):
            run_pretrain(small(tiny_npz, out, max_steps=1, overwrite=True))
    finally:
        live.kill()
        live.wait()


# ---------------------------------------------------------------- signals and partial writes
class _SendAt(L.Callback):
    """Sends this process ``signum`` after global step ``at``, as a scheduler or a user at the terminal would."""

    def __init__(self, at: int, signum: int) -> None:
        self.at, self.signum = at, signum

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == self.at:
            os.kill(os.getpid(), self.signum)


def _loss_steps(folder: Path) -> list[int]:
    with open(folder / "metrics.csv", newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f) if r.get("train/loss_step")]


def test_ctrl_c_checkpoints_exits_130_and_resumes_to_the_uninterrupted_weights(
    tiny_npz, tmp_path, capsys, reference_run
):
    full = reference_run(small(tiny_npz, "", epochs=2))  # 6 steps per epoch
    with pytest.raises(SystemExit) as err:
        run_pretrain(small(tiny_npz, tmp_path / "cut", epochs=2), callbacks=[_SendAt(4, signal.SIGINT)])
    assert err.value.code == 130
    text = capsys.readouterr().err
    assert "interrupted by SIGINT (Ctrl-C) at step 4" in text and "--resume last" in text
    assert torch.load(tmp_path / "cut" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is the run's only
    run_pretrain(small(tiny_npz, tmp_path / "cut", epochs=2, resume="last"))
    a, b = load_encoder(full).state_dict(), load_encoder(tmp_path / "cut").state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert _loss_steps(tmp_path / "cut") == _loss_steps(full) == list(range(12))


def test_resume_auto_after_sigterm_keeps_every_steps_metrics_row_once(tiny_npz, tmp_path):
    job = small(tiny_npz, tmp_path / "job", epochs=1, resume="auto")
    with pytest.raises(SystemExit):
        run_pretrain(job, callbacks=[_SendAt(3, signal.SIGTERM)])
    run_pretrain(job)
    assert _loss_steps(tmp_path / "job") == list(range(6))  # step 2, the last before the signal, included


def test_a_killed_checkpoint_write_leaves_nothing_outside_the_run_and_the_next_launch_removes_it(
    tiny_npz, tmp_path, monkeypatch, capsys
):
    path = tmp_path / "checkpoints" / "last.ckpt"

    def dies_mid_write(obj, f, *a, **k):
        Path(f).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_mid_write)
    with pytest.raises(KeyboardInterrupt):
        AtomicCheckpointIO().save_checkpoint({"x": 1}, path)
    assert not path.exists() and not list(path.parent.iterdir())  # no partial file under any name
    monkeypatch.undo()
    # a SIGKILL cannot run that cleanup: its partial file is removed by the run's next launch
    with pytest.raises(SystemExit):
        run_pretrain(small(tiny_npz, tmp_path / "run", epochs=1), callbacks=[_SendAt(2, signal.SIGTERM)])
    partial = tmp_path / "run" / "checkpoints" / ".last.ckpt.99999.tmp"
    partial.write_bytes(b"partial")
    run_pretrain(small(tiny_npz, tmp_path / "run", epochs=1, resume="last"))
    assert not partial.exists() and "removing" in capsys.readouterr().err
