import contextlib
import io
import subprocess
import sys

import pytest
from PIL import Image

from amortinv.cli import COMMANDS, main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``amortinv ARGS`` in this process (the exit code and what it printed), as a subprocess would report it."""
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def run_cli_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "amortinv.cli", *args], capture_output=True, text=True, timeout=300)


def test_help_for_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    top = capsys.readouterr().out
    for name in COMMANDS:
        assert name in top
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert "--config" in capsys.readouterr().out


def test_help_imports_neither_torch_nor_lightning():
    """`amortinv --help` and `amortinv SUB --help` answer without the heavy imports (they took 10-20 s)."""
    check = (
        "import sys, contextlib, io\nfrom amortinv.cli import main\n"
        "for argv in (['--help'], *[[name, '--help'] for name in ('pretrain', 'transfer', 'fewshot', 'measure', 'bound', 'demo')]):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "        main(argv)\n"
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_preview_on_shared_cifar10(cifar_root, tmp_path):
    out = tmp_path / "grid.png"
    main(
        [
            "preview",
            "--space",
            "groups2",
            "--data",
            "cifar10",
            "--data-root",
            str(cifar_root),
            "--split",
            "test",
            "--num-images",
            "3",
            "--out",
            str(out),
        ]
    )
    with Image.open(out) as im:
        w, h = im.size
        assert w > 300 and h > 200
        assert len(set(im.convert("L").getdata())) > 50  # a real picture, not a blank canvas


def test_preview_from_yaml_config_and_user_space(cifar_root, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("name: geo\nfactors:\n  crop: [crop]\n  flip: [flip]\nmin_active: 1\n")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"space: {space}\ndata: cifar10\ndata_root: {cifar_root}\nsplit: test\nnum_images: 2\nout: {tmp_path / 'a.png'}\n"
    )
    main(["preview", "--config", str(cfg), "--out", str(tmp_path / "b.png")])  # flags override the config
    assert (tmp_path / "b.png").is_file() and not (tmp_path / "a.png").exists()


def test_bad_input_is_one_clear_line(tmp_path):
    proc = run_cli("preview", "--data", "cifar10", "--data-root", str(tmp_path / "missing"))
    assert proc.returncode == 2
    assert "amortinv: error: data root for 'cifar10' does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli("preview", "--space", "groups9", "--data-root", str(tmp_path))
    assert proc.returncode == 2 and "unknown invariance space 'groups9'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args,line",
    [
        (
            ("bound", "--empirical", "nan"),
            "amortinv: error: --empirical: expected float or null, got nan (see: amortinv bound --help)",
        ),
        (
            ("pretrain", "--batch-size", "abc"),
            "amortinv: error: --batch-size: expected int, got abc (see: amortinv pretrain --help)",
        ),
    ],
)
def test_a_value_of_the_wrong_type_is_named_in_one_short_line(args, line):
    proc = run_cli(*args)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == line


def test_export_round_trips_a_learned_descriptor(tmp_path, capsys):
    import json

    import torch

    from amortinv.encoders import build_encoder, load_encoder, save_encoder
    from amortinv.spaces import InvarianceSpace

    space = InvarianceSpace.from_name("groups2")
    torch.manual_seed(0)
    enc = build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.0625).eval()
    save_encoder(tmp_path / "run" / "encoder", enc, metadata={"space": space.to_config()})
    transfer = tmp_path / "transfer"
    transfer.mkdir()
    (transfer / "result.json").write_text(
        json.dumps(
            {"learned_i": {"colour": {"appearance": 0.15, "spatial": 0.8}, "shape": {"spatial": 1, "appearance": 1}}}
        )
    )
    main(
        [
            "export",
            "--encoder",
            str(tmp_path / "run"),
            "--transfer",
            str(transfer),
            "--task",
            "colour",
            "--out",
            str(tmp_path / "exp"),
        ]
    )
    exported = load_encoder(tmp_path / "exp").eval()
    assert not exported.conditioned
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(exported(x), enc(x, torch.tensor([0.8, 0.15])), atol=1e-5)
    meta = json.loads((tmp_path / "exp" / "encoder.json").read_text())["metadata"]
    assert meta["descriptor"] == {"spatial": 0.8, "appearance": 0.15}
    assert "files written" in capsys.readouterr().out
    for bad, message in (
        (["--transfer", str(transfer)], "several tasks"),
        (["--transfer", str(transfer), "--task", "pose"], "'pose' is not in"),
        ([], "exactly one of"),
        (["--descriptor", "0.5,2"], "[0, 1]"),
    ):
        with pytest.raises(SystemExit) as err:
            main(["export", "--encoder", str(tmp_path / "run"), "--out", str(tmp_path / "bad"), *bad])
        assert err.value.code == 2 and message in capsys.readouterr().err


def test_lazy_exports_resolve_to_the_objects_not_their_modules():
    import inspect

    import amortinv
    import amortinv.fewshot
    import amortinv.measure
    import amortinv.ssl
    import amortinv.transfer

    for package in (amortinv, amortinv.ssl, amortinv.transfer, amortinv.fewshot, amortinv.measure):
        for name in package.__all__:
            if name != "__version__":
                assert not inspect.ismodule(getattr(package, name)), f"{package.__name__}.{name}"


def test_a_cli_run_prints_no_third_party_noise(tiny_npz, tmp_path, tiny_pretrain_flags):
    """A real process: the point is what its streams carry (in-process, library loggers keep the original stderr)."""
    out = run_cli_process(
        "pretrain",
        *tiny_pretrain_flags,
        "--out",
        str(tmp_path / "run"),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout + out.stderr
    assert "pre-training done" in text
    for noise in ("litlogger", "litmodels", "LeafSpec", "torch.jit.script"):
        assert noise not in text, noise


def test_bad_options_and_configs_are_one_line(tmp_path):
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("lr: [1\n")
    for args, words in (
        (["transfer", "--encoder", "x", "--bogus", "3"], "unrecognized arguments: --bogus"),
        (["transfer", "--encoder", "x", "--lr-i", "abc"], "--lr-i: expected float, got abc"),
        (["pretrain", "--config", str(bad_config)], "Problems parsing config"),
        (["nosuch"], "invalid choice: 'nosuch'"),
    ):
        out = run_cli(*args)
        lines = out.stderr.strip().splitlines()
        assert (
            out.returncode == 2 and len(lines) == 1 and lines[0].startswith("amortinv: error:") and words in lines[0]
        ), out.stderr


def test_inputs_that_cannot_work_are_refused_before_any_work(tmp_path, capsys):
    import torch

    cases = [
        (
            ["bound", "--empirical", "1.5", "--n", "100", "--x-norm", "1", "--b-norm", "1"],
            "--empirical must be a loss in [0",
        ),
        (["bound", "--empirical", "nan", "--n", "100", "--x-norm", "1", "--b-norm", "1"], "empirical"),
        (["pretrain", "--max-steps", "0", "--out", str(tmp_path / "p")], "--max-steps must be >= 1"),
        (["pretrain", "--temperature", "0", "--out", str(tmp_path / "p")], "--temperature must be > 0"),
        (
            ["transfer", "--encoder", "x", "--batch-size", "0", "--out", str(tmp_path / "t")],
            "--batch-size must be >= 1",
        ),
    ]
    if not torch.cuda.is_available():
        cases += [
            (["pretrain", "--accelerator", "gpu", "--out", str(tmp_path / "p")], "no CUDA GPU is visible"),
            (
                ["transfer", "--encoder", "x", "--device", "cuda", "--out", str(tmp_path / "t")],
                "no CUDA GPU is visible",
            ),
            (["demo", "--device", "cuda", "--out", str(tmp_path / "d")], "no CUDA GPU is visible"),
            (["fewshot", "--encoder", "x", "--device", "cuda:0", "--out", str(tmp_path / "f")], "no CUDA GPU"),
        ]
    cases.append((["fewshot", "--encoder", "x", "--device", "gpu", "--out", str(tmp_path / "f")], "--device must be"))
    for args, words in cases:
        with pytest.raises(SystemExit) as err:
            main(args)
        lines = capsys.readouterr().err.strip().splitlines()
        assert err.value.code == 2 and len(lines) == 1 and words in lines[0], (args, lines)
    assert not any((tmp_path / name).exists() for name in ("p", "t", "d", "f"))


def test_the_device_defaults_to_auto_in_the_cli_and_the_library_alike():
    import inspect

    import torch

    from amortinv.fewshot.command import fewshot_command
    from amortinv.fewshot.settings import FewShotSettings
    from amortinv.transfer.command import transfer_command
    from amortinv.transfer.settings import TransferSettings

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    for settings, command in ((TransferSettings(), transfer_command), (FewShotSettings(), fewshot_command)):
        assert settings.device == inspect.signature(command).parameters["device"].default == "auto"
        assert settings.resolved_device() == expected
    with pytest.raises(ValueError, match="--device must be auto, cpu, cuda or cuda:N, got 'cuda:x'"):
        TransferSettings(device="cuda:x")


def test_more_bad_inputs_are_one_line(tiny_npz, tmp_path, capsys):
    import json

    import numpy as np

    empty = tmp_path / "empty"
    empty.mkdir()
    for split in ("train", "test"):
        np.savez(empty / f"{split}.npz", images=np.zeros((0, 8, 8, 3), np.uint8), labels=np.zeros((0,), np.int64))
    one_class = tmp_path / "one"
    one_class.mkdir()
    for split in ("train", "test"):
        np.savez(one_class / f"{split}.npz", images=np.zeros((20, 8, 8, 3), np.uint8), labels=np.zeros((20,), np.int64))
    lying = tmp_path / "lying"
    lying.mkdir()
    (lying / "encoder.json").write_text(json.dumps({"format": "amortinv-encoder/1", "encoder": ["hyper_resnet18", 2]}))
    (lying / "encoder.safetensors").write_bytes(b"")
    latin = tmp_path / "space.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    from amortinv.encoders import build_encoder, save_encoder
    from amortinv.spaces import InvarianceSpace

    save_encoder(
        tmp_path / "enc" / "encoder",
        build_encoder("hyper_resnet18", invariance_dim=2, cifar_stem=True, width=0.0625),
        metadata={"space": InvarianceSpace.from_name("groups2").to_config()},
    )
    cases = [
        (["pretrain", "--data", "npz", "--data-root", str(empty), "--out", str(tmp_path / "p")], "holds no images"),
        (
            [
                "transfer",
                "--encoder",
                str(tmp_path / "enc"),
                "--data",
                "npz",
                "--data-root",
                str(one_class),
                "--out",
                str(tmp_path / "t"),
            ],
            "single class",
        ),
        (
            [
                "transfer",
                "--encoder",
                str(tmp_path / "enc"),
                "--data",
                "npz",
                "--data-root",
                str(tiny_npz),
                "--train-limit",
                "4",
                "--out",
                str(tmp_path / "t"),
            ],
            "too few",
        ),
        (["transfer", "--encoder", str(lying), "--out", str(tmp_path / "t")], "is not an amortinv encoder config"),
        (["preview", "--space", str(latin), "--out", str(tmp_path / "x.png")], "not UTF-8"),
        (["preview", "--image-size", "0", "--out", str(tmp_path / "x.png")], "--image-size must be >= 8"),
        (["preview", "--out", str(a_file / "grid.png")], "is a file, not a folder"),
        (["transfer", "--encoder", str(tmp_path / "enc"), "--out", str(a_file / "t")], "is a file, not a folder"),
    ]
    for args, words in cases:
        with pytest.raises(SystemExit) as err:
            main(args)
        lines = capsys.readouterr().err.strip().splitlines()
        assert err.value.code == 2 and len(lines) == 1 and words in lines[0], (args, lines)
    assert not any((tmp_path / name).exists() for name in ("p", "t", "x.png"))


def test_internal_errors_keep_their_traceback_and_ask_for_a_report(monkeypatch, capsys):
    import amortinv.cli as cli

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setitem(cli.COMMANDS, "bound", broken)
    with pytest.raises(RuntimeError, match="boom"):
        main(["bound", "--empirical", "0.1", "--n", "10", "--x-norm", "1", "--b-norm", "1"])
    assert "internal error (a bug, not your input)" in capsys.readouterr().err


def test_json_results_are_written_whole_or_not_at_all(tmp_path):
    from amortinv.results import write_json

    write_json(tmp_path / "r.json", {"a": 1})
    with pytest.raises(TypeError):
        write_json(tmp_path / "r.json", {"a": object()})
    assert (tmp_path / "r.json").read_text().strip() == '{\n  "a": 1\n}' and len(list(tmp_path.iterdir())) == 1
