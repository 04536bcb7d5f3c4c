"""Running the update service: uvicorn servers for HTTPS and, optionally, plain-HTTP content.

``serve`` is the process entry point (blocks until SIGTERM/SIGINT, then returns, so the
process exits 0). ``running_server`` runs the very same servers in a background thread for
tests and demos. Both build them with ``_ServerGroup``: sockets are bound before the event loop
starts, so port 0 resolves to a real port up front and bind errors are plain ``ConfigError``.

Logging: one line per listening port at start and one at stop. Each uvicorn server would log
its own process start, lifespan and shutdown lines (seven per port, the same for every port);
``_UvicornLifecycleFilter`` drops exactly those, warnings and errors pass.

Signals: uvicorn's own handling re-raises the signal after shutdown (the process would die by
SIGTERM, not exit 0) and handles one server only, so the group installs its own handlers and
stops every server together. A second signal forces exit without waiting for connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from tidings.errors import ConfigError
from tidings.service.app import create_app
from tidings.service.config import ServiceConfig
from tidings.service.protocol import guarded_protocol, serve_tls_in_protocol
from tidings.service.resources import AcceptErrorHandler, raise_open_files_limit
from tidings.service.tls import load_ca, tls_pair_problem

logger = logging.getLogger(__name__)

STARTUP_WAIT_S = 10.0  # seconds running_server waits for the servers to accept connections
_POLL_S = 0.02  # seconds
LISTEN_BACKLOG = 2048  # connections waiting to be accepted (uvicorn's default)


@dataclass(frozen=True)
class ServiceEndpoints:
    """Where a started service can be reached.

    Attributes:
        base_url: HTTPS base URL, e.g. ``https://127.0.0.1:8443``.
        plain_base_url: Plain-HTTP content base URL, or None when that port is disabled.
    """

    base_url: str
    plain_base_url: str | None


def serve(
    data_dir: Path, *, config: ServiceConfig, resign: Callable[[], object] | None = None
) -> None:
    """Run the update service until SIGTERM or SIGINT, then stop cleanly and return.

    Args:
        data_dir: The data directory (``tls/`` and ``repo/``).
        config: Ports, TLS files and limits.
        resign: The re-signing hook, called periodically in a worker thread.

    Raises:
        ConfigError: The TLS files are missing or unusable, or a port cannot be bound.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    group = _ServerGroup(data_dir, config, resign)
    raise_open_files_limit(config)
    asyncio.run(group.run(handle_signals=True))


@contextlib.contextmanager
def running_server(
    data_dir: Path, config: ServiceConfig, resign: Callable[[], object] | None = None
) -> Iterator[ServiceEndpoints]:
    """Run the service in a background thread for the duration of the block.

    Args:
        data_dir: The data directory (``tls/`` and ``repo/``).
        config: As for ``serve``; port 0 picks free ports, reported in the endpoints.
        resign: The re-signing hook.

    Yields:
        The URLs of the running servers.

    Raises:
        ConfigError: As for ``serve``, or the servers did not start within ``STARTUP_WAIT_S``.
    """
    group = _ServerGroup(data_dir, config, resign)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(group.run(handle_signals=False))
        except BaseException as e:  # reported to the caller's thread below
            failure.append(e)

    thread = threading.Thread(target=run, name="tidings-service", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_WAIT_S
        while not group.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError("the update service did not start") from (
                    failure[0] if failure else None
                )
            time.sleep(_POLL_S)
        yield group.endpoints
    finally:
        group.request_exit()
        thread.join(timeout=config.shutdown_grace_s + STARTUP_WAIT_S)
        group.close_sockets()


class _Server(uvicorn.Server):
    """A uvicorn server whose signals are handled by its ``_ServerGroup``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _ServerGroup:
    """The HTTPS server and the optional plain-HTTP content server, on pre-bound sockets."""

    def __init__(
        self, data_dir: Path, config: ServiceConfig, resign: Callable[[], object] | None
    ) -> None:
        certfile, keyfile = config.tls_files(data_dir)
        for path in (certfile, keyfile):
            if not path.is_file():
                raise ConfigError(
                    f"TLS file {path} not found: run `tidings server cert renew {data_dir}`"
                )
        _quiet_uvicorn_lifecycle()
        self._servers: list[tuple[_Server, socket.socket]] = []
        self._tls_hint = (
            f"run `tidings server cert renew {data_dir}`"
            if config.certfile is None
            else "check --certfile and --keyfile"
        )
        self._no_enrollment = _enrollment_problem(data_dir / "tls")
        try:
            app = create_app(data_dir, config=config, resign=resign)
            https_sock = self._add(app, config, config.port, (certfile, keyfile))
            self.endpoints = ServiceEndpoints(_url("https", https_sock), None)
            if config.plain_http_port is not None:
                content = create_app(data_dir, config=config, content_only=True)
                plain_sock = self._add(content, config, config.plain_http_port, None)
                self.endpoints = ServiceEndpoints(self.endpoints.base_url, _url("http", plain_sock))
        except BaseException:
            self.close_sockets()
            raise

    @property
    def started(self) -> bool:
        """True once every server accepts connections."""
        return all(server.started for server, _ in self._servers)

    async def run(self, *, handle_signals: bool) -> None:
        """Serve until ``request_exit`` (or, with ``handle_signals``, SIGTERM/SIGINT)."""
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(AcceptErrorHandler())  # out of fds: no traceback per accept
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_exit)
        for line in self._describe():
            logger.info("update service listening on %s", line)
        if self._no_enrollment is not None:
            logger.warning("enrollment is disabled until this is fixed: %s", self._no_enrollment)
        try:
            await asyncio.gather(*(self._serve_one(s, sock) for s, sock in self._servers))
        finally:
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            self.close_sockets()
        logger.info("update service stopped")

    def request_exit(self) -> None:
        """Ask every server to stop; asked again, stop without waiting for connections."""
        for server, _ in self._servers:
            if server.should_exit:
                server.force_exit = True
            server.should_exit = True

    def close_sockets(self) -> None:
        """Close the listening sockets (idempotent)."""
        for _, sock in self._servers:
            sock.close()

    async def _serve_one(self, server: _Server, sock: socket.socket) -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            for other, _ in self._servers:  # one server stopping (or failing) stops the other
                other.should_exit = True

    def _describe(self) -> list[str]:
        lines = [f"{self.endpoints.base_url} (metadata, content, enrollment)"]
        if self.endpoints.plain_base_url is not None:
            lines.append(f"{self.endpoints.plain_base_url} (content only)")
        return lines

    def _add(
        self, app: Any, config: ServiceConfig, port: int, tls: tuple[Path, Path] | None
    ) -> socket.socket:
        sock = _bind(config.host, port)
        uv_config = uvicorn.Config(
            app,
            # uvicorn's h11 protocol with read deadlines, a per-address cap and a head bound
            http=guarded_protocol(config),
            ws="none",
            lifespan="on",
            log_config=None,  # the entry point (CLI or ``serve``) configures logging
            proxy_headers=False,
            server_header=False,
            limit_concurrency=config.limit_concurrency,
            timeout_keep_alive=math.ceil(config.timeout_keep_alive_s),
            timeout_graceful_shutdown=math.ceil(config.shutdown_grace_s),
            h11_max_incomplete_event_size=config.max_header_bytes,
            ssl_certfile=None if tls is None else tls[0],
            ssl_keyfile=None if tls is None else tls[1],
            ssl_context_factory=None if tls is None else _tls12_context,
        )
        try:
            uv_config.load()
        except (OSError, ssl.SSLError) as e:
            sock.close()
            assert tls is not None  # plain HTTP loads no files
            problem = tls_pair_problem(*tls) or f"{tls[0]}, {tls[1]}: {e}"
            raise ConfigError(
                f"cannot load the TLS certificate: {problem}: {self._tls_hint}"
            ) from e
        serve_tls_in_protocol(uv_config, config)  # per-address cap and deadline before TLS
        self._servers.append((_Server(uv_config), sock))
        return sock


class _UvicornLifecycleFilter(logging.Filter):
    """Drops uvicorn's per-server lifecycle lines (checked with uvicorn 0.54, as pinned)."""

    LIFECYCLE = frozenset(
        {
            "Started server process [%d]",
            "Waiting for application startup.",
            "Application startup complete.",
            "Shutting down",
            "Waiting for application shutdown.",
            "Application shutdown complete.",
            "Finished server process [%d]",
        }
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or record.msg not in self.LIFECYCLE


_LIFECYCLE_FILTER = _UvicornLifecycleFilter()


def _quiet_uvicorn_lifecycle() -> None:
    logging.getLogger("uvicorn.error").addFilter(_LIFECYCLE_FILTER)  # once: same instance


def _enrollment_problem(tls_dir: Path) -> str | None:
    """Why the CA cannot issue device certificates (enrollment answers 503), or None."""
    try:
        load_ca(tls_dir)
    except ConfigError as e:
        return str(e)
    return None


def _tls12_context(
    _config: uvicorn.Config, default: Callable[[], ssl.SSLContext]
) -> ssl.SSLContext:
    context = default()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP; without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        # Listen now, not when uvicorn starts: with SO_REUSEADDR, Linux lets two sockets bind
        # one port and refuses only the second listen, which would fail inside the event loop.
        sock.listen(LISTEN_BACKLOG)
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host} port {port}: {e.strerror}") from e
    return sock


def _url(scheme: str, sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):  # noqa: S104 - naming a wildcard bind, not binding one
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"  # noqa: S104
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
