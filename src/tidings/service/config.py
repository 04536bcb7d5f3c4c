"""Configuration of the update service: one frozen dataclass with units and safe defaults.

Defaults are safe for a single machine: listen on loopback only, HTTPS only, bounded header
size, concurrency and URL length, read deadlines on every connection, a connection cap per
client address and a limit on failed enrollments per address (docs/operations.md, "Limits
against hostile clients"). An administrator widens them on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tidings.errors import ConfigError
from tidings.service.tls import SERVER_CERT, SERVER_KEY


@dataclass(frozen=True, kw_only=True)
class ServiceConfig:
    """How the update service listens and behaves.

    Attributes:
        host: Address to listen on (HTTPS and plain HTTP). Loopback by default.
        port: HTTPS port; 0 picks a free port (tests, demos).
        plain_http_port: Port serving only content (``/targets``, ``/health``) over plain
            HTTP, for devices and caches that fetch payloads without TLS (integrity comes from
            signed hashes, docs/architecture.md, "Trust model"). ``None`` disables it; 0 picks a
            free port.
        certfile: PEM certificate chain to present instead of ``DATA_DIR/tls/server.pem``.
        keyfile: Private key for ``certfile``; given together with it.
        resign_interval_s: Seconds between calls of the re-signing hook (timestamp/snapshot).
        timeout_keep_alive_s: Seconds a connection may stay idle (no byte of a request yet),
            counted from its opening or from the end of the previous response.
        header_timeout_s: Seconds a client has to send a complete request line and headers,
            counted like ``timeout_keep_alive_s``; sending slowly does not extend it.
        body_timeout_s: Seconds a client has to send a complete request body (enrollment),
            counted from the end of its headers.
        tls_handshake_timeout_s: Seconds a client has to complete its TLS handshake from
            the moment its connection is accepted. At most ``limit_concurrency`` handshakes
            run at once per port; when that many are in progress the oldest is aborted to
            make room for a new one.
        max_handshakes_per_address: TLS handshakes one client address may have in progress
            at once per port (IPv6: per /64); more are closed at once. Well below the table
            (``limit_concurrency``), so that a few addresses cannot churn it, and above the
            bursts of devices starting together behind one NAT address (a handshake takes
            milliseconds, so 16 at once is already a large burst).
        send_window_s: Seconds over which a client that does not keep up with its response
            (the server's send buffer is full) must read at least ``min_send_bytes_per_s``;
            a client that stalls is disconnected within about this long.
        min_send_bytes_per_s: Bytes per second a client must read of its response, averaged
            over ``send_window_s``, while it does not keep up; slower readers are disconnected.
        max_connections_per_address: Open connections one client address may hold per
            listening port (IPv6: per /64); more are closed at once.
        limit_concurrency: Connections plus in-flight requests above which the server answers
            503, per listening port.
        max_header_bytes: Bytes of request line plus headers accepted (slowloris, memory).
        max_path_chars: Characters of the request path accepted; longer paths get 414.
        shutdown_grace_s: Seconds in-flight requests get to finish on SIGTERM/SIGINT.
        enroll_max_failures: Failed enrollments (refused token, malformed request) one
            address may make within ``enroll_failure_window_s`` before it gets 429.
        enroll_failure_window_s: Seconds over which failed enrollments are counted.
        max_tracked_addresses: Client addresses the per-address limits remember; the least
            recently seen is forgotten first (bounds memory against many addresses).
        database_url: SQLAlchemy URL of the service state (enrollment tokens, devices);
            ``None`` means SQLite in ``DATA_DIR/service.db``. PostgreSQL for replicas.
    """

    host: str = "127.0.0.1"
    port: int = 8443
    plain_http_port: int | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    resign_interval_s: float = 300.0  # seconds
    timeout_keep_alive_s: float = 5.0  # seconds
    header_timeout_s: float = 10.0  # seconds
    body_timeout_s: float = 10.0  # seconds
    tls_handshake_timeout_s: float = 10.0  # seconds
    send_window_s: float = 10.0  # seconds
    min_send_bytes_per_s: int = 1024  # bytes per second
    max_connections_per_address: int = 32  # connections, per port
    max_handshakes_per_address: int = 16  # TLS handshakes in progress, per port
    limit_concurrency: int = 256  # connections + requests, per port
    max_header_bytes: int = 16_384  # bytes
    max_path_chars: int = 1024  # characters
    shutdown_grace_s: float = 5.0  # seconds
    enroll_max_failures: int = 10  # failed enrollments per address per window
    enroll_failure_window_s: float = 60.0  # seconds
    max_tracked_addresses: int = 10_000  # addresses
    database_url: str | None = None

    def __post_init__(self) -> None:
        for name, port in (("port", self.port), ("plain_http_port", self.plain_http_port)):
            if port is not None and not 0 <= port <= 65_535:
                raise ConfigError(f"{name} must be between 0 and 65535, not {port}")
        if self.port != 0 and self.plain_http_port == self.port:
            raise ConfigError(
                f"port and plain_http_port must differ (both {self.port}): "
                "HTTPS and plain HTTP cannot share one"
            )
        if (self.certfile is None) != (self.keyfile is None):
            raise ConfigError("certfile and keyfile must be given together")
        positive = {
            "resign_interval_s": self.resign_interval_s,
            "timeout_keep_alive_s": self.timeout_keep_alive_s,
            "header_timeout_s": self.header_timeout_s,
            "body_timeout_s": self.body_timeout_s,
            "tls_handshake_timeout_s": self.tls_handshake_timeout_s,
            "send_window_s": self.send_window_s,
            "min_send_bytes_per_s": self.min_send_bytes_per_s,
            "max_connections_per_address": self.max_connections_per_address,
            "max_handshakes_per_address": self.max_handshakes_per_address,
            "limit_concurrency": self.limit_concurrency,
            "max_header_bytes": self.max_header_bytes,
            "max_path_chars": self.max_path_chars,
            "shutdown_grace_s": self.shutdown_grace_s,
            "enroll_max_failures": self.enroll_max_failures,
            "enroll_failure_window_s": self.enroll_failure_window_s,
            "max_tracked_addresses": self.max_tracked_addresses,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(f"{name} must be positive, not {value}")
        if self.max_connections_per_address > self.limit_concurrency:
            raise ConfigError(
                "max_connections_per_address must not exceed limit_concurrency "
                f"({self.max_connections_per_address} > {self.limit_concurrency})"
            )
        if not self.host:
            raise ConfigError("host must not be empty")

    def tls_files(self, data_dir: Path) -> tuple[Path, Path]:
        """Return the (certificate chain, private key) paths the HTTPS server presents."""
        if self.certfile is not None and self.keyfile is not None:
            return self.certfile, self.keyfile
        return data_dir / "tls" / SERVER_CERT, data_dir / "tls" / SERVER_KEY
