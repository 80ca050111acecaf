"""Output that explains itself and words that are right (issue 24): what a run prints and leaves behind."""

from __future__ import annotations

import pytest
import torch

from amortinv.cli import main
from amortinv.data import build_dataset
from amortinv.fewshot.command import display_name, shown_rows


def _pretrain(tiny_npz, out, *extra: str) -> list[str]:
    return [
        "pretrain",
        "--data",
        "npz",
        "--data-root",
        str(tiny_npz),
        "--max-steps",
        "3",
        "--batch-size",
        "16",
        "--encoder-options",
        "{width: 0.0625}",
        "--proj-hidden",
        "32",
        "--proj-dim",
        "16",
        "--progress",
        "false",
        "--out",
        str(out),
        *extra,
    ]


def test_a_finished_run_keeps_one_checkpoint_without_optimiser_state_and_prints_its_knn_scores(
    tiny_npz, tmp_path, capsys
):
    main(_pretrain(tiny_npz, tmp_path / "run"))
    out = capsys.readouterr().out
    assert "kNN top-1 at [1,1] spatial+appearance:" in out and "kNN top-1 at [0,1] appearance:" in out
    assert "encoder.safetensors" in out and "optimiser state dropped" in out
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] == ["last.ckpt"]  # no duplicate epoch=...ckpt
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert "optimizer_states" not in state and len(state["state_dict"]) > 10  # the weights, heads and queues stay
    main(_pretrain(tiny_npz, tmp_path / "kept", "--keep-optimizer", "true"))
    assert torch.load(tmp_path / "kept" / "checkpoints" / "last.ckpt", weights_only=True)["optimizer_states"]


def test_option_prefixes_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["pretrain", "--max-step", "5", "--out", str(tmp_path / "run")])
    assert err.value.code == 2 and "unrecognized arguments: --max-step 5" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_missing_torchvision_dataset_names_the_download_flag(tmp_path):
    with pytest.raises(FileNotFoundError, match="--download true"):
        build_dataset("cifar100", tmp_path)


def test_fewshot_shows_every_ai_and_plain_row_whatever_their_rank_with_readable_names():
    rows = {
        f"fixed[[{a},{b}] {n}]/ridge": {"mean": 0.9 - 0.01 * k, "ci95": 0.01}
        for k, (a, b, n) in enumerate(
            [(1, 1, "spatial+appearance"), (1, 0, "spatial"), (0, 1, "appearance"), (0, 0, "none")]
        )
    }
    rows |= {
        "ai_learned": {"mean": 0.1, "ci95": 0.01},
        "plain:simclr/ridge": {"mean": 0.05, "ci95": 0.01},
        "oracle_best_fixed": {"mean": 0.95, "ci95": 0.01},
    }
    shown = [name for name, _ in shown_rows(rows)]
    assert {"ai_learned", "plain:simclr/ridge", "oracle_best_fixed"} <= set(
        shown
    ) and "fixed[[0,0] none]/ridge" not in shown
    assert shown == sorted(shown, key=lambda n: -rows[n]["mean"])
    assert display_name("fixed[[1,0] spatial]/ridge") == "AI @ [1,0] (invariant: spatial), ridge"
    assert display_name("plain:simclr/prototype") == "simclr (plain encoder), prototype"
    assert "upper bound" in display_name("oracle_best_fixed") and display_name("ai_learned") == "AI, learned i, ridge"
