"""Claims docs/cli.md and docs/search.md make about the service side, held to the code.

Threat: a reader trusting the reference (a script branching on an exit code, an integrator
looking for an API) is misled by a sentence nobody re-read when the code changed.
"""

from __future__ import annotations

import re

import typer.main
from doc_examples import REPO
from test_cli_reference_complete import section

from tidings.cli.app import EXIT_ERROR, EXIT_INTEGRITY, exit_code
from tidings.cli.main import registered_app
from tidings.errors import UntrustedServerError
from tidings.scan.session import UpdateSearcher, UpdateSession

SEARCH_DOC = REPO / "docs" / "search.md"


def exit_reasons(text: str) -> dict[int, str]:
    """``{code: "reasons"}`` from an ``Exit codes: 0, 1 (...), 3 (...), 4 (...)`` sentence."""
    sentence = " ".join(text.split("Exit codes:", 1)[1].split())
    return {int(code): reasons for code, reasons in re.findall(r"(\d+) \(([^()]*)\)", sentence)}


def test_enroll_documents_a_wrong_pin_under_the_exit_code_it_has() -> None:
    text = section("tidings agent enroll")
    assert text is not None
    reasons = exit_reasons(text)
    wrong_pin = exit_code(UntrustedServerError("https://h", "its CA is not the one --pin names"))
    assert wrong_pin == EXIT_INTEGRITY
    assert "wrong pin" in reasons[EXIT_INTEGRITY]
    assert "wrong pin" not in reasons[EXIT_ERROR]


def test_ctrl_c_documents_that_server_run_exits_0() -> None:
    text = (REPO / "docs" / "cli.md").read_text("utf-8")
    [ctrl_c] = [line for line in text.split("\n- ") if line.startswith("**Ctrl-C**")]
    assert "`tidings server run`" in ctrl_c and "exits 0" in ctrl_c
    run = section("tidings server run")
    assert run is not None and "Ctrl-C" in exit_reasons(run)[0]


def test_search_names_only_interfaces_that_exist() -> None:
    text = SEARCH_DOC.read_text("utf-8")
    assert "HTTP API" not in text  # none exists yet
    assert "`UpdateSession(...).create_searcher().search(criteria)`" in text
    assert callable(UpdateSession.create_searcher) and callable(UpdateSearcher.search)
    assert "`tidings scan --criteria`" in text
    command = typer.main.get_command(registered_app()).commands["scan"]  # type: ignore[attr-defined]
    assert any("--criteria" in p.opts for p in command.params)
