"""``tidings agent enroll``: the device side of enrollment."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tidings.cli.app import agent_app, one_line_errors, out
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
    token: Annotated[str, typer.Option(help="A token from `tidings server token`.")],
    timeout: Annotated[float, typer.Option(help="Seconds to connect and per read.")] = 30.0,
) -> None:
    """Enroll this device: check the pin, get a device certificate, store the trust root."""
    identity = enroll_device(
        state_dir,
        server=server,
        pin=pin,
        token=token,
        clock=SystemClock(),
        hostname=socket.gethostname()[:253] or None,
        timeout_s=timeout,
    )
    out.print(f"enrolled device {identity.device_id} in group {identity.group_id}", highlight=False)
    out.print(f"state written to {state_dir}", highlight=False)
