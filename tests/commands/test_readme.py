"""The README's two set-up commands are what CI runs, word for word."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    setup = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", setup, flags=re.S)]


def test_ci_runs_the_readme_commands():
    commands = readme_commands()
    assert len(commands) == 2, "the README's set-up section must hold exactly two commands"
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    for command in commands:
        assert command in ci_lines, f"'.ci/run' does not run the README command: {command}"
    assert "pytest" in commands[1]


def readme_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_every_readme_and_docs_cli_command_parses():
    """Each `amortinv ...` command of the README and of docs/*.md is valid for the CLI (options and values)."""
    import shlex

    from amortinv.cli import _normalise_flags, build_parser

    parser = build_parser()
    commands = []
    docs = [
        block
        for page in sorted((ROOT / "docs").rglob("*.md"))
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S)
    ]
    for block in readme_blocks("bash") + docs:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#")[0].strip()
            if "amortinv " in line:
                commands.append(line[line.index("amortinv ") :].split("&&")[0].split(" &")[0])
    assert len(commands) >= 7
    for command in commands:
        args = shlex.split(command)[1:]
        parser.parse_args(_normalise_flags(args))


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = readme_blocks("python")
    assert len(blocks) >= 3
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_the_cli_reference_is_current():
    """docs/cli.md is what the parsers print (regenerate: python -m amortinv.cli_reference > docs/cli.md)."""
    import sys

    import pytest

    from amortinv.cli_reference import PYTHON, cli_reference

    if sys.version_info[:2] != PYTHON:
        pytest.skip(
            f"docs/cli.md is generated with Python {PYTHON[0]}.{PYTHON[1]}, whose argparse lays out help as CI's does"
        )

    assert (ROOT / "docs" / "cli.md").read_text() == cli_reference(), (
        "docs/cli.md is stale: python -m amortinv.cli_reference > docs/cli.md"
    )


SHORTER = {  # what a test appends to each README tutorial command (the last flag wins): the same command, shortest budget
    "pretrain": ["--max-steps", "2", "--knn-eval", "false", "--progress", "false", "--accelerator", "cpu"],
    "transfer": ["--train-limit", "120", "--test-limit", "60", "--i-steps", "1", "--device", "cpu"],
    "fewshot": ["--episodes", "2", "--device", "cpu"],
    "measure": ["--num-images", "16", "--reference-images", "16", "--device", "cpu"],
    "export": [],
}


def test_the_readme_tutorial_runs_as_written_with_the_shortest_budget(tmp_path, monkeypatch):
    """The README's shapes tutorial, command by command, in one folder (each reads what the one before wrote)."""
    import shlex

    from amortinv.cli import main

    text = (ROOT / "README.md").read_text()
    tutorial = text.split("## Five minutes on the built-in shapes data", 1)[1].split("\n## ", 1)[0]
    block = re.findall(r"```bash\n(.*?)```", tutorial, flags=re.S)[0]
    commands = [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("amortinv ")]
    assert [c[0] for c in commands] == ["pretrain", "pretrain", "transfer", "fewshot", "measure", "export"]
    monkeypatch.chdir(tmp_path)
    for args in commands:
        main(args + SHORTER[args[0]])
    assert (tmp_path / "runs" / "tutorial" / "position_encoder" / "encoder.safetensors").is_file()


def test_every_studys_readme_tables_are_generated_from_its_json_files(tmp_path):
    """benchmarks/results/<study>/README.md ends with what benchmarks/study_tables.py makes of the study's JSON files."""
    import json
    import shutil
    import subprocess
    import sys

    script = ROOT / "benchmarks" / "study_tables.py"
    check = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    studies = sorted(p for p in (ROOT / "benchmarks" / "results").iterdir() if p.is_dir() and p.name != "archive")
    assert all((p / "README.md").is_file() for p in studies)
    copy = tmp_path / "results"  # a changed result makes its table stale, and the script brings it back
    shutil.copytree(ROOT / "benchmarks" / "results" / "cifar10", copy / "cifar10")
    record = json.loads((copy / "cifar10" / "pretrain_simclr.json").read_text())
    record["steps"] = 4321
    (copy / "cifar10" / "pretrain_simclr.json").write_text(json.dumps(record))
    args = [sys.executable, str(script), "--results", str(copy)]
    assert subprocess.run([*args, "--check"], capture_output=True).returncode == 1
    assert subprocess.run(args, capture_output=True).returncode == 0
    assert "| 4,321 |" in (copy / "cifar10" / "README.md").read_text()
    assert subprocess.run([*args, "--check"], capture_output=True).returncode == 0
