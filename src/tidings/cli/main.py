"""Entry point of the ``tidings`` console script."""

from __future__ import annotations

from tidings.cli import (  # noqa: F401  (registers commands)
    agent_cmds,
    catalog_cmds,
    demo_cmd,
    gc_cmd,
    scan_cmd,
    server_cmds,
)
from tidings.cli.app import app


def main() -> None:
    """Run the CLI."""
    app()


if __name__ == "__main__":
    main()
