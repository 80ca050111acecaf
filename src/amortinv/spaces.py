"""Invariance spaces: named factors, training descriptors, per-step sampling and quantisation.

An invariance descriptor ``i`` is a float vector of length K in [0, 1]; ``i[k] = 1`` asks for
invariance to factor k, ``i[k] = 0`` for sensitivity (SPEC section 1). A space names its K
factors, says which augmentation ops each factor switches on, and holds the binary training
descriptors sampled during pre-training.

Sampling is stateless: the descriptor of global step ``t`` is a pure function of
``(seed, t)``, so every DDP rank draws the same one and a resumed run draws the same sequence.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

__all__ = ["InvarianceSpace", "load_space", "quantise", "parse_descriptors", "BUILTIN_SPACES"]

CANDIDATE_LIMIT = 32  # fixed descriptors probed downstream at most (all of groups2's and individual5's)
_SEED_STRIDE = 1_000_003  # a prime: (seed, step) pairs map to distinct generator seeds


@dataclass(frozen=True)
class InvarianceSpace:
    """A named set of K invariance factors and the binary descriptors trained on.

    Args:
        name: the space's name, written into every output.
        factors: the K factor names, in descriptor order.
        ops: factor name -> augmentation op names it switches on (see ``amortinv.augment``).
            Defaults to one op per factor, named like the factor.
        min_active: training descriptors have at least this many ones (binary order).
        descriptors: an explicit training set (rows of 0/1) that overrides ``min_active``.
    """

    name: str
    factors: tuple[str, ...]
    ops: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    min_active: int = 1
    descriptors: tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self) -> None:
        factors = tuple(self.factors)
        object.__setattr__(self, "factors", factors)
        if not factors:
            raise ValueError(f"invariance space '{self.name}' needs at least one factor")
        if len(set(factors)) != len(factors):
            raise ValueError(f"invariance space '{self.name}' has repeated factor names: {factors}")
        ops = {f: tuple(self.ops.get(f, (f,))) for f in factors}
        unknown = set(self.ops) - set(factors)
        if unknown:
            raise ValueError(f"invariance space '{self.name}': ops given for unknown factors {sorted(unknown)}")
        object.__setattr__(self, "ops", ops)
        if not 0 <= self.min_active <= len(factors):
            raise ValueError(
                f"invariance space '{self.name}': min_active={self.min_active} must lie in [0, {len(factors)}]"
            )
        if self.descriptors is not None:
            rows = tuple(tuple(int(v) for v in row) for row in self.descriptors)
            for row in rows:
                if len(row) != len(factors) or any(v not in (0, 1) for v in row):
                    raise ValueError(
                        f"invariance space '{self.name}': training descriptor {row} must be "
                        f"{len(factors)} values of 0 or 1"
                    )
            if not rows:
                raise ValueError(f"invariance space '{self.name}': the training descriptor set is empty")
            object.__setattr__(self, "descriptors", rows)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_name(cls, name: str) -> InvarianceSpace:
        """Return the built-in space ``groups2``, ``individual5`` or ``audio7``."""
        try:
            return BUILTIN_SPACES[name]
        except KeyError:
            raise ValueError(
                f"unknown invariance space '{name}'; built-in spaces are {sorted(BUILTIN_SPACES)} "
                "(or define one with InvarianceSpace.from_config)"
            ) from None

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | str) -> InvarianceSpace:
        """Build a space from a built-in name or a mapping.

        The mapping has ``name``, ``factors`` (a list of names, or a mapping factor -> list of
        ops), and optionally ``min_active`` or ``descriptors``.
        """
        if isinstance(config, str):
            return cls.from_name(config)
        if isinstance(config, InvarianceSpace):
            return config
        cfg = dict(config)
        factors = cfg.pop("factors", None)
        if factors is None:
            raise ValueError("an invariance space config needs 'factors'")
        ops: dict[str, tuple[str, ...]] = {}
        if isinstance(factors, Mapping):
            ops = {k: tuple(v) for k, v in factors.items()}
            factors = list(factors)
        descriptors = cfg.pop("descriptors", None)
        space = cls(
            name=str(cfg.pop("name", "custom")),
            factors=tuple(factors),
            ops=ops,
            min_active=int(cfg.pop("min_active", 1)),
            descriptors=None if descriptors is None else tuple(tuple(r) for r in descriptors),
        )
        if cfg:
            raise ValueError(f"invariance space config has unknown keys {sorted(cfg)}")
        return space

    def to_config(self) -> dict[str, Any]:
        """A JSON-serialisable mapping that ``from_config`` turns back into this space."""
        cfg: dict[str, Any] = {"name": self.name, "factors": {f: list(self.ops[f]) for f in self.factors}}
        if self.descriptors is not None:
            cfg["descriptors"] = [list(r) for r in self.descriptors]
        else:
            cfg["min_active"] = self.min_active
        return cfg

    # ------------------------------------------------------------------ descriptors
    @property
    def dim(self) -> int:
        """K, the number of factors."""
        return len(self.factors)

    def training_descriptors(self) -> torch.Tensor:
        """The binary training descriptors, a float tensor of shape (|I|, K).

        Without an explicit list: every binary vector with at least ``min_active`` ones, in
        binary order (first factor most significant), so ``individual5`` starts at [0,0,0,1,1].
        """
        if self.descriptors is not None:
            rows = self.descriptors
        else:
            rows = tuple(bits for bits in itertools.product((0, 1), repeat=self.dim) if sum(bits) >= self.min_active)
        return torch.tensor(rows, dtype=torch.float32)

    def candidate_descriptors(self, limit: int = CANDIDATE_LIMIT) -> torch.Tensor:
        """The fixed descriptors probed downstream (the search's candidate starts), (n, K).

        All ones first, then every training descriptor; a space with more than ``limit`` of them
        (``audio7``: 120) keeps all ones, each leave-one-out descriptor (ones but one factor off),
        and a fixed, evenly spread sample of the rest, ``limit`` rows in all.
        """
        ones = torch.ones(1, self.dim)
        rest = self.training_descriptors()
        rest = rest[~(rest == 1).all(dim=1)]
        if len(rest) + 1 <= limit:
            return torch.cat([ones, rest])
        leave_one = rest.sum(dim=1) == self.dim - 1
        others = rest[~leave_one]
        pick = torch.linspace(0, len(others) - 1, max(0, limit - 1 - int(leave_one.sum()))).round().long()
        return torch.cat([ones, rest[leave_one], others[pick]])[:limit]

    def sampling_weights(self, ones_share: float | None = None) -> torch.Tensor | None:
        """Probabilities (|I|,) that give the all-ones descriptor ``ones_share`` of the steps and
        split the rest evenly; None (uniform) when ``ones_share`` is None."""
        if ones_share is None:
            return None
        if not 0 < ones_share < 1:
            raise ValueError(f"ones_share must lie in (0, 1), got {ones_share}")
        rows = self.training_descriptors()
        is_ones = (rows == 1).all(dim=1)
        if not is_ones.any() or len(rows) < 2:
            raise ValueError(
                f"invariance space '{self.name}': ones_share needs the all-ones descriptor and another in the training set"
            )
        return torch.where(is_ones, ones_share, (1 - ones_share) / (len(rows) - 1))

    def sample_index(self, step: int, seed: int = 0, weights: torch.Tensor | None = None) -> int:
        """Index of the training descriptor drawn at global ``step`` (stateless; uniform, or by
        ``weights`` from ``sampling_weights``)."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        gen = torch.Generator().manual_seed(int(seed) * _SEED_STRIDE + int(step))
        if weights is not None:
            return int(torch.multinomial(weights, 1, generator=gen).item())
        n = len(self.training_descriptors())
        return int(torch.randint(n, (1,), generator=gen).item())

    def sample(self, step: int, seed: int = 0, weights: torch.Tensor | None = None) -> torch.Tensor:
        """The training descriptor (K,) drawn at global ``step``; identical on every rank."""
        return self.training_descriptors()[self.sample_index(step, seed, weights)]

    def validate(self, i: Any, *, binary: bool = False) -> torch.Tensor:
        """Check a descriptor and return it as a float32 tensor of shape (K,).

        Raises:
            ValueError: naming the space and the problem, if ``i`` is not a length-K vector of
                finite values in [0, 1] (or of 0/1 values when ``binary``).
        """
        where = f"invariance space '{self.name}' (factors {', '.join(self.factors)})"
        try:
            t = torch.as_tensor(i, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"descriptor for {where} is not a numeric vector: {i!r}") from err
        t = t.detach()
        if t.ndim != 1 or t.shape[0] != self.dim:
            raise ValueError(f"descriptor for {where} must have shape ({self.dim},), got shape {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise ValueError(f"descriptor for {where} has non-finite values: {t.tolist()}")
        if (t < 0).any() or (t > 1).any():
            raise ValueError(f"descriptor for {where} must lie in [0, 1], got {t.tolist()}")
        if binary and not ((t == 0) | (t == 1)).all():
            raise ValueError(f"descriptor for {where} must be binary (0 or 1 values), got {t.tolist()}")
        return t

    def describe(self, i: Any) -> dict[str, float]:
        """Map factor names to the values of descriptor ``i`` (for JSON outputs)."""
        t = self.validate(i)
        return {f: round(float(v), 6) for f, v in zip(self.factors, t)}

    def label(self, i: Any) -> str:
        """A short label for a descriptor, e.g. ``[1,0] spatial``."""
        t = self.validate(i)
        vals = ",".join(f"{v:g}" for v in t.tolist())
        on = [f for f, v in zip(self.factors, t.tolist()) if v >= 0.5]
        return f"[{vals}] {'+'.join(on) if on else 'none'}"


def load_space(spec: str) -> InvarianceSpace:
    """A built-in space name, or a YAML/JSON file holding a space config (see ``InvarianceSpace.from_config``)."""
    path = Path(spec).expanduser()
    if path.suffix in (".yaml", ".yml", ".json"):
        if not path.is_file():
            raise FileNotFoundError(f"invariance space file not found: {path}")
        try:
            cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ValueError(f"{path} is not UTF-8 text: is it the space's YAML file?") from None
        except yaml.YAMLError as err:
            raise ValueError(f"{path} is not valid YAML/JSON: {err}") from err
        if not isinstance(cfg, dict):
            raise ValueError(f"{path} must hold a mapping with 'factors'")
        return InvarianceSpace.from_config(cfg)
    return InvarianceSpace.from_name(spec)


def quantise(i: torch.Tensor, bits: int) -> torch.Tensor:
    """Round each coordinate to the nearest of the 2**bits levels {0, 1/(2**bits-1), ..., 1}.

    Ties round up, so with ``bits=1`` the threshold is 0.5 and 0.5 -> 1 (the reference's rule).

    Args:
        i: descriptor(s) of shape (..., K) with values in [0, 1].
        bits: number of bits b >= 1.
    Returns:
        A tensor of the same shape and dtype.
    """
    if not isinstance(bits, int) or isinstance(bits, bool) or bits < 1:
        raise ValueError(f"quantise: bits must be an integer >= 1, got {bits!r}")
    i = torch.as_tensor(i)
    if not torch.is_floating_point(i):
        i = i.float()
    if not torch.isfinite(i).all() or (i < 0).any() or (i > 1).any():
        raise ValueError("quantise: descriptor values must be finite and inside [0, 1]")
    levels = 2**bits - 1
    return torch.floor(i * levels + 0.5) / levels


def parse_descriptors(text: str | Sequence[Sequence[float]], space: InvarianceSpace) -> torch.Tensor:
    """Parse ``"1,0;0,1;1,1"`` (or a list of lists) into validated descriptors of shape (N, K)."""
    if isinstance(text, str):
        rows = [r for r in text.replace(" ", "").split(";") if r]
        try:
            values = [[float(v) for v in r.split(",")] for r in rows]
        except ValueError as err:
            raise ValueError(f"could not parse descriptors {text!r}: use '1,0;0,1' (';' between descriptors)") from err
    else:
        values = [list(r) for r in text]
    if not values:
        raise ValueError("no descriptors given")
    return torch.stack([space.validate(v) for v in values])


BUILTIN_SPACES: dict[str, InvarianceSpace] = {
    "groups2": InvarianceSpace(
        name="groups2",
        factors=("spatial", "appearance"),
        ops={"spatial": ("crop", "flip"), "appearance": ("color_jitter", "grayscale", "blur")},
        descriptors=((1, 0), (0, 1), (1, 1)),
    ),
    "individual5": InvarianceSpace(
        name="individual5",
        factors=("crop", "flip", "color_jitter", "grayscale", "blur"),
        min_active=2,
    ),
    "audio7": InvarianceSpace(
        name="audio7",
        factors=("pitch_shift", "fade_in", "fade_out", "noise", "time_mask", "time_shift", "time_stretch"),
        min_active=2,
    ),
}
