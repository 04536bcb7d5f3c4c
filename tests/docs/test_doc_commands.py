"""Every ``tidings ...`` command line the docs show names a command and options that exist.

A reader pastes a command line before reading the prose around it: a renamed option or a
command that was never added fails there, far from the docs that promised it. Lines are read
from shell and plain fenced blocks (``$ `` prompts, ``VAR=value`` prefixes, ``.venv/bin/``,
``\\`` continuations and ``# comments`` allowed) and from inline code spans, in README.md and
docs/*.md, and checked against the click tree of the real app: whatever commands it has when
the test runs, it is the judge. Values and placeholders are not checked, only command words
and ``--options``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main
from doc_examples import DOC_FILES, REPO, fenced_blocks, prose_code_spans
from typer.testing import CliRunner

from tidings.cli.main import registered_app
from tidings.service.tls import ca_pin

SHELL_INFOS = {"", "sh", "console", "shell", "bash"}
MIN_COMMAND_LINES = 40  # about as many as the docs hold today: an extractor that finds none fails
_ENV_ASSIGNMENT = re.compile(r"[A-Z_][A-Z0-9_]*=\S*")
_PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*|<[^>]*>")  # DATA_DIR, COMMAND, <version>
SAMPLE_TOKEN = "tdt_k3Xq..."
SAMPLE_PIN = "sha256/..."
SAMPLE_EXPIRY = "2030-01-02T09:00:00Z"
_GROUPING = str.maketrans("", "", "[]")  # [--json], [--uses 1 | --unlimited]


@dataclass(frozen=True)
class CommandLine:
    """One ``tidings`` invocation shown in the docs: where, and its words after ``tidings``."""

    where: str
    words: tuple[str, ...]


def command_words(line: str) -> tuple[str, ...] | None:
    """The words after ``tidings`` if ``line`` runs the ``tidings`` program with some, else None."""
    text = line.strip().removeprefix("$ ")
    try:
        words = shlex.split(text, comments=True)
    except ValueError:  # an unbalanced quote: prose, not a command
        return None
    while words and _ENV_ASSIGNMENT.fullmatch(words[0]):
        words.pop(0)
    if not words or words[0].rsplit("/", 1)[-1] != "tidings":
        return None
    cleaned = (w.translate(_GROUPING) for w in words[1:])
    kept = tuple(w for w in cleaned if w and w != "|" and w != "...")
    return kept or None  # the program's bare name, in prose


def block_lines(text: str) -> list[tuple[int, str]]:
    """(0-based offset, line) of a block's lines, ``\\`` continuations joined."""
    joined: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for offset, line in enumerate(text.splitlines()):
        if pending is not None:
            pending = (pending[0], pending[1] + " " + line.strip())
        else:
            pending = (offset, line)
        if pending[1].endswith("\\"):
            pending = (pending[0], pending[1][:-1])
            continue
        joined.append(pending)
        pending = None
    return joined


def documented_command_lines() -> list[CommandLine]:
    """Every ``tidings`` command line in fenced shell/plain blocks and inline code spans."""
    found: list[CommandLine] = []
    for path in DOC_FILES:
        name = path.relative_to(REPO)
        for block in fenced_blocks(path):
            if block.info not in SHELL_INFOS:
                continue
            for offset, line in block_lines(block.text):
                words = command_words(line)
                if words is not None:
                    found.append(CommandLine(f"{name}:{block.line + 1 + offset}", words))
        for number, span in prose_code_spans(path):
            words = command_words(span)
            if words is not None:
                found.append(CommandLine(f"{name}:{number}", words))
    return found


def resolve(line: CommandLine) -> tuple[Any, list[str]]:
    """The click command ``line`` runs and the ``--options`` it names; fails on an unknown word.

    Typer builds on its own copy of click, so groups and options are recognised by what they
    have (``commands``, ``opts``), not by click's classes.
    """
    command: Any = typer.main.get_command(registered_app())
    path = ["tidings"]
    options: list[str] = []
    arguments = False  # past the command words: the rest are arguments and values
    for word in line.words:
        if word.startswith("--"):
            options.append(word.split("=", 1)[0])
            continue
        subcommands = getattr(command, "commands", None)
        arguments = arguments or subcommands is None or bool(options)
        if arguments or _PLACEHOLDER.fullmatch(word):
            arguments = True
            continue
        assert word in subcommands, f"{line.where}: `{' '.join(path)}` has no command {word!r}"
        command, path = subcommands[word], [*path, word]
    return command, options


def option_names(command: Any) -> set[str]:
    names = {"--help"}
    for param in command.params:
        if param.param_type_name == "option":
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


COMMAND_LINES = documented_command_lines()


def test_the_docs_show_enough_command_lines_to_check() -> None:
    assert len(COMMAND_LINES) >= MIN_COMMAND_LINES, [c.where for c in COMMAND_LINES]


@pytest.mark.parametrize("line", COMMAND_LINES, ids=lambda c: c.where)
def test_documented_command_line_names_a_real_command_and_its_options(line: CommandLine) -> None:
    command, options = resolve(line)
    unknown = sorted(set(options) - option_names(command))
    assert unknown == [], f"{line.where}: `tidings {' '.join(line.words)}`: no option {unknown}"


def test_a_misspelt_option_or_command_in_a_doc_line_is_caught() -> None:
    wrong_option = CommandLine("here", command_words("tidings server run D --max-conns 3") or ())
    command, options = resolve(wrong_option)
    assert set(options) - option_names(command) == {"--max-conns"}
    with pytest.raises(AssertionError, match="has no command 'tokenz'"):
        resolve(CommandLine("here", command_words("$ tidings server tokenz D") or ()))
    assert command_words("TIDINGS_ENROLL_TOKEN=t .venv/bin/tidings agent enroll S # x") == (
        "agent",
        "enroll",
        "S",
    )
    assert command_words("tidings.service.tls") is None


def test_documented_token_output_is_what_server_token_prints(data_dir: Path) -> None:
    url = "https://updates.example.com:8443"
    argv = ["server", "token", str(data_dir), "--group", "lab", "--server-url", url]
    result = CliRunner().invoke(registered_app(), argv)
    assert result.exit_code == 0, result.output
    printed = result.stdout.splitlines()
    token, pin = printed[0], ca_pin(data_dir / "tls")
    expires = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
    shown = [
        expires.sub(SAMPLE_EXPIRY, line.replace(token, SAMPLE_TOKEN).replace(pin, SAMPLE_PIN))
        for line in printed
    ]
    samples = [
        [line.split("  # ")[0].rstrip() for line in block.text.splitlines()]
        for path in DOC_FILES
        for block in fenced_blocks(path)
        if f"\n{SAMPLE_TOKEN} " in f"\n{block.text}" or block.text.startswith(SAMPLE_TOKEN)
    ]
    assert len(samples) >= 2  # docs/cli.md and docs/operations.md
    for sample in samples:
        start = sample.index(SAMPLE_TOKEN)
        assert sample[start : start + len(shown)] == shown
