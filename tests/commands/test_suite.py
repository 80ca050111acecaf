"""``amortinv suite``: the paper's protocols over datasets and encoders, its table, and a resumable run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from amortinv.cli import main
from amortinv.suite import average_ranks


@pytest.fixture(scope="module")
def setup(tmp_path_factory, saved_encoders):
    root = tmp_path_factory.mktemp("suite")
    rng = np.random.default_rng(0)
    for name, targets in (
        ("cls", lambda n: np.arange(n) % 4),
        ("reg", lambda n: rng.normal(size=(n, 2)).astype(np.float32)),
    ):
        (root / name).mkdir()
        for split, n in (("train", 60), ("test", 40)):
            key = "labels" if name == "cls" else "targets"
            np.savez(
                root / name / f"{split}.npz",
                images=rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8),
                **{key: targets(n)},
            )
    config = {
        "encoders": {"AI": str(saved_encoders["ai"]), "Plain": str(saved_encoders["plain"])},
        "datasets": [
            {"name": "npz", "root": str(root / "cls"), "label": "cls", "protocols": ["transfer", "fewshot"]},
            {"name": "npz", "root": str(root / "missing"), "label": "gone"},
            {
                "name": "npz",
                "root": str(root / "reg"),
                "label": "reg",
                "task": "regression",
                "protocols": ["transfer", "lowshot"],
            },
        ],
        "ways": 2,
        "shots": "1",
        "queries": 2,
        "episodes": 3,
        "fractions": "0.5",
        "repeats": 2,
        "i_steps": 1,
        "device": "cpu",
    }
    (root / "suite.yaml").write_text(yaml.safe_dump(config))
    return root


def test_average_ranks_share_ties():
    ranks = average_ranks({"a": {"x": 0.9, "y": 0.5}, "b": {"x": 0.9, "y": 0.7}, "c": {"x": 0.1}})
    assert ranks == {"a": (1.5 + 2) / 2, "b": (1.5 + 1) / 2, "c": 3.0}


def test_suite_runs_end_to_end_resumes_and_its_table_equals_a_hand_computation(setup, tmp_path, capsys, monkeypatch):
    import amortinv.suite as suite

    out = tmp_path / "suite"
    real, calls = suite._run_dataset, []

    def dies_on_the_second(*args, **kwargs):
        calls.append(args[0]["label"])
        if len(calls) == 2:
            raise KeyboardInterrupt  # the suite is killed during its second dataset
        return real(*args, **kwargs)

    monkeypatch.setattr(suite, "_run_dataset", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        main(["suite", "--config", str(setup / "suite.yaml"), "--out", str(out)])
    first = (out / "datasets" / "cls.json").read_text()
    assert not (out / "datasets" / "reg.json").exists()
    monkeypatch.setattr(suite, "_run_dataset", real)
    main(["suite", "--config", str(setup / "suite.yaml"), "--out", str(out)])
    printed = capsys.readouterr().out
    assert (
        "cls: finished in an earlier run, skipped" in printed
        and "gone: data root" in printed
        and "not found, skipped" in printed
    )
    assert (out / "datasets" / "cls.json").read_text() == first
    result = json.loads((out / "result.json").read_text())["datasets"]
    scores = {c: v for rec in result.values() for c, v in rec["scores"].items()}
    assert set(scores) == {"cls", "cls 2-way 1shot", "reg", "reg s=0.5"}
    table = (out / "table.md").read_text().splitlines()
    for row in table[2:]:
        name, *cells = [c.strip() for c in row.strip("|").split("|")]
        values = [scores[c][name][0] for c in scores]
        assert float(cells[-2]) == pytest.approx(sum(values) / len(values), abs=5e-4)
        by_hand = {
            c: 1 + sum(v[e][0] > v[name][0] for e in v) + (sum(v[e][0] == v[name][0] for e in v) - 1) / 2  # ties share
            for c, v in scores.items()
        }
        assert float(cells[-1]) == pytest.approx(sum(by_hand.values()) / len(by_hand), abs=5e-3)
    assert (
        "±" in (out / "table.md").read_text() and (out / "learned_i_AI.png").is_file() and (out / "table.csv").is_file()
    )


def test_an_encoder_added_later_runs_alone_and_joins_the_finished_datasets(setup, tmp_path, capsys):
    out = tmp_path / "suite"
    config = yaml.safe_load((setup / "suite.yaml").read_text())
    config["datasets"] = [config["datasets"][0]]  # cls: transfer + few-shot
    plain = config["encoders"].pop("Plain")
    (tmp_path / "one.yaml").write_text(yaml.safe_dump(config))
    main(["suite", "--config", str(tmp_path / "one.yaml"), "--out", str(out)])
    before = json.loads((out / "datasets" / "cls.json").read_text())
    config["encoders"]["Plain"] = plain
    (tmp_path / "two.yaml").write_text(yaml.safe_dump(config))
    capsys.readouterr()
    main(["suite", "--config", str(tmp_path / "two.yaml"), "--out", str(out)])
    assert "only Plain; AI again for the shared episodes: the others" in capsys.readouterr().out
    after = json.loads((out / "datasets" / "cls.json").read_text())
    for column, scores in before["scores"].items():  # the AI encoder's scores are the same on the same episodes
        assert after["scores"][column]["AI"] == scores["AI"] and "Plain" in after["scores"][column]
    assert "| Plain |" in (out / "table.md").read_text()
    capsys.readouterr()
    main(["suite", "--config", str(tmp_path / "two.yaml"), "--out", str(out)])
    assert "cls: finished in an earlier run, skipped" in capsys.readouterr().out
