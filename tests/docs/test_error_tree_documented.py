"""The error tree drawn in docs/architecture.md is the one errors.py draws and defines."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from tidings import errors

ROOT = Path(__file__).resolve().parents[2]


def _tree(text: str) -> list[str]:
    """The lines of the drawing that starts at ``TidingsError``, its own indentation removed."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "TidingsError")
    margin = len(lines[start]) - len(lines[start].lstrip())
    tree = []
    for line in lines[start:]:
        if not line.strip() or line.strip().startswith(("```", '"""')):
            break
        tree.append(line[margin:].rstrip())
    return tree


def test_architecture_draws_the_error_tree_errors_py_draws() -> None:
    documented = _tree((ROOT / "docs/architecture.md").read_text(encoding="utf-8"))
    drawn = _tree(errors.__doc__ or "")
    assert documented == drawn
    assert len(drawn) >= 10


def test_every_drawn_error_exists_with_the_drawn_parent() -> None:
    drawn = _tree(errors.__doc__ or "")
    names = [re.sub(r"^[│├└─\s]+", "", line).split()[0] for line in drawn]
    depth = [len(line) - len(re.sub(r"^[│├└─\s]+", "", line)) for line in drawn]
    defined = {
        name
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.TidingsError)
    }
    assert set(names) == defined  # nothing drawn that is not defined, nothing defined undrawn
    for i, name in enumerate(names[1:], start=1):
        parent = next(names[j] for j in range(i - 1, -1, -1) if depth[j] < depth[i])
        assert getattr(errors, name).__bases__ == (getattr(errors, parent),)
