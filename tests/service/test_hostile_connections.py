"""The update service under hostile connections, over real sockets on loopback.

Slow clients (headers or bodies dripping a byte at a time), idle ones, too many from one
address and oversized headers. The attacker connects from 127.0.0.1; the honest client from
127.0.0.2 (all of 127.0.0.0/8 is loopback on Linux), so the per-address cap is real.

No test asserts on speed: deadlines are configured short (1-2 s) and every wait is a bounded
poll with a generous limit, so a loaded machine only makes the tests slower.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from service_helpers import csr_for
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from tidings.clock import SystemClock
from tidings.service.config import ServiceConfig
from tidings.service.protocol import (
    UVICORN_INTERNALS,
    GuardedH11Protocol,
    HeadBoundedConnection,
    guarded_protocol,
)
from tidings.service.server import ServiceEndpoints, running_server
from tidings.service.state import ServiceState, default_database_url

pytestmark = pytest.mark.e2e

HONEST = "127.0.0.2"
ATTACKER = "127.0.0.1"
SLOW_CONNECTIONS = 200
CLOSE_WAIT_S = 60.0  # seconds: generous bound for "the server eventually closed it"
DRIP_EVERY_S = 0.2  # seconds between the bytes a slow client sends


@pytest.fixture
def config() -> ServiceConfig:
    return ServiceConfig(
        port=0,
        plain_http_port=0,
        shutdown_grace_s=2,
        limit_concurrency=64,  # what 200 slow connections would exhaust without the limits
        max_connections_per_address=16,
        timeout_keep_alive_s=1,
        header_timeout_s=2,
        body_timeout_s=2,
    )


@contextlib.contextmanager
def service_with(data_dir: Path, **limits: float) -> Iterator[ServiceEndpoints]:
    config = ServiceConfig(port=0, plain_http_port=0, shutdown_grace_s=2, **limits)  # type: ignore[arg-type]
    with running_server(data_dir, config) as endpoints:
        yield endpoints


def host_port(url: str) -> tuple[str, int]:
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    return host, int(port)


def connect(
    url: str, context: ssl.SSLContext, *, source: str = ATTACKER
) -> socket.socket | ssl.SSLSocket:
    """A connection from ``source``, TLS for https URLs."""
    host, port = host_port(url)
    tcp = socket.create_connection((host, port), timeout=30, source_address=(source, 0))
    if not url.startswith("https"):
        return tcp
    try:
        return context.wrap_socket(tcp, server_hostname=host)
    except BaseException:
        tcp.close()
        raise


def closed_by_server(sock: socket.socket, wait_s: float) -> bool:
    """True when the server closes ``sock`` within ``wait_s`` (EOF or reset); reads what comes."""
    deadline = time.monotonic() + wait_s
    sock.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65_536):
                return True
        except TimeoutError:  # nothing yet (TLS records such as session tickets do not count)
            continue
        except (ConnectionError, ssl.SSLError, OSError):
            return True
    return False


def exchange(url: str, context: ssl.SSLContext, request: bytes, *, source: str) -> bytes:
    """Send ``request`` on a fresh connection and read until the server closes it."""
    with connect(url, context, source=source) as sock:
        sock.sendall(request)
        chunks = []
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while chunk := sock.recv(65_536):
                chunks.append(chunk)
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@dataclass
class SlowClients:
    """Slow connections fed one byte every ``DRIP_EVERY_S`` by one thread, until closed."""

    sockets: list[socket.socket] = field(default_factory=list)
    drips: list[bytes] = field(default_factory=list)
    closed: set[int] = field(default_factory=set)  # indexes the server closed
    stop: threading.Event = field(default_factory=threading.Event)

    def add(self, sock: socket.socket, first: bytes, drip: bytes) -> None:
        index = len(self.sockets)
        self.sockets.append(sock)
        self.drips.append(drip)
        try:
            sock.sendall(first)
        except (ConnectionError, ssl.SSLError, OSError):
            self.closed.add(index)

    def run(self) -> None:
        for sock in self.sockets:
            sock.setblocking(False)
        until = time.monotonic() + CLOSE_WAIT_S
        while not self.stop.is_set() and time.monotonic() < until:
            for i, sock in enumerate(self.sockets):
                if i not in self.closed and self._closed_or_fed(sock, self.drips[i]):
                    self.closed.add(i)
            if len(self.closed) == len(self.sockets):
                return
            self.stop.wait(DRIP_EVERY_S)

    @staticmethod
    def _closed_or_fed(sock: socket.socket, drip: bytes) -> bool:
        try:
            if select.select([sock], [], [], 0)[0] and not sock.recv(65_536):
                return True
            sock.send(drip)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return False
        except (ConnectionError, ssl.SSLError, OSError):
            return True
        return False

    def close_all(self) -> None:
        for sock in self.sockets:
            sock.close()


def new_token(data_dir: Path) -> str:
    with ServiceState.open(default_database_url(data_dir), clock=SystemClock()) as state:
        return state.create_token("lab", lifetime=timedelta(hours=1)).token


def test_slow_clients_are_closed_by_their_deadline_and_an_honest_client_is_served(
    service: ServiceEndpoints,
    ca_context: ssl.SSLContext,
    data_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    host, _ = host_port(service.base_url)
    head_drip = f"GET /health HTTP/1.1\r\nHost: {host}\r\n".encode()
    body_head = (
        f"POST /v1/enroll HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n"
    ).encode()
    slow = SlowClients()
    dripper = threading.Thread(target=slow.run, name="slow-clients", daemon=True)
    try:
        for i in range(SLOW_CONNECTIONS):
            try:
                sock = connect(service.base_url, ca_context)
            except (ConnectionError, ssl.SSLError, OSError):
                continue  # refused at the handshake: closed by the server too
            if i % 2:
                slow.add(sock, head_drip, b"X")  # headers that never end
            else:
                slow.add(sock, body_head + b"{", b" ")  # a body that never ends
        dripper.start()
        transport = httpx.HTTPTransport(verify=ca_context, local_address=HONEST)
        with httpx.Client(base_url=service.base_url, transport=transport, timeout=30) as honest:
            assert honest.get("/health").status_code == 200
            assert honest.get("/metadata/timestamp.json").status_code == 200
            body = {"token": new_token(data_dir), "csr": csr_for()}
            enrolled = honest.post("/v1/enroll", json=body)
            assert enrolled.status_code == 200, enrolled.text
        dripper.join(CLOSE_WAIT_S + 10)
        assert not dripper.is_alive()
        still_open = len(slow.sockets) - len(slow.closed)
        assert still_open == 0, f"{still_open} slow connections still open"
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not errors  # bodies cut off by their deadline are not application errors
    finally:
        slow.stop.set()
        if dripper.is_alive():
            dripper.join(CLOSE_WAIT_S)
        slow.close_all()


@pytest.mark.parametrize("part", ["headers", "body"])
def test_dripping_a_request_cannot_hold_a_connection_past_its_deadline(
    service: ServiceEndpoints, ca_context: ssl.SSLContext, part: str
) -> None:
    host, _ = host_port(service.base_url)
    slow = SlowClients()
    try:
        sock = connect(service.base_url, ca_context, source="127.0.0.3")  # alone: no cap
        if part == "headers":
            slow.add(sock, f"GET /health HTTP/1.1\r\nHost: {host}\r\n".encode(), b"X")
        else:
            head = f"POST /v1/enroll HTTP/1.1\r\nHost: {host}\r\nContent-Length: 999\r\n\r\n"
            slow.add(sock, head.encode(), b" ")
        slow.run()  # drips until the server closes it, or gives up after CLOSE_WAIT_S
        assert slow.closed == {0}
    finally:
        slow.close_all()


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_idle_connection_is_closed_after_the_keep_alive_limit(
    service: ServiceEndpoints, ca_context: ssl.SSLContext, scheme: str
) -> None:
    url = service.base_url if scheme == "https" else service.plain_base_url
    assert url is not None
    with connect(url, ca_context) as sock:
        assert closed_by_server(sock, CLOSE_WAIT_S)


def test_keep_alive_connection_is_closed_when_idle_after_a_response(
    service: ServiceEndpoints, ca_context: ssl.SSLContext
) -> None:
    host, _ = host_port(service.base_url)
    with connect(service.base_url, ca_context) as sock:
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert sock.recv(65_536).startswith(b"HTTP/1.1 200")
        assert closed_by_server(sock, CLOSE_WAIT_S)


def test_connections_beyond_the_per_address_cap_are_closed_at_once(
    data_dir: Path, ca_context: ssl.SSLContext
) -> None:
    limits = {"max_connections_per_address": 4, "header_timeout_s": 120.0}
    with service_with(data_dir, timeout_keep_alive_s=120.0, **limits) as service:
        host, _ = host_port(service.base_url)
        partial = f"GET /health HTTP/1.1\r\nHost: {host}\r\n".encode()
        request = f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        with contextlib.ExitStack() as stack:
            held = [stack.enter_context(connect(service.base_url, ca_context)) for _ in range(4)]
            for sock in held:
                sock.sendall(partial)
            try:
                refused = exchange(service.base_url, ca_context, request, source=ATTACKER)
            except OSError:  # ConnectionError, ssl.SSLError: closed during the handshake
                refused = b""
            assert refused == b""  # closed without an answer
            assert status_of(exchange(service.base_url, ca_context, request, source=HONEST)) == 200
            held.pop().close()
            deadline = time.monotonic() + CLOSE_WAIT_S  # the slot frees once the server sees it
            while True:
                try:
                    answer = exchange(service.base_url, ca_context, request, source=ATTACKER)
                except OSError:  # still refused: the server has not seen the close yet
                    answer = b""
                if answer or time.monotonic() > deadline:
                    break
            assert status_of(answer) == 200


@pytest.mark.parametrize("scheme", ["https", "http"])
@pytest.mark.parametrize("pad_bytes", [17 * 1024, 40 * 1024])
def test_headers_beyond_max_header_bytes_get_431_and_the_connection_closes(
    service: ServiceEndpoints, ca_context: ssl.SSLContext, scheme: str, pad_bytes: int
) -> None:
    url = service.base_url if scheme == "https" else service.plain_base_url
    assert url is not None
    host, _ = host_port(url)
    request = f"GET /health HTTP/1.1\r\nHost: {host}\r\nX-Pad: {'a' * pad_bytes}\r\n\r\n".encode()
    response = exchange(url, ca_context, request, source=HONEST)  # ends: the server closed it
    assert status_of(response) == 431


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_headers_within_max_header_bytes_are_served(
    service: ServiceEndpoints, ca_context: ssl.SSLContext, scheme: str
) -> None:
    url = service.base_url if scheme == "https" else service.plain_base_url
    assert url is not None
    host, _ = host_port(url)
    pad = "a" * (15 * 1024)
    request = (
        f"GET /health HTTP/1.1\r\nHost: {host}\r\nX-Pad: {pad}\r\nConnection: close\r\n\r\n"
    ).encode()
    assert status_of(exchange(url, ca_context, request, source=HONEST)) == 200


def test_headers_dripping_past_max_header_bytes_get_431(
    service: ServiceEndpoints, ca_context: ssl.SSLContext
) -> None:
    host, _ = host_port(service.base_url)
    with connect(service.base_url, ca_context, source=HONEST) as sock:
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: {host}\r\n".encode())
        answer = b""
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            for _ in range(20):  # 20 KiB in 1 KiB headers, never finished
                sock.sendall(b"X-Pad: " + b"a" * 1016 + b"\r\n")
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while chunk := sock.recv(65_536):
                answer += chunk
    assert status_of(answer) == 431


BIG_PAYLOAD_BYTES = 16 * 1024 * 1024  # far more than loopback's socket buffers absorb
TCP_ESTABLISHED = 1  # Linux tcp_states.h; the first byte of TCP_INFO


def big_payload(data_dir: Path) -> str:
    """Write a large target and return its URL path."""
    path = data_dir / "repo" / "targets" / "big.bin"
    path.write_bytes(bytes(range(256)) * (BIG_PAYLOAD_BYTES // 256))
    return "/targets/big.bin"


def slow_reader(url: str, context: ssl.SSLContext, request: bytes, source: str) -> socket.socket:
    """A connection with a tiny receive buffer that sends ``request`` and never reads."""
    host, port = host_port(url)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
    tcp.bind((source, 0))
    tcp.settimeout(30)
    tcp.connect((host, port))
    sock = context.wrap_socket(tcp, server_hostname=host) if url.startswith("https") else tcp
    sock.sendall(request)
    return sock


def still_open_after(socks: list[socket.socket], wait_s: float) -> list[socket.socket]:
    """Those of ``socks`` the server has not ended within ``wait_s``; reads nothing."""
    deadline = time.monotonic() + wait_s
    while True:
        open_now = [
            s
            for s in socks
            if s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == TCP_ESTABLISHED
        ]
        if not open_now or time.monotonic() > deadline:
            return open_now
        time.sleep(0.1)


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_clients_that_never_read_their_response_are_closed_and_free_their_slots(
    data_dir: Path, ca_context: ssl.SSLContext, scheme: str
) -> None:
    target = big_payload(data_dir)
    limits = {"limit_concurrency": 8, "max_connections_per_address": 2}
    rate = {"send_window_s": 1.0, "min_send_bytes_per_s": 64 * 1024}
    with service_with(data_dir, **limits, **rate) as service:
        url = service.base_url if scheme == "https" else service.plain_base_url
        assert url is not None
        host, _ = host_port(url)
        get = f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        pipelined = f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() * 20_000
        with contextlib.ExitStack() as stack:
            readers = [  # 4 addresses x 2: every slot of limit_concurrency
                stack.enter_context(slow_reader(url, ca_context, get, f"127.0.1.{i // 2 + 1}"))
                for i in range(7)
            ]
            readers.append(  # thousands of pipelined requests whose responses are never read
                stack.enter_context(slow_reader(url, ca_context, pipelined, "127.0.1.4"))
            )
            open_now = still_open_after(readers, CLOSE_WAIT_S)
            assert not open_now, f"{len(open_now)} of {len(readers)} slow readers still open"
        request = f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        assert status_of(exchange(url, ca_context, request.encode(), source=HONEST)) == 200


def test_a_slow_but_steady_download_completes(data_dir: Path, ca_context: ssl.SSLContext) -> None:
    target = big_payload(data_dir)
    rate = {"send_window_s": 1.0, "min_send_bytes_per_s": 256 * 1024}
    with service_with(data_dir, **rate) as service:
        host, _ = host_port(service.base_url)
        request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        with slow_reader(service.base_url, ca_context, request.encode(), HONEST) as sock:
            received = 0
            started = time.monotonic()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                while chunk := sock.recv(16_384):
                    received += len(chunk)
                    # Pace to ~4 MiB/s, 16x the minimum: steady, never a burst to catch up.
                    ahead_s = received / (4 * 1024 * 1024) - (time.monotonic() - started)
                    if ahead_s > 0:
                        time.sleep(ahead_s)
    assert received > BIG_PAYLOAD_BYTES  # headers plus the whole body: not cut off


HANDSHAKE_WAIT_S = 30.0  # seconds: generous, yet half of asyncio's default 60 s deadline


def test_connections_that_never_start_tls_are_capped_and_closed_by_the_handshake_deadline(
    data_dir: Path, ca_context: ssl.SSLContext
) -> None:
    limits = {"max_connections_per_address": 16, "limit_concurrency": 64}
    with service_with(data_dir, tls_handshake_timeout_s=2.0, **limits) as service:
        host, port = host_port(service.base_url)
        with contextlib.ExitStack() as stack:
            bare = [  # TCP only: not one byte of TLS
                stack.enter_context(socket.create_connection((host, port), 30, (ATTACKER, 0)))
                for _ in range(300)
            ]
            request = f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            answer = exchange(service.base_url, ca_context, request.encode(), source=HONEST)
            assert status_of(answer) == 200
            still_open = still_open_after(bare, HANDSHAKE_WAIT_S)
            assert not still_open, f"{len(still_open)} of {len(bare)} still open"
        answer = exchange(service.base_url, ca_context, request.encode(), source=ATTACKER)
        assert status_of(answer) == 200  # their slots were freed


def test_uvicorn_still_has_what_the_guarded_protocol_relies_on() -> None:
    """Fails when an upgrade of uvicorn changes the internals protocol.py builds on."""
    for name in UVICORN_INTERNALS["methods"]:
        assert callable(getattr(H11Protocol, name, None)), name
    params = list(inspect.signature(H11Protocol.__init__).parameters)
    assert params == ["self", "config", "server_state", "app_state", "_loop"]

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("not called")

    loop = asyncio.new_event_loop()
    try:
        config = uvicorn.Config(app, http=guarded_protocol(ServiceConfig()), log_config=None)
        config.load()
        assert config.http_protocol_class.__mro__[1:3] == (GuardedH11Protocol, H11Protocol)
        protocol = config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=ServerState(), app_state={}, _loop=loop
        )
        for name in UVICORN_INTERNALS["attributes"]:
            assert hasattr(protocol, name), name
        for name in UVICORN_INTERNALS["config"]:
            assert hasattr(config, name), name
        assert isinstance(protocol.conn, HeadBoundedConnection)  # type: ignore[attr-defined]
        assert protocol.loop is loop  # type: ignore[attr-defined]
    finally:
        loop.close()
