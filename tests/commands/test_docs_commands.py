"""Every `amortinv` command of docs/*.md runs as written, page by page in one folder, with the shortest budget appended.

The README's tutorial (which docs/getting_started.md repeats) is run by ``test_readme.py``; ``amortinv demo`` by the
README's set-up command and ``tests/commands/test_demo.py``. Marked ``slow``: ``.ci/run`` runs it. Paths a reader replaces with their own are replaced with
the shared data, a tiny image folder and a synthetic checkpoint in the released file's layout.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA
from official_files import official_backbone, official_checkpoint
from PIL import Image

from amortinv.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = "{width: 0.0625}"
SHORTEST = {  # appended to each command (the last flag wins): the same command at the smallest budget that runs it
    "pretrain": ["--max-steps", "1", "--batch-size", "16", "--knn-eval", "false", "--progress", "false",
                 "--accelerator", "cpu", "--encoder-options", TINY],
    "transfer": ["--train-limit", "64", "--test-limit", "32", "--i-steps", "1", "--device", "cpu"],
    "fewshot": ["--episodes", "2", "--limit", "400", "--repeats", "2", "--device", "cpu"],
    "measure": ["--num-images", "8", "--reference-images", "16", "--steps", "2", "--device", "cpu"],
    "bound": ["--train-limit", "64"],
    "preview": [], "export": [], "import": [],
}  # fmt: skip
PAGES = ["guide.md", "audio.md", "competitors.md", "paper_model.md"]


def page_commands(page: Path) -> list[str]:
    """The page's `amortinv ...` command lines, continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("amortinv "):
                commands.append(line)
    return commands


def test_every_docs_page_with_commands_is_run_here_or_by_the_readme_tests():
    readme = set(page_commands(ROOT / "README.md"))
    for page in sorted((ROOT / "docs").rglob("*.md")):
        left = [c for c in page_commands(page) if c not in readme and not c.startswith("amortinv demo")]
        assert not left or page.name in PAGES, f"{page.name}'s commands are run by no test: {left}"


@pytest.fixture(scope="module")
def reader_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What a reader puts in place of the docs' own paths: a tiny image folder and a synthetic released checkpoint."""
    root = tmp_path_factory.mktemp("reader")
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c, name in enumerate(("sparrow", "finch", "gull", "wren", "robin")):  # 5 classes: 5-way episodes
            folder = root / "images" / split / name
            folder.mkdir(parents=True)
            for k in range(20):
                pixels = rng.integers(0, 80, (40, 48, 3), dtype=np.uint8)
                pixels[..., c % 3] += 60 + 40 * (c // 3)
                Image.fromarray(pixels).save(folder / f"{k}.png")
    checkpoint = root / "hyper_resnet50_imagenet100-moco_2_checkpoint_0300.pth.tar"
    torch.save(official_checkpoint(official_backbone()), checkpoint)
    return {
        "~/my_images": str(root / "images"),
        "~/data/birds": str(root / "images"),
        "hyper_resnet50_imagenet100-moco_2_checkpoint_0300.pth.tar": str(checkpoint),
        "../shared/data": str(SHARED_DATA),
        "configs/": str(ROOT / "configs") + "/",
    }


@pytest.mark.slow  # about 15 minutes on 2 busy cores (audio 13): run by .ci/run's second pytest command
@pytest.mark.parametrize("page", PAGES)
def test_the_pages_commands_run_in_order_with_the_shortest_budget(page, reader_paths, tmp_path, monkeypatch):
    commands = [c for c in page_commands(ROOT / "docs" / page) if not c.startswith("amortinv demo")]
    assert commands, f"{page} holds no amortinv command"
    needs = {m for c in commands for m in re.findall(r"\.\./shared/data/(\w+)", c)}
    missing = [name for name in needs if not (SHARED_DATA / name).is_dir()]
    if missing:
        pytest.skip(f"shared data not found: {missing}")
    monkeypatch.chdir(tmp_path)
    for command in commands:
        for theirs, ours in reader_paths.items():
            command = command.replace(theirs, ours)
        args = shlex.split(command)[1:]
        main(args + SHORTEST[args[0]])
