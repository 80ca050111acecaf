"""Lazy package exports (PEP 562): a package names what it exports and where, and a name's module
is imported on first use, so ``import amortinv`` and ``amortinv --help`` need no torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``; ``exports`` maps each public name to its module.

    A public name must not also be a submodule's name (``pkg.name``): once that submodule is
    imported, the module object would shadow the export.
    """
    clash = sorted(name for name, module in exports.items() if module == f"{package}.{name}")
    if clash:
        raise ImportError(f"{package}: exports {clash} share their submodule's name")

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
