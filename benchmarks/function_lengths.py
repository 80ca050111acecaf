"""The longest functions in src/ (issue 25: none over about 60 lines): name, file, lines; writes a JSON file.

A function's length is its body without the docstring (a command's signature and Args list its options; they are
not logic to read). ``--whole`` counts from ``def`` to the last line instead.

python benchmarks/function_lengths.py [--top 15] [--out benchmarks/results/function_lengths.json]
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def function_lengths(root: Path = SRC, whole: bool = False) -> list[tuple[int, str]]:
    """(lines, "path:name") of every function and method under ``root``, longest first."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body
                if not whole and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                    body = body[1:] or body  # the docstring is not counted
                first = node.lineno if whole else body[0].lineno
                found.append((node.end_lineno - first + 1, f"{path.relative_to(root)}:{node.name}"))
    return sorted(found, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--out", default=None)
    parser.add_argument("--whole", action="store_true", help="count signature and docstring too")
    args = parser.parse_args()
    rows = function_lengths(whole=args.whole)
    for n, name in rows[: args.top]:
        print(f"{n:4d}  {name}")
    over = [r for r in rows if r[0] > 60]
    print(f"{len(over)} of {len(rows)} functions are over 60 lines")
    if args.out:
        Path(args.out).write_text(
            json.dumps({"longest": rows[: args.top], "over_60": len(over), "functions": len(rows)}, indent=1)
        )


if __name__ == "__main__":
    main()
