"""A total deadline for a whole HTTP exchange: connect, TLS, headers and body.

httpx's timeouts apply to each network operation, so a server that trickles its response
headers one byte at a time (each within the read timeout) would hold a client for days. This
wraps httpcore's network backend so every connect, TLS handshake, read and write gets at most
the time left before the current request's deadline (docs/architecture.md, "Trust model": slow
retrieval).
"""

from __future__ import annotations

import math
import ssl
import time
import typing
from collections.abc import Iterable

import httpcore
import httpx


class Deadline:
    """The deadline of the request in progress on one (single-threaded) client."""

    def __init__(self) -> None:
        self._at: float | None = None  # time.monotonic() seconds

    def start(self, seconds: float) -> None:
        """Begin a request that must finish within ``seconds``."""
        self._at = time.monotonic() + seconds

    def clear(self) -> None:
        """No request in progress."""
        self._at = None

    @property
    def expired(self) -> bool:
        """Whether the current request ran out of time."""
        return self._at is not None and time.monotonic() >= self._at

    def cap(self, timeout: float | None) -> float | None:
        """``timeout`` shortened to the time left; raises once nothing is left."""
        if self._at is None:
            return timeout
        left = self._at - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the request's total deadline passed")
        return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.cap(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.cap(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._deadline.cap(timeout))
        return _Stream(inner, self._deadline)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend, deadline: Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host, port, self._deadline.cap(timeout), local_address, socket_options
        )
        return _Stream(stream, self._deadline)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_unix_socket(path, self._deadline.cap(timeout), socket_options)
        return _Stream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(min(seconds, self._deadline.cap(math.inf) or 0.0))


def deadline_transport(
    deadline: Deadline, *, verify: ssl.SSLContext | bool, proxy: str | None
) -> httpx.HTTPTransport:
    """An httpx transport whose every network operation respects ``deadline``.

    Raises:
        RuntimeError: this httpx/httpcore release no longer has the hook we wrap; caught by
            the test suite on upgrade rather than silently losing the deadline.
    """
    transport = httpx.HTTPTransport(verify=verify, proxy=proxy)
    pool = transport._pool
    inner = getattr(pool, "_network_backend", None)
    if not isinstance(inner, httpcore.NetworkBackend):
        raise RuntimeError("httpcore's connection pool has no _network_backend to wrap")
    pool._network_backend = _Backend(inner, deadline)
    return transport
