"""The ``tidings`` command tree, its consoles and its error boundary.

Invariants:
- Importing this module is cheap (typer and rich's console only): every command module
  imports just this at module level and loads the rest of Tidings inside its command body,
  so ``tidings --help`` and Ctrl-C stay fast.
- Nothing printed is ever read as Rich markup or emoji codes: titles, descriptions, criteria,
  hardware IDs and error messages come from publishers, devices and users. The consoles are
  built with ``markup=False``; the few styled words are ``rich.text.Text`` objects.
- No control character from such text reaches the terminal: an ESC could recolour, retitle or
  rewrite what the user sees, a newline forge a line. Every data field goes through
  ``one_line`` (``columns`` and ``labelled`` do it), which shows each one as ``?``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from tidings.errors import IntegrityError, TidingsError, TransportError

app = typer.Typer(
    name="tidings",
    help="Tidings: signed software updates, served and delivered securely.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
server_app = typer.Typer(help="The update service: create a data directory, run it.")
keys_app = typer.Typer(help="Signing keys of the catalog.")
agent_app = typer.Typer(help="The device agent: enroll with an update service, show inventory.")
app.add_typer(server_app, name="server")
app.add_typer(keys_app, name="keys")
app.add_typer(agent_app, name="agent")


def plain_console(*, stderr: bool = False) -> Console:
    """A console that prints text as given: no markup, no emoji codes, no highlighting."""
    return Console(stderr=stderr, soft_wrap=True, markup=False, emoji=False, highlight=False)


out = plain_console()
err = plain_console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

EXIT_ERROR = 1  # an expected failure: bad input, wrong directory, refused request
EXIT_INTEGRITY = 3  # a security event: signature, hash, rollback or expiry check failed
EXIT_TRANSPORT = 4  # the network: unreachable, timed out, HTTP error


def exit_code(error: TidingsError) -> int:
    """Distinct exit codes so scripts can tell a security event from a network hiccup."""
    if isinstance(error, IntegrityError):
        return EXIT_INTEGRITY
    if isinstance(error, TransportError):
        return EXIT_TRANSPORT
    return EXIT_ERROR


def labelled(label: str, style: str, message: object) -> Text:
    """``label message`` with only the label styled; the message is never parsed as markup
    and is shown on one line (it may quote a server's or a publisher's text)."""
    return Text.assemble((label, style), " ", one_line(str(message)))


def print_json(document: object) -> None:
    """One JSON document on stdout, written directly: it can be large, and is already plain."""
    import json

    out.file.write(json.dumps(document, indent=2) + "\n")


def columns(rows: Sequence[Sequence[str]]) -> str:
    """Aligned plain-text columns, two spaces apart, never truncated (ids stay whole for copying).

    The first row is the header. Cells are data from publishers, devices or users: each is
    printed on one line, control characters shown as ``?``. The last column is not padded.
    """
    cells = [[one_line(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]) - 1)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in cells
    )


def one_line(text: str) -> str:
    """``text`` safe for a terminal: every control or other non-printable character (ESC,
    newline, tab, bidi overrides) shown as ``?``."""
    return "".join(c if c.isprintable() else "?" for c in text)


def one_line_errors(func: F) -> F:
    """Turn every Tidings error into one red line on stderr and a non-zero exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TidingsError as e:
            err.print(labelled("error:", "bold red", e))
            raise typer.Exit(exit_code(e)) from None
        # Ctrl-C: Typer turns KeyboardInterrupt into exit code 130; main() says "interrupted".

    return wrapper  # type: ignore[return-value]


def _print_version(show: bool) -> None:
    if show:
        from importlib.metadata import version  # only when asked

        out.print(f"tidings {version('tidings')}")
        raise typer.Exit()


@app.callback()
def tidings(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the installed version and exit.",
        ),
    ] = False,
) -> None:
    """Tidings: signed software updates, served and delivered securely."""
