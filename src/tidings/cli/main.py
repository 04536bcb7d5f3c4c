"""Entry point of the ``tidings`` console script.

``main`` imports everything inside its ``try``: Ctrl-C at any moment once it runs, even while
Python loads the command tree, is one ``interrupted`` line on stderr and exit code 130. This
module itself imports nothing more than ``sys``, so the moments before ``main`` runs are as
few as the interpreter allows.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it
TYPE_CHECKING = False  # as typing.TYPE_CHECKING (mypy reads it so), without importing typing
if TYPE_CHECKING:
    import typer


def registered_app() -> typer.Typer:
    """The ``tidings`` app with every command registered.

    Importing a command module registers its commands; each imports only typer and
    ``tidings.cli.app`` at module level, so this stays cheap.
    """
    from tidings.cli import (  # noqa: F401  (registers commands)
        agent_cmds,
        catalog_cmds,
        demo_cmd,
        gc_cmd,
        identity_cmds,
        inventory_cmd,
        scan_cmd,
        server_cmds,
    )
    from tidings.cli.app import app

    return app


def main() -> None:
    """Run the CLI."""
    try:
        registered_app()(prog_name="tidings")
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit as e:
        if e.code == EXIT_INTERRUPTED:  # Typer turns Ctrl-C while it runs into a silent 130
            _interrupted()
        raise


def _interrupted() -> None:
    sys.stderr.write("interrupted\n")
    sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
