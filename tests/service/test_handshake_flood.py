"""Unfinished TLS handshakes from a few addresses cannot lock everyone out of HTTPS.

Finding N1: 8 addresses x 32 connections that send a ClientHello and go silent filled the
port's handshake table (``limit_concurrency``) and every other client was refused for as long
as they kept it full. Over real sockets on loopback: 16 attacker addresses keep a small table
full of stalled handshakes while an honest client from another address must be served on every
try. No assertion on speed: every wait is bounded and generous.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import time
from pathlib import Path

import pytest

from tidings.errors import ConfigError
from tidings.service.config import ServiceConfig
from tidings.service.limits import HandshakeTable
from tidings.service.server import running_server

pytestmark = pytest.mark.e2e

HONEST = "127.0.0.250"
ATTACKERS = [f"127.0.3.{i}" for i in range(1, 17)]
TABLE = 16  # limit_concurrency: handshakes in progress at once, kept small to stay cheap
TRIES = 10
CLOSE_WAIT_S = 30.0  # seconds: generous bound for "the server has closed them"
TCP_ESTABLISHED = 1  # Linux tcp_states.h; the first byte of TCP_INFO


def client_hello(host: str) -> bytes:
    """The first flight of a real TLS client: a ClientHello record, as bytes."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=host)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16"  # a handshake record
    return hello


def stalled_handshake(host: str, port: int, source: str, hello: bytes) -> socket.socket | None:
    """A connection from ``source`` that sends ``hello`` and then nothing; None if refused."""
    try:
        sock = socket.create_connection((host, port), timeout=30, source_address=(source, 0))
    except OSError:
        return None
    try:
        sock.sendall(hello)
    except OSError:  # refused at once: the server closed it
        sock.close()
        return None
    return sock


def established(socks: list[socket.socket]) -> list[socket.socket]:
    """Those of ``socks`` the server has not closed (reads nothing)."""
    state = socket.IPPROTO_TCP, socket.TCP_INFO, 1
    return [s for s in socks if s.getsockopt(*state)[0] == TCP_ESTABLISHED]


def health(host: str, port: int, context: ssl.SSLContext) -> int:
    """Status of GET /health on a fresh HTTPS connection from the honest address."""
    tcp = socket.create_connection((host, port), timeout=30, source_address=(HONEST, 0))
    with context.wrap_socket(tcp, server_hostname=host) as sock:
        request = f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode())
        answer = b""
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while chunk := sock.recv(65_536):
                answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_stalled_handshakes_from_many_addresses_do_not_lock_out_an_honest_client(
    data_dir: Path, ca_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tidings.service.handshake")
    config = ServiceConfig(
        port=0,
        plain_http_port=0,
        shutdown_grace_s=2,
        limit_concurrency=TABLE,
        max_connections_per_address=8,
        max_handshakes_per_address=4,
        tls_handshake_timeout_s=120.0,  # the stalled handshakes outlive the test
    )
    with running_server(data_dir, config) as service, contextlib.ExitStack() as stack:
        host, port_text = service.base_url.split("://", 1)[1].rsplit(":", 1)
        port = int(port_text)
        hello = client_hello(host)
        stalled: list[socket.socket] = []

        def flood(per_address: int) -> None:
            for _ in range(per_address):
                for source in ATTACKERS:
                    sock = stalled_handshake(host, port, source, hello)
                    if sock is not None:
                        stalled.append(stack.enter_context(sock))

        flood(per_address=4)  # 64 stalled handshakes: four times the table
        statuses = []
        for _ in range(TRIES):
            flood(per_address=1)  # the table is full again before every try
            try:
                statuses.append(health(host, port, ca_context))
            except OSError as e:  # ConnectionError, ssl.SSLError: refused at the handshake
                statuses.append(type(e).__name__)
        assert statuses == [200] * TRIES
        # Those evicted were closed: the server holds at most the table's worth of them.
        deadline = time.monotonic() + CLOSE_WAIT_S
        while len(open_now := established(stalled)) > TABLE and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(open_now) <= TABLE, f"{len(open_now)} of {len(stalled)} stalled still open"
    full = [r for r in caplog.records if "handshake table full" in r.getMessage()]
    assert len(full) == 1  # logged, but once per minute however many were aborted


def test_a_full_table_evicts_its_oldest_handshakes_to_admit_a_newcomer() -> None:
    table: HandshakeTable[str] = HandshakeTable(limit=3, max_per_address=2)
    assert table.start("10.0.0.1", "a") == []
    assert table.start("10.0.0.2", "b") == []
    assert table.start("10.0.0.3", "c") == []
    assert table.start("10.0.0.4", "d") == ["a"]  # full: the oldest goes, not the newcomer
    table.finish("c")  # done in milliseconds: an honest one
    assert table.start("10.0.0.5", "e") == []  # room again: nothing evicted
    assert table.start("10.0.0.6", "f") == ["b"]
    assert len(table) == 3
    assert table.address_count("10.0.0.1") == 0  # evicted handshakes are forgotten
    table.finish("a")  # the evicted one ending later changes nothing
    assert len(table) == 3


def test_an_address_at_its_handshake_cap_is_refused_without_evicting_anyone() -> None:
    table: HandshakeTable[int] = HandshakeTable(limit=4, max_per_address=2)
    assert table.start("10.0.0.1", 1) == []
    assert table.start("10.0.0.1", 2) == []
    assert table.start("10.0.0.2", 3) == []
    assert table.start("10.0.0.2", 4) == []
    assert table.start("10.0.0.1", 5) is None  # at its cap: refused, nothing counted
    assert table.address_count("10.0.0.1") == 2 and len(table) == 4
    table.finish(1)
    assert table.start("10.0.0.1", 6) == []  # below its cap again; the table had room
    assert table.start("10.0.0.3", 7) == [2]  # full: the oldest in progress goes
    assert table.address_count("10.0.0.1") == 1


@pytest.mark.parametrize("value", [0, -1])
def test_max_handshakes_per_address_must_be_positive(value: int) -> None:
    with pytest.raises(ConfigError, match="max_handshakes_per_address"):
        ServiceConfig(max_handshakes_per_address=value)
