"""``tidings agent enroll``: the device side of enrollment."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tidings.cli.app import agent_app, err, one_line, one_line_errors, out
from tidings.clock import SystemClock

if TYPE_CHECKING:
    from tidings.agent.state import DeviceIdentity


def enroll_device(state_dir: Path, **kwargs: Any) -> DeviceIdentity:
    """``tidings.agent.enroll.enroll``, loaded (with httpx, cryptography, tuf) when called."""
    from tidings.agent.enroll import enroll

    return enroll(state_dir, **kwargs)


@agent_app.command("enroll")
@one_line_errors
def enroll(
    state_dir: Annotated[Path, typer.Argument(help="The agent's state directory (new or empty).")],
    server: Annotated[str, typer.Option(help="The update service, https://host:port.")],
    pin: Annotated[str, typer.Option(help="The CA pin from `tidings server init` (sha256/...).")],
    token_file: Annotated[
        Path | None,
        typer.Option(help="A file holding the token from `tidings server token`."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            help="The token itself (visible to local users in the process list: prefer "
            "--token-file or TIDINGS_ENROLL_TOKEN)."
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to connect and per read.")] = 30.0,
) -> None:
    """Enroll this device: check the pin, get a device certificate, store the trust root.

    The token comes from exactly one of --token-file, the TIDINGS_ENROLL_TOKEN environment
    variable or --token.
    """
    from tidings.agent.enroll import TOKEN_ENV, enrollment_token

    secret = enrollment_token(
        option=token, token_file=token_file, environment=os.environ.get(TOKEN_ENV)
    )
    identity = enroll_device(
        state_dir,
        server=server,
        pin=pin,
        token=secret,
        clock=SystemClock(),
        hostname=socket.gethostname()[:253] or None,
        timeout_s=timeout,
        # Before the wait, so a slow server is not silence. Like every progress display,
        # only on a terminal: a script's stderr stays the one error line (docs/cli.md).
        progress=(lambda step: err.print(one_line(step))) if err.is_terminal else None,
    )
    out.print(f"enrolled device {identity.device_id} in group {identity.group_id}", highlight=False)
    out.print(f"state written to {state_dir}", highlight=False)
