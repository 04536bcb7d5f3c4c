"""The minimum read rate and the resets the protocol decides, over real sockets on loopback.

A client reading steadily well above ``min_send_bytes_per_s`` must never be judged too slow,
however much the kernel's send buffer hides of its progress; a connection the server gives up
on while its response sits unread is reset, not left for the kernel to retry. Every wait is
bounded.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from pathlib import Path

import pytest
from test_hostile_connections import (
    BIG_PAYLOAD_BYTES,
    HONEST,
    TCP_ESTABLISHED,
    big_payload,
    connect,
    host_port,
    service_with,
    slow_reader,
)

from tidings.service.protocol import CountingTransport, acked_bytes, unsent_bytes

pytestmark = pytest.mark.e2e

READ_RATE = 64 * 1024  # bytes per second: 64 times the default minimum
READ_FOR_S = 7.0  # seconds: three send windows of 2 s and some
TCP_CLOSE = 7  # Linux tcp_states.h: what a reset leaves of a connection
RESET_WAIT_S = 30.0  # seconds: generous bound for "the server reset it"
UNREAD_BYTES = 2 * 1024 * 1024  # a response the kernels take whole, left unread


def paced_connection(url: str, context: ssl.SSLContext) -> socket.socket:
    """A connection from the honest address with the kernel's default buffers."""
    return connect(url, context, source=HONEST)


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_a_client_reading_64_kib_per_s_is_not_cut_off(
    data_dir: Path, ca_context: ssl.SSLContext, scheme: str
) -> None:
    target = big_payload(data_dir)
    with service_with(data_dir, send_window_s=2.0) as service:  # default minimum: 1 KiB/s
        url = service.base_url if scheme == "https" else service.plain_base_url
        assert url is not None
        host, _ = host_port(url)
        request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        with paced_connection(url, ca_context) as sock:
            sock.sendall(request.encode())
            received, cut_off = 0, False
            started = time.monotonic()
            while (elapsed := time.monotonic() - started) < READ_FOR_S:
                ahead_s = received / READ_RATE - elapsed
                if ahead_s > 0:  # steady: never a burst to catch up
                    time.sleep(min(ahead_s, READ_FOR_S - elapsed))
                    continue
                try:
                    chunk = sock.recv(4096)
                except (ConnectionError, ssl.SSLError, OSError):
                    cut_off = True
                    break
                if not chunk:
                    cut_off = True
                    break
                received += len(chunk)
    assert not cut_off, f"cut off after {received} bytes in {elapsed:.1f} s"
    assert READ_RATE * 3 < received < BIG_PAYLOAD_BYTES  # still mid-response, read steadily


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_an_unread_response_is_reset_at_the_idle_deadline(
    data_dir: Path, ca_context: ssl.SSLContext, scheme: str
) -> None:
    path = data_dir / "repo" / "targets" / "unread.bin"
    path.write_bytes(bytes(range(256)) * (UNREAD_BYTES // 256))
    limits = {"timeout_keep_alive_s": 1.0, "send_window_s": 600.0}  # only the idle deadline
    with service_with(data_dir, **limits) as service:
        url = service.base_url if scheme == "https" else service.plain_base_url
        assert url is not None
        host, _ = host_port(url)
        request = f"GET /targets/unread.bin HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        with slow_reader(url, ca_context, request, HONEST) as sock:
            deadline = time.monotonic() + RESET_WAIT_S
            state = TCP_ESTABLISHED
            while state == TCP_ESTABLISHED and time.monotonic() < deadline:
                time.sleep(0.1)
                state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
            with contextlib.suppress(OSError):
                sock.setblocking(False)
    # A plain close would queue its FIN behind the unread bytes: the client would stay
    # ESTABLISHED and the server hold them in FIN-WAIT-1, retrying against a zero window.
    assert state == TCP_CLOSE, f"client socket in TCP state {state}, not reset"


def test_acked_bytes_counts_what_the_peer_acknowledged_and_is_none_when_untold() -> None:
    with (
        socket.create_server((HONEST, 0)) as listener,
        socket.create_connection(listener.getsockname()),  # its kernel acknowledges, unread
    ):
        server, _ = listener.accept()
        with server:
            server.sendall(b"x" * 50_000)
            deadline = time.monotonic() + 10
            while acked_bytes(server) != 50_000 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert acked_bytes(server) == 50_000
            assert unsent_bytes(server) == 0
    assert acked_bytes(None) is None

    class ShortInfo:  # a kernel older than tcpi_bytes_acked
        def getsockopt(self, *args: object) -> bytes:
            return bytes(104)

    assert acked_bytes(ShortInfo()) is None


def test_without_the_kernel_count_taken_is_what_left_the_transport_buffer() -> None:
    class Inner:
        buffered = 0

        def get_extra_info(self, name: str, default: object = None) -> object:
            return default  # no socket: the kernel cannot be asked

        def write(self, data: bytes) -> None:
            self.buffered += len(data)

        def get_write_buffer_size(self) -> int:
            return self.buffered

    inner = Inner()
    counting = CountingTransport(inner)  # type: ignore[arg-type]
    counting.write(b"y" * 1000)
    assert counting.taken == 0
    inner.buffered = 300
    assert counting.taken == 700
