"""The update service under hostile connections, over real sockets on loopback.

Oversized headers, however they arrive. The attacker connects from 127.0.0.1, the honest
client from 127.0.0.2 (all of 127.0.0.0/8 is loopback on Linux).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
import ssl

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from tidings.service.config import ServiceConfig
from tidings.service.protocol import (
    UVICORN_INTERNALS,
    GuardedH11Protocol,
    HeadBoundedConnection,
    guarded_protocol,
)
from tidings.service.server import ServiceEndpoints

pytestmark = pytest.mark.e2e

HONEST = "127.0.0.2"
ATTACKER = "127.0.0.1"
SLOW_CONNECTIONS = 200
CLOSE_WAIT_S = 60.0  # seconds: generous bound for "the server eventually closed it"
DRIP_EVERY_S = 0.2  # seconds between the bytes a slow client sends


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
        assert isinstance(protocol.conn, HeadBoundedConnection)  # type: ignore[attr-defined]
        assert protocol.loop is loop  # type: ignore[attr-defined]
    finally:
        loop.close()
