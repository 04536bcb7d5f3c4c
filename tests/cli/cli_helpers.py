"""Helpers for CLI tests: run ``tidings`` as a user would, in a process or in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

TIDINGS = [sys.executable, "-m", "tidings.cli.main"]
PROCESS_TIMEOUT_S = 120  # a bound on a hung process, not a speed expectation


@dataclass(frozen=True)
class Ran:
    """What a command did: exit code and both streams, as text."""

    code: int
    stdout: str
    stderr: str


def tidings(*args: str | Path, columns: int | None = None) -> Ran:
    """Run ``tidings ARGS`` in a new process, stdout and stderr pipes (not terminals)."""
    env = dict(os.environ)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    done = subprocess.run(
        [*TIDINGS, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT_S,
        env=env,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def invoke(*args: str | Path) -> Ran:
    """Run ``tidings ARGS`` in this process (faster); an escaping exception fails the test."""
    from tidings.cli.main import registered_app

    result = CliRunner().invoke(registered_app(), [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


def set_line(manifest: Path, key: str, value: str) -> Path:
    """Replace (or add after ``kind``) the top-level ``key = ...`` line of a manifest."""
    lines = manifest.read_text().splitlines()
    quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    for i, line in enumerate(lines):
        if line.startswith(f"{key} = "):
            lines[i] = f"{key} = {quoted}"
            break
    else:
        at = next(i for i, line in enumerate(lines) if line.startswith("kind = "))
        lines.insert(at + 1, f"{key} = {quoted}")
    manifest.write_text("\n".join(lines) + "\n")
    return manifest
