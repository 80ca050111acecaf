"""A new pre-training method needs its objective, its LightningModule and its defaults, registered: nothing else."""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F

from amortinv.cli import main
from amortinv.ssl.config import METHOD_DEFAULTS
from amortinv.ssl.methods import METHODS, ContrastivePretrainer
from amortinv.ssl.objectives import OBJECTIVES, ContrastiveObjective


class AlignUniformObjective(ContrastiveObjective):
    """Wang & Isola's alignment + uniformity loss: a method amortinv does not ship."""

    def forward(self, v1: torch.Tensor, v2: torch.Tensor, head: int, i: torch.Tensor | None) -> torch.Tensor:
        z1, z2 = F.normalize(self.project(torch.cat([v1, v2]), head, i), dim=1).chunk(2)
        align = (z1 - z2).pow(2).sum(1).mean()
        uniform = torch.pdist(torch.cat([z1, z2])).pow(2).mul(-2).exp().mean().log()
        return align + uniform


class AlignUniform(ContrastivePretrainer):
    method = "align_uniform"


def test_a_method_registered_from_outside_trains_through_the_cli(tiny_npz, tmp_path, monkeypatch):
    monkeypatch.setitem(OBJECTIVES, "align_uniform", AlignUniformObjective)
    monkeypatch.setitem(METHODS, "align_uniform", AlignUniform)
    monkeypatch.setitem(METHOD_DEFAULTS, "align_uniform", {"temperature": 1.0, "recipe": "simclr", "proj_layers": 2})
    out = tmp_path / "run"
    main(["pretrain", "--method", "align_uniform", "--data", "npz", "--data-root", str(tiny_npz), "--batch-size", "16",
          "--max-steps", "3", "--encoder-options", "{width: 0.0625}", "--proj-hidden", "32", "--proj-dim", "16",
          "--knn-eval", "false", "--progress", "false", "--out", str(out)])  # fmt: skip
    result = json.loads((out / "result.json").read_text())
    assert result["method"] == "align_uniform" and result["steps"] == 3
    assert torch.isfinite(torch.tensor(result["final_loss"]))
    state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["hyper_parameters"]["temperature"] == 1.0  # the method's own default, from its registry entry
