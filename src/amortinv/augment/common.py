"""What the vision and audio engines share: recipe lookup, the space's op check, a descriptor's active ops."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

import torch

from amortinv.spaces import InvarianceSpace

__all__ = ["pick_recipe", "check_space_ops", "active_ops"]

R = TypeVar("R")


def pick_recipe(recipe: str | R, recipes: Mapping[str, R], kind: str) -> R:
    """``recipes[recipe]`` for a name (a clear error for an unknown one), or the recipe object itself."""
    if not isinstance(recipe, str):
        return recipe
    if recipe not in recipes:
        raise ValueError(f"unknown {kind} augmentation recipe '{recipe}'; choose from {sorted(recipes)}")
    return recipes[recipe]


def check_space_ops(space: InvarianceSpace, known: Sequence[str], kind: str) -> None:
    """Refuse a space whose factors name ops the engine does not implement."""
    from amortinv.modality import MODALITIES

    unknown = sorted({op for ops in space.ops.values() for op in ops} - set(known))
    if unknown:
        raise ValueError(
            f"invariance space '{space.name}' uses ops the {kind} engine does not know: {unknown}: {kind} data needs a "
            f"space of {kind} ops, e.g. --space {MODALITIES[kind].default_space} (or a YAML space of the {kind} ops {list(known)})"
        )


def active_ops(
    space: InvarianceSpace,
    descriptor: torch.Tensor | Sequence[float],
    order: Sequence[str],
    extra: Mapping[str, str] | None = None,
) -> tuple[str, ...]:
    """The ops a binary descriptor switches on, in ``order``; ``extra`` maps an op to one it brings along."""
    d = space.validate(torch.as_tensor(descriptor, dtype=torch.float32, device="cpu"), binary=True)
    on = {op for factor, v in zip(space.factors, d.tolist()) if v == 1 for op in space.ops[factor]}
    on |= {extra[op] for op in list(on) if extra and op in extra}
    return tuple(op for op in order if op in on)
