"""docs/cli.md documents every command of the real app, each of its options, each ``--json``.

The other direction of ``test_doc_commands``: there, every command line the docs show must
exist; here, everything that exists must be in the reference. A command or option added
without a line in docs/cli.md fails here, whoever adds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from doc_examples import REPO

from tidings.cli.main import registered_app

CLI_DOC = REPO / "docs" / "cli.md"
_HEADING = re.compile(r"^#{2,3} ", re.MULTILINE)
MIN_COMMANDS = 15  # the app has more today: a walk that finds none fails


def leaf_commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """(``tidings`` command path, click command) of every runnable command."""
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield " ".join(("tidings", *path)), command
        return
    for name, sub in subcommands.items():
        yield from leaf_commands(sub, (*path, name))


def section(title_prefix: str) -> str | None:
    """The text of the first cli.md section whose heading starts with `title_prefix`."""
    text = CLI_DOC.read_text(encoding="utf-8")
    for part in _HEADING.split(text)[1:]:
        heading = part.split("\n", 1)[0]
        if heading.startswith(f"`{title_prefix}") and heading[len(title_prefix) + 1] in " `":
            return part
    return None


COMMANDS = sorted(leaf_commands(typer.main.get_command(registered_app())), key=lambda c: c[0])


def test_the_app_has_enough_commands_to_check() -> None:
    assert len(COMMANDS) >= MIN_COMMANDS


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_and_option_has_its_section_in_cli_md(path: str, command: Any) -> None:
    text = section(path)
    assert text is not None, f"docs/cli.md has no section `### `{path} ...``"
    options = [o for p in command.params if p.param_type_name == "option" for o in p.opts]
    missing = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text)]
    assert missing == [], f"docs/cli.md, section {path}: options not documented: {missing}"
    if "--json" in options:
        assert section(f"{path} --json") is not None, f"docs/cli.md: no `{path} --json` section"
