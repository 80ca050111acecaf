"""The longest functions in src/ (issue 25: none over about 60 lines): name, file, lines; writes a JSON file.

python benchmarks/function_lengths.py [--top 15] [--out benchmarks/results/function_lengths.json]
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def function_lengths(root: Path = SRC) -> list[tuple[int, str]]:
    """(lines, "path:qualified name") of every function and method under ``root``, longest first."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append((node.end_lineno - node.lineno + 1, f"{path.relative_to(root)}:{node.name}"))
    return sorted(found, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = function_lengths()
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
