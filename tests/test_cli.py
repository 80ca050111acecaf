import subprocess
import sys

import pytest
from PIL import Image

from amortinv.cli import COMMANDS, main


def run_cli(*args: str) -> subprocess.CompletedProcess:
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


def test_preview_on_shared_cifar10(cifar_root, tmp_path):
    out = tmp_path / "grid.png"
    main(["preview", "--space", "groups2", "--data", "cifar10", "--data-root", str(cifar_root), "--split", "test",
          "--num-images", "3", "--out", str(out)])
    with Image.open(out) as im:
        w, h = im.size
        assert w > 300 and h > 200
        assert len(set(im.convert("L").getdata())) > 50  # a real picture, not a blank canvas


def test_preview_from_yaml_config_and_user_space(cifar_root, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("name: geo\nfactors:\n  crop: [crop]\n  flip: [flip]\nmin_active: 1\n")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"space: {space}\ndata: cifar10\ndata_root: {cifar_root}\nsplit: test\nnum_images: 2\nout: {tmp_path / 'a.png'}\n")
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
