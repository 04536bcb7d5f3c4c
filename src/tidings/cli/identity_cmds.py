"""Who may talk to the service: ``tidings server tokens|devices|revoke-token|revoke-device``
and ``tidings server cert renew``.

Wiring only (docs/operations.md, "Access model"): the decisions live in
``tidings.service.state`` and ``tidings.service.tls``, imported when a command runs. Lists
are plain-text tables (data never goes through Rich markup) or, with ``--json``, one JSON
object with ``"schema": 1``. A token's secret is never shown, only its id.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tidings.cli.app import columns, one_line_errors, out, print_json, server_app
from tidings.cli.json_views import SCHEMA

if TYPE_CHECKING:
    from datetime import datetime

    from tidings.service.state import ServiceState

cert_app = typer.Typer(help="The server's TLS certificate (issued by the service CA).")
server_app.add_typer(cert_app, name="cert")

DataDir = Annotated[Path, typer.Argument(help="The service's data directory.")]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(help="The state database (default: SQLite in DATA_DIR/service.db)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON object instead of a table.")]


@server_app.command("tokens")
@one_line_errors
def tokens(data_dir: DataDir, database_url: DatabaseUrl = None, as_json: AsJson = False) -> None:
    """List enrollment tokens by id (the tokens themselves are never stored)."""
    from tidings.clock import SystemClock

    now = SystemClock().now()
    with _state(data_dir, database_url) as state:
        records = state.tokens()
    rows: list[dict[str, Any]] = [
        {
            "token_id": t.token_id,
            "group_id": t.group_id,
            "status": t.status(now),
            "revoked": t.revoked,
            "uses": t.uses,
            "uses_left": t.uses_left,
            "created_at": _when(t.created_at),
            "expires_at": _when(t.expires_at),
        }
        for t in records
    ]
    if as_json:
        print_json({"schema": SCHEMA, "tokens": rows})
        return
    if not rows:
        _say(f"no tokens yet; create one with `tidings server token {data_dir} --group GROUP`")
        return
    table = [
        [
            r["token_id"],
            r["group_id"],
            r["status"],
            str(r["uses"]),
            _left(r["uses_left"]),
            r["expires_at"],
        ]
        for r in rows
    ]
    _say(columns([["ID", "GROUP", "STATUS", "USES", "LEFT", "EXPIRES"], *table]))


@server_app.command("devices")
@one_line_errors
def devices(data_dir: DataDir, database_url: DatabaseUrl = None, as_json: AsJson = False) -> None:
    """List enrolled devices, revoked ones included."""
    with _state(data_dir, database_url) as state:
        records = state.devices()
    rows: list[dict[str, Any]] = [
        {
            "device_id": d.device_id,
            "group_id": d.group_id,
            "hostname": d.hostname,  # as the device reported it: untrusted
            "enrolled_at": _when(d.enrolled_at),
            "revoked_at": None if d.revoked_at is None else _when(d.revoked_at),
            "cert_serial": d.cert_serial,
            "cert_sha256": d.cert_sha256,
        }
        for d in records
    ]
    if as_json:
        print_json({"schema": SCHEMA, "devices": rows})
        return
    if not rows:
        _say("no devices enrolled yet")
        return
    table = [
        [
            r["device_id"],
            r["group_id"],
            r["hostname"] or "-",
            r["enrolled_at"],
            r["revoked_at"] or "-",
        ]
        for r in rows
    ]
    _say(columns([["DEVICE", "GROUP", "HOSTNAME", "ENROLLED", "REVOKED"], *table]))


@server_app.command("revoke-token")
@one_line_errors
def revoke_token(
    data_dir: DataDir,
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The id `server tokens` lists.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an enrollment token: it enrolls no more devices (enrolled ones stay)."""
    with _state(data_dir, database_url) as state:
        record = state.revoke_token(token_id.strip().lower())
    _say(f"revoked token {record.token_id} (group {record.group_id}, {record.uses} enrolled)")


@server_app.command("revoke-device")
@one_line_errors
def revoke_device(
    data_dir: DataDir,
    device_id: Annotated[str, typer.Argument(help="The id `server devices` lists.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Record a device as revoked (for peer discovery and reports, to come)."""
    with _state(data_dir, database_url) as state:
        record = state.revoke_device(device_id)
    assert record.revoked_at is not None
    _say(f"revoked device {record.device_id} at {_when(record.revoked_at)}")
    _say(
        "recorded for peer discovery and reports (to come), which will refuse its certificate; "
        "nothing checks it yet, and the device can still fetch updates"
    )


@cert_app.command("renew")
@one_line_errors
def renew(
    data_dir: DataDir,
    hostname: Annotated[
        list[str] | None,
        typer.Option(help="Name or address in the certificate (repeatable; default: keep)."),
    ] = None,
    new_key: Annotated[bool, typer.Option(help="Also replace the server's key.")] = False,
    valid_days: Annotated[int, typer.Option(help="Validity in days.")] = 397,
) -> None:
    """Re-issue tls/server.pem from the existing CA: device pins stay valid."""
    from tidings.clock import SystemClock
    from tidings.errors import ConfigError
    from tidings.service.tls import (
        MAX_VALID_DAYS,
        ca_pin,
        current_hostnames,
        hostnames_of,
        renew_server_certificate,
    )

    if not 1 <= valid_days <= MAX_VALID_DAYS:
        raise ConfigError(f"--valid-days must be between 1 and {MAX_VALID_DAYS}, not {valid_days}")
    tls_dir = _tls_dir(data_dir)
    before = current_hostnames(tls_dir)
    leaf = renew_server_certificate(
        tls_dir, hostnames=hostname, clock=SystemClock(), valid_days=valid_days, new_key=new_key
    )
    names = hostnames_of(leaf)
    _say(f"renewed {tls_dir / 'server.pem'}, valid until {_when(leaf.not_valid_after_utc)}")
    _say(f"names: {', '.join(names)}")
    dropped = [name for name in before if name not in names]
    if dropped:
        _say(
            f"dropped (the old certificate had them): {', '.join(dropped)}; "
            "give every name to keep with --hostname"
        )
    _say(f"CA pin (unchanged): {ca_pin(tls_dir)}")
    _say("restart `tidings server run` to serve it")


def _tls_dir(data_dir: Path) -> Path:
    from tidings.cli.server_cmds import check_service_dir

    return check_service_dir(data_dir)


def _state(data_dir: Path, database_url: str | None) -> ServiceState:
    from tidings.clock import SystemClock
    from tidings.service.state import ServiceState, default_database_url

    _tls_dir(data_dir)  # never create a database in a directory that is not a data dir
    url = database_url or default_database_url(data_dir)
    return ServiceState.open(url, clock=SystemClock())


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _left(uses_left: int | None) -> str:
    return "unlimited" if uses_left is None else str(uses_left)


def _say(line: str) -> None:
    out.print(line, markup=False, highlight=False)
