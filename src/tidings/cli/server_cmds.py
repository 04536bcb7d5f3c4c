"""``tidings server init``, ``run``, ``pin`` and ``token``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tidings.cli.app import one_line_errors, out, server_app

if TYPE_CHECKING:
    from tidings.service.config import ServiceConfig

DataDir = Annotated[Path, typer.Argument(help="The service's data directory.")]

DEFAULT_PORT = 8443  # = ServiceConfig().port, `server run --port` default (a test keeps them equal)
EXPECTED_UPDATES = 100_000  # = tidings.catalog.layout.REFERENCE_UPDATES (a test keeps them equal)
LIMITS_PANEL = "Limits against hostile clients (defaults: docs/operations.md)"


def _limit(help_text: str) -> Any:
    """An option of a ``ServiceConfig`` limit: unset keeps the config's default (one source)."""
    return typer.Option(help=help_text, show_default=False, rich_help_panel=LIMITS_PANEL)


@server_app.command("init")
@one_line_errors
def init(
    data_dir: DataDir,
    root_threshold: Annotated[int, typer.Option(help="Root signatures required.")] = 1,
    root_keys: Annotated[int, typer.Option(help="Root keys to create.")] = 1,
    hostname: Annotated[
        list[str] | None,
        typer.Option(help="Name or address in the server certificate (repeatable)."),
    ] = None,
    expected_updates: Annotated[
        int,
        typer.Option(
            min=1, help="Updates the catalog should hold: sizes the index bins (fixed for good)."
        ),
    ] = EXPECTED_UPDATES,
) -> None:
    """Create DATA_DIR: signing keys, an empty signed catalog, a CA and a server certificate."""
    from rich.text import Text

    from tidings.catalog.config import CatalogConfig
    from tidings.catalog.create import InitOptions, create_data_dir
    from tidings.catalog.layout import BinCounts, CatalogLayout
    from tidings.clock import SystemClock
    from tidings.service.tls import ca_pin, create_ca, issue_server_certificate

    clock = SystemClock()
    names = tuple(hostname or ("localhost", "127.0.0.1", "::1"))

    def add_tls(tmp: Path) -> None:
        create_ca(tmp / "tls", clock=clock)
        issue_server_certificate(tmp / "tls", hostnames=names, clock=clock)

    layout = CatalogLayout(BinCounts.for_catalog(expected_updates))
    options = InitOptions(
        root_threshold=root_threshold, root_keys=root_keys, config=CatalogConfig(layout=layout)
    )
    create_data_dir(data_dir, clock=clock, options=options, extra=add_tls)
    out.print(
        f"Created {data_dir} (root {root_threshold}-of-{root_keys}, HTTPS for {', '.join(names)})"
    )
    pin = ca_pin(data_dir / "tls")
    out.print("CA pin for device enrollment:", Text(pin, style="bold"))


@server_app.command("run")
@one_line_errors
def run(
    data_dir: DataDir,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTPS port.")] = DEFAULT_PORT,
    plain_http_port: Annotated[
        int | None, typer.Option(help="Also serve content over plain HTTP on this port.")
    ] = None,
    certfile: Annotated[Path | None, typer.Option(help="A real certificate chain (PEM).")] = None,
    keyfile: Annotated[Path | None, typer.Option(help="The key of --certfile (PEM).")] = None,
    resign_interval: Annotated[
        float, typer.Option(help="Seconds between timestamp re-signing checks.")
    ] = 300.0,
    database_url: Annotated[
        str | None,
        typer.Option(help="The state database (default: SQLite in DATA_DIR/service.db)."),
    ] = None,
    header_timeout: Annotated[
        float | None, _limit("Seconds a client has to send a request line and headers.")
    ] = None,
    body_timeout: Annotated[
        float | None, _limit("Seconds a client has to send an enrollment body.")
    ] = None,
    max_connections_per_address: Annotated[
        int | None, _limit("Open connections per client address (IPv6: per /64), per port.")
    ] = None,
    limit_concurrency: Annotated[
        int | None, _limit("Connections plus requests per port before 503.")
    ] = None,
    enroll_max_failures: Annotated[
        int | None, _limit("Failed enrollments per address per window before 429.")
    ] = None,
    enroll_failure_window: Annotated[
        float | None, _limit("Seconds over which failed enrollments are counted.")
    ] = None,
) -> None:
    """Serve the signed catalog over HTTPS until SIGTERM."""
    from tidings.catalog.publisher import Publisher
    from tidings.service.server import serve  # uvicorn and FastAPI load only to serve

    publisher = Publisher(data_dir)  # fails early, with one line, on a wrong directory
    config = service_config(
        host=host,
        port=port,
        plain_http_port=plain_http_port,
        certfile=certfile,
        keyfile=keyfile,
        resign_interval_s=resign_interval,
        database_url=database_url,
        header_timeout_s=header_timeout,
        body_timeout_s=body_timeout,
        max_connections_per_address=max_connections_per_address,
        limit_concurrency=limit_concurrency,
        enroll_max_failures=enroll_max_failures,
        enroll_failure_window_s=enroll_failure_window,
    )
    serve(data_dir, config=config, resign=publisher.refresh_online)


def service_config(**settings: Any) -> ServiceConfig:
    """The ``ServiceConfig`` of ``server run``'s options; an option not given keeps its default.

    The defaults live in ``ServiceConfig`` alone: an option left at ``None`` is not passed.

    Raises:
        ConfigError: A value out of range, or limits that contradict each other.
    """
    import re

    from tidings.errors import ConfigError
    from tidings.service.config import ServiceConfig

    try:
        return ServiceConfig(
            **{name: value for name, value in settings.items() if value is not None}
        )
    except ConfigError as e:
        # ServiceConfig names fields, the user typed options: header_timeout_s, --header-timeout
        fields = "|".join(sorted(settings, key=len, reverse=True))
        message = re.sub(rf"\b({fields})\b", lambda m: option_name(m.group(1)), str(e))
        raise ConfigError(message) from e


def option_name(field: str) -> str:
    """The ``server run`` option of a ``ServiceConfig`` field: ``header_timeout_s`` ->
    ``--header-timeout`` (options drop the unit suffix)."""
    return "--" + field.removesuffix("_s").replace("_", "-")


@server_app.command("pin")
@one_line_errors
def pin(data_dir: DataDir) -> None:
    """Print the CA pin devices check at enrollment (sha256/...)."""
    from tidings.service.tls import ca_pin

    check_service_dir(data_dir)
    out.print(ca_pin(data_dir / "tls"))


@server_app.command("token")
@one_line_errors
def token(
    data_dir: DataDir,
    group: Annotated[str, typer.Option(help="The group enrolled devices join.")],
    expires: Annotated[str, typer.Option(help="Lifetime: 30m, 24h, 7d (at most 365d).")] = "24h",
    uses: Annotated[int, typer.Option(help="Enrollments allowed.")] = 1,
    unlimited: Annotated[bool, typer.Option(help="Any number of enrollments.")] = False,
    server_url: Annotated[
        str | None,
        typer.Option(
            help="The service as devices reach it, for the enroll line (default: https://, the "
            f"server certificate's first name and `server run`'s default port {DEFAULT_PORT}; "
            "give it when the service runs under another name or port).",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="The state database (default: SQLite in DATA_DIR/service.db)."),
    ] = None,
) -> None:
    """Create an enrollment token (shown once: only its hash is stored)."""
    from tidings.clock import SystemClock
    from tidings.errors import ConfigError
    from tidings.service.state import ServiceState, default_database_url, parse_lifetime
    from tidings.service.tls import ca_pin

    if unlimited and uses != 1:
        raise ConfigError("give --uses or --unlimited, not both")
    if uses < 1:
        raise ConfigError(f"--uses must be at least 1, not {uses}")
    lifetime = parse_lifetime(expires)
    if server_url is not None:
        from tidings.agent.enroll import check_server_url
        from tidings.errors import EnrollmentError

        try:  # the very check `agent enroll --server` makes: a URL printed here enrolls
            server_url = check_server_url(server_url, option="--server-url")
        except EnrollmentError as e:
            raise ConfigError(str(e)) from None
    check_service_dir(data_dir)
    url = server_url or default_server_url(data_dir / "tls")
    ca = ca_pin(data_dir / "tls")
    url_of_state = database_url or default_database_url(data_dir)
    with ServiceState.open(url_of_state, clock=SystemClock()) as state:
        issued = state.create_token(group, lifetime=lifetime, uses=None if unlimited else uses)
    allowed = "unlimited uses" if issued.uses is None else f"{issued.uses} use(s)"
    out.print(issued.token)
    out.print(f"group: {issued.group_id}")
    out.print(f"expires: {issued.expires_at.strftime('%Y-%m-%dT%H:%M:%SZ')} ({allowed})")
    enroll = f"tidings agent enroll STATE_DIR --server {url} --pin {ca}"
    out.print("enroll a device with:")
    out.print(f"  {enroll} --token {issued.token}")
    out.print("or, keeping the token out of the process list:")
    out.print(f"  TIDINGS_ENROLL_TOKEN={issued.token} {enroll}")


def check_service_dir(data_dir: Path) -> Path:
    """``data_dir`` as ``server init`` made it, with its CA; returns its ``tls/`` directory.

    Raises:
        ConfigError: Not a data directory (advice as ``require_data_dir`` gives it), or its
            CA certificate is missing.
    """
    from tidings.catalog.config import require_data_dir
    from tidings.errors import ConfigError

    tls = data_dir / "tls"
    if (tls / "ca.pem").is_file():
        return tls
    require_data_dir(data_dir)  # not a data directory: says what to give instead
    raise ConfigError(
        f"{tls / 'ca.pem'} is missing: restore tls/ from your backup (devices pin this CA; "
        "a new one would need every device enrolled again)"
    )


def default_server_url(tls_dir: Path) -> str:
    """``https://NAME:PORT``: the server certificate's first name, ``ServiceConfig``'s port.

    Raises:
        ConfigError: the server certificate is missing or unreadable.
    """
    from cryptography import x509

    from tidings.errors import ConfigError
    from tidings.service.config import ServiceConfig

    path = tls_dir / "server.pem"
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        first = str(next(iter(names)).value)
    except (OSError, ValueError, x509.ExtensionNotFound, StopIteration) as e:
        raise ConfigError(f"{path}: cannot read the server certificate's names ({e})") from None
    host = f"[{first}]" if ":" in first else first
    return f"https://{host}:{ServiceConfig().port}"
