"""The minimum read rate, over real sockets on loopback.

A client reading steadily well above ``min_send_bytes_per_s`` must never be judged too slow,
however much the kernel's send buffer hides of its progress. Every wait is bounded.
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import pytest
from test_hostile_connections import (
    BIG_PAYLOAD_BYTES,
    HONEST,
    big_payload,
    host_port,
    service_with,
)

from tidings.service.protocol import CountingTransport, acked_bytes

pytestmark = pytest.mark.e2e

READ_RATE = 64 * 1024  # bytes per second: 64 times the default minimum
READ_FOR_S = 7.0  # seconds: three send windows of 2 s and some


def paced_connection(url: str, context: ssl.SSLContext) -> socket.socket:
    """A connection from the honest address with the kernel's default buffers."""
    host, port = host_port(url)
    tcp = socket.create_connection((host, port), timeout=30, source_address=(HONEST, 0))
    if not url.startswith("https"):
        return tcp
    try:
        return context.wrap_socket(tcp, server_hostname=host)
    except BaseException:
        tcp.close()
        raise


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
