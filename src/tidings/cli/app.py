"""The ``tidings`` command tree and its error boundary."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from tidings.errors import IntegrityError, TidingsError, TransportError

app = typer.Typer(
    name="tidings",
    help="Tidings: signed software updates, served and delivered securely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
server_app = typer.Typer(help="The update service: create a data directory, run it.")
keys_app = typer.Typer(help="Signing keys of the catalog.")
app.add_typer(server_app, name="server")
app.add_typer(keys_app, name="keys")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


def exit_code(error: TidingsError) -> int:
    """Distinct exit codes so scripts can tell a security event from a network hiccup."""
    if isinstance(error, IntegrityError):
        return 3
    if isinstance(error, TransportError):
        return 4
    return 1


def one_line_errors(func: F) -> F:
    """Turn every Tidings error into one red line on stderr and a non-zero exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TidingsError as e:
            err.print(f"[bold red]error:[/] {e}", highlight=False, markup=True)
            raise typer.Exit(exit_code(e)) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]
