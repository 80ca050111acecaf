"""The shipped configs: each one loads, and states only what differs from the defaults (one place for each default)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from amortinv.ssl.config import ENCODER_DEFAULTS, METHOD_DEFAULTS, PretrainConfig

EXPERIMENT_KEYS = {"method", "encoder", "space", "data", "batch_size", "epochs", "lr", "ones_share", "fixed_descriptor"}
"""Keys a config may pin at their default value: the ones that define the experiment."""

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("pretrain_*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_each_pretraining_config_loads_and_states_only_non_defaults(path):
    raw = yaml.safe_load(path.read_text())
    cfg = PretrainConfig(**raw)  # every rule of the settings holds
    defaults = {f.name: f.default for f in fields(PretrainConfig) if f.default is not f.default_factory}
    defaults.update(METHOD_DEFAULTS[cfg.method])  # what None stands for
    repeated = sorted(
        k
        for k, v in raw.items()
        if k in defaults and k not in EXPERIMENT_KEYS | {"encoder_options"} and v == defaults[k]
    )
    family = ENCODER_DEFAULTS["vit" if "vit" in cfg.encoder else "resnet"]
    repeated += sorted(
        f"encoder_options.{k}" for k, v in (raw.get("encoder_options") or {}).items() if family.get(k, object()) == v
    )
    assert not repeated, f"{path.name} repeats defaults: {repeated}"
    if cfg.fixed_descriptor is None:
        assert "ones_share" in raw, f"{path.name}: an AI run states ones_share, the setting that changed the results"


def test_there_are_configs_for_each_competitor_at_both_budgets():
    names = {p.stem for p in CONFIGS}
    for competitor in ("augself", "looc", "cassle"):
        assert f"pretrain_cifar10_cpu_{competitor}" in names
        assert any(n.startswith("pretrain_imagenet100") and competitor in n for n in names)
