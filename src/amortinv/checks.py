"""Checks of option values, shared by every settings class and the library functions users call directly.

Each raises ``ValueError`` naming the option as the caller spells it (settings pass the command
line's ``--queue-size``, library functions their argument's name) and the value it got; none
imports torch.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["flag", "choice", "at_least", "finite", "finite_list", "human_size"]


def flag(name: str) -> str:
    """``queue_size`` as the command line spells it: ``--queue-size``."""
    return "--" + name.replace("_", "-")


def choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(
            f"unknown {name.lstrip('-').replace('-', ' ')} '{value}' ({name}); choose from {', '.join(choices)}"
        )


def at_least(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be >= {low} (a whole number), got {value!r}")


def finite(
    name: str,
    value: Any,
    low: float | None = None,
    above: float | None = None,
    high: float | None = None,
    below: float | None = None,
) -> None:
    """Refuse a value that is not a finite number inside the given bounds (``low``/``high`` inclusive, ``above``/``below`` strict)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (low is None or value >= low) and (above is None or value > above)
    ok = ok and (high is None or value <= high) and (below is None or value < below)
    if not ok:
        bounds = [f"{op} {v:g}" for op, v in ((">=", low), (">", above), ("<=", high), ("<", below)) if v is not None]
        raise ValueError(f"{name} must be {' and '.join([*bounds, 'finite'])}, got {value!r}")


def finite_list(name: str, values: Any, **bounds: float) -> None:
    """Refuse an empty list or any value ``finite`` refuses (same bounds)."""
    if not values:
        raise ValueError(f"{name} needs at least one value")
    for v in values:
        finite(name, v, **bounds)


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
