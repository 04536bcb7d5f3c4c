"""Connection limits of the update service, inside uvicorn's h11 protocol.

uvicorn has no deadline on a request's headers or body and no cap per client address: a few
hundred connections that trickle bytes (slowloris) or never finish a declared body hold
every slot of ``limit_concurrency``, and h11 bounds only *incomplete* request heads, so a head
arriving in one piece may be far larger than ``max_header_bytes``. ``guarded_protocol``
returns, per listening port, a subclass of uvicorn's ``H11Protocol`` for
``uvicorn.Config(http=...)`` (uvicorn's documented way to pass a protocol class) that adds:

- read deadlines (``limits.ReadDeadline``): no byte of a request within
  ``timeout_keep_alive_s``, headers not complete within ``header_timeout_s`` (both from the
  connection's opening or the previous response's end), a body not complete within
  ``body_timeout_s`` of its headers: the connection is aborted. Bytes that trickle in never
  push a deadline back.
- a cap per client address (``limits.ConnectionCounter``, IPv6 per /64): a connection beyond
  ``max_connections_per_address`` is aborted as soon as it is accepted (after the TLS
  handshake on HTTPS).
- request line plus headers larger than ``max_header_bytes``, however the bytes arrive: 431
  and the connection is closed (``HeadBoundedConnection``, on h11's public API).
- a minimum read rate for responses (``limits.SendRate``): once the transport's send buffer
  is full (``pause_writing``), a client must take ``min_send_bytes_per_s`` on average over
  each ``send_window_s`` (as bytes its kernel acknowledged, ``CountingTransport``) until it
  catches up, or the connection is reset. Without it a
  client that never reads its response (a large payload, or thousands of pipelined requests)
  held its slot forever. Pipelined requests cannot pile up unread input: uvicorn stops
  reading while a parsed request waits for its response (h11's ``PAUSED``), so at most one
  read's worth is buffered beyond the request being answered.

This is the one module that relies on uvicorn's internals: the ``H11Protocol`` constructor
and methods overridden below, its attributes ``conn``, ``transport``, ``loop``, ``client`` and
``flow`` (``FlowControl.write_paused``), and ``_unset_keepalive_if_required``.
``UVICORN_INTERNALS`` lists them; tests/service/test_hostile_connections.py fails if uvicorn
changes them, and pyproject.toml pins uvicorn to the versions checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import http
import logging
import socket
import struct
import termios
from typing import Any, ClassVar

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from tidings.service.config import ServiceConfig
from tidings.service.handshake import tls_acceptor
from tidings.service.limits import (
    ConnectionCounter,
    LogThrottle,
    ReadDeadline,
    ReadPhase,
    SendRate,
    address_key,
)

logger = logging.getLogger(__name__)

# What this module uses of uvicorn beyond ``Config(http=...)``: methods it overrides or calls
# and attributes it reads (checked by the tests against the installed uvicorn).
UVICORN_INTERNALS = {
    "methods": (
        "connection_made",
        "connection_lost",
        "data_received",
        "on_response_complete",
        "send_400_response",
        "pause_writing",
        "_unset_keepalive_if_required",
    ),
    "attributes": ("conn", "transport", "loop", "client", "flow"),
    "config": ("ssl", "http_protocol_class"),  # read and replaced after load()
}
LOG_WINDOW_S = 60.0  # seconds: at most one line per client address about its connections

_Next = h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]


class HeadBoundedConnection(h11.Connection):
    """An h11 server connection that refuses request heads over ``max_head_bytes`` (431).

    h11's ``max_incomplete_event_size`` only bounds a head still being received; this also
    measures a complete one, as the bytes h11 consumed to parse it. ``refusal_status`` is the
    status the last protocol error calls for (431 for a head too large, else 400).
    """

    def __init__(self, max_head_bytes: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_head_bytes)
        self._max_head_bytes = max_head_bytes
        self.refusal_status = 400

    def next_event(self) -> _Next:
        if self.their_state is not h11.IDLE:
            return self._next_event()
        buffered = len(self.trailing_data[0])
        event = self._next_event()
        if isinstance(event, h11.Request):
            head_bytes = buffered - len(self.trailing_data[0])
            if head_bytes > self._max_head_bytes:
                self.refusal_status = 431
                raise h11.RemoteProtocolError(
                    f"request head of {head_bytes} bytes, over {self._max_head_bytes}",
                    error_status_hint=431,
                )
        return event

    def _next_event(self) -> _Next:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as e:  # h11 hints 431 for an incomplete head too large
            self.refusal_status = e.error_status_hint
            raise


TCP_INFO_BYTES_ACKED = 120  # offset of struct tcp_info's u64 tcpi_bytes_acked (Linux >= 4.1)
_U64 = struct.Struct("=Q")


def acked_bytes(sock: Any) -> int | None:
    """The bytes of ours that the peer of ``sock`` acknowledged (``tcpi_bytes_acked``).

    What the client's kernel took, TLS records included, which it makes room for only as the
    client reads. None where the kernel does not tell (not Linux, older than 4.1, not TCP, or
    the socket is gone).
    """
    tcp_info = getattr(socket, "TCP_INFO", None)
    if sock is None or tcp_info is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, tcp_info, 256)
    except (OSError, ValueError, TypeError):
        return None
    if len(info) < TCP_INFO_BYTES_ACKED + _U64.size:
        return None
    return int(_U64.unpack_from(info, TCP_INFO_BYTES_ACKED)[0])


def unsent_bytes(sock: Any) -> int | None:
    """Bytes in the kernel's send queue of ``sock`` (unsent or unacknowledged), or None."""
    try:
        queued = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return int(struct.unpack("i", queued)[0])


def abort_connection(transport: asyncio.Transport) -> None:
    """Abort ``transport``; with a reset when the kernel still holds bytes for the client.

    A plain abort queues the FIN behind what the client has not taken: the kernel keeps that
    (megabytes on loopback) in FIN-WAIT-1, retrying against the client's zero window. Every
    abort the protocol decides goes through here. Where the send queue is known to be empty
    (an idle keep-alive connection whose responses were all taken) the client gets an
    ordinary FIN; where the kernel cannot tell, the reset.
    """
    sock = transport.get_extra_info("socket")
    if sock is not None and unsent_bytes(sock) != 0:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class CountingTransport(asyncio.Transport):
    """A transport that tells how much of what was written through it the client has taken.

    ``taken`` is, on Linux, the kernel's count of bytes the client acknowledged
    (``acked_bytes``): the kernel's send buffer grows to megabytes and the socket turns
    writable only once much of it drained, so what left the transport's buffer moves in rare
    leaps while the client reads steadily. Where the kernel does not tell, it is the bytes
    written less those still in the transport's buffer: what the kernel took. The measure is
    chosen once per connection, so deltas never mix the two.
    """

    def __init__(self, inner: asyncio.Transport) -> None:
        super().__init__()
        self._inner = inner
        self._written = 0
        self._socket = inner.get_extra_info("socket")
        self._acked = acked_bytes(self._socket)
        self._kernel_counts = self._acked is not None

    @property
    def taken(self) -> int:
        """Bytes the client has taken so far (only deltas are meaningful)."""
        if not self._kernel_counts:
            return self._written - self._inner.get_write_buffer_size()
        acked = acked_bytes(self._socket)
        if acked is not None:
            self._acked = acked
        return self._acked or 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._written += memoryview(data).nbytes
        self._inner.write(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def close(self) -> None:
        self._inner.close()

    def abort(self) -> None:
        self._inner.abort()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def write_eof(self) -> None:
        self._inner.write_eof()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with read deadlines, a per-address cap and a bounded head.

    Subclassed per listening port by ``guarded_protocol``, which sets the class attributes.
    """

    limits: ClassVar[ServiceConfig]
    counter: ClassVar[ConnectionCounter]
    log_throttle: ClassVar[LogThrottle]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.conn = HeadBoundedConnection(self.limits.max_header_bytes)
        self._deadline = ReadDeadline(
            idle_s=self.limits.timeout_keep_alive_s,
            head_s=self.limits.header_timeout_s,
            body_s=self.limits.body_timeout_s,
        )
        self._send_rate = SendRate(
            window_s=self.limits.send_window_s, min_bytes_per_s=self.limits.min_send_bytes_per_s
        )
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._send_timer: asyncio.TimerHandle | None = None
        self._counting: CountingTransport | None = None
        self._address: str | None = None
        self._admitted = False
        # asyncio's start_tls may deliver the first request before it returns the transport
        # (handshake.TLSAcceptor): kept until connection_made, at most one read.
        self._early: list[bytes] = []

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if not self.admit(transport):
            return
        self._counting = CountingTransport(transport)
        super().connection_made(self._counting)
        self._watch()
        early, self._early = self._early, []
        for data in early:
            self.data_received(data)

    def admit(self, transport: asyncio.Transport) -> bool:
        """Count this connection against its address's cap, once (HTTPS: before the handshake).

        Returns:
            False when the address is at its cap: the transport is then aborted.
        """
        if self._admitted:
            return True
        self._admitted = True
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            key = address_key(str(peer[0]))
            if not self.counter.try_open(key):
                open_now = self.counter.open_count(key)
                self._log(key, f"refused a connection: {open_now} already open from it")
                abort_connection(transport)
                return False
            self._address = key
        return True

    def release(self) -> None:
        """Stop counting this connection (closed, or its handshake failed)."""
        if self._address is not None:
            self.counter.close(self._address)
            self._address = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None
        self.release()
        if self._counting is not None:  # refused before uvicorn saw it: nothing of its to undo
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._counting is None:
            self._early.append(data)
            return
        if self.transport.is_closing():
            return  # refused, timed out or answered with an error: nothing more is read
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The idle deadline replaces uvicorn's keep-alive timer, which closes gracefully: on
        # TLS that waits up to asyncio's shutdown timeout (30 s) for a peer that may not care.
        self._unset_keepalive_if_required()
        self._watch()

    def pause_writing(self) -> None:
        super().pause_writing()
        # The client does not keep up: from now on it must read at the minimum rate.
        if self._send_timer is None and self._counting is not None:
            self._send_rate.start(self._counting.taken, self.loop.time())
            self._send_timer = self.loop.call_later(self._send_rate.window_s, self._check_send)

    def _check_send(self) -> None:
        self._send_timer = None
        if self._counting is None or self.transport.is_closing():
            return
        if self._send_rate.too_slow(self._counting.taken, self.loop.time()):
            if self._address is not None:
                self._log(self._address, "closed a connection: response read too slowly")
            abort_connection(self.transport)
        elif self.flow.write_paused:  # still behind: judge the next window too
            self._send_timer = self.loop.call_later(self._send_rate.window_s, self._check_send)

    def send_400_response(self, msg: str) -> None:
        status = self.conn.refusal_status if isinstance(self.conn, HeadBoundedConnection) else 400
        reason = http.HTTPStatus(status).phrase
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
        events: list[h11.Event] = [
            h11.Response(status_code=status, headers=headers, reason=reason.encode()),
            h11.Data(data=f"{reason}\n".encode()),
            h11.EndOfMessage(),
        ]
        try:
            for event in events:
                output = self.conn.send(event)
                if output:
                    self.transport.write(output)
        except h11.LocalProtocolError:  # a response had already started: nothing to add
            abort_connection(self.transport)
            return
        self.transport.close()

    def _watch(self) -> None:
        """(Re)arm the read deadline for what the connection waits for now."""
        if self.transport.is_closing():
            self._cancel_timer()
            return
        at = self._deadline.observe(self._read_phase(), self.loop.time())
        if at == self._timer_at:
            return
        self._cancel_timer()
        if at is not None:
            self._timer = self.loop.call_at(at, self._on_deadline)
            self._timer_at = at

    def _read_phase(self) -> ReadPhase | None:
        state = self.conn.their_state
        if state is h11.IDLE:
            return ReadPhase.HEAD if self.conn.trailing_data[0] else ReadPhase.IDLE
        if state is h11.SEND_BODY:
            return ReadPhase.BODY
        return None  # the request is complete (or the connection is ending)

    def _on_deadline(self) -> None:
        self._timer = self._timer_at = None
        phase = self._deadline.phase
        if phase is not None and phase is not ReadPhase.IDLE and self._address is not None:
            self._log(self._address, f"closed a connection: request {phase.value} too slow")
        abort_connection(self.transport)  # not close(): a TLS close would wait for the peer

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timer_at = None

    def _log(self, key: str, message: str) -> None:
        left_out = self.log_throttle.admit(key, self.loop.time())
        if left_out is None:
            return
        more = f" ({left_out} more about this address not logged)" if left_out else ""
        logger.warning("%s: %s%s", key, message, more)


def serve_tls_in_protocol(uv_config: Config, limits: ServiceConfig) -> None:
    """Move TLS from uvicorn's listening socket into the protocol (``handshake.TLSAcceptor``).

    uvicorn hands its SSL context to ``loop.create_server``, where the handshake has asyncio's
    default 60 s deadline and the protocol sees a connection only once it is done, so
    connections that never start TLS escaped the per-address cap and every deadline. After
    ``uv_config.load()`` (which reports unusable TLS files), the context moves to the acceptor.

    Args:
        uv_config: A loaded uvicorn config whose ``http`` is a ``guarded_protocol`` class.
        limits: The TLS handshake deadline and the cap on handshakes in progress.
    """
    context, protocol_class = uv_config.ssl, uv_config.http_protocol_class
    if context is None or not issubclass(protocol_class, GuardedH11Protocol):
        return
    uv_config.ssl = None
    uv_config.http_protocol_class = tls_acceptor(protocol_class, context, limits)  # type: ignore[assignment]


def guarded_protocol(config: ServiceConfig) -> type[GuardedH11Protocol]:
    """The protocol class for one listening port, with its own per-address counter.

    Args:
        config: The limits (deadlines, per-address cap, header bytes, tracked addresses).

    Returns:
        A class to pass as ``uvicorn.Config(http=...)``.
    """

    class PortProtocol(GuardedH11Protocol):
        limits = config
        counter = ConnectionCounter(max_per_address=config.max_connections_per_address)
        log_throttle = LogThrottle(
            window_s=LOG_WINDOW_S, max_addresses=config.max_tracked_addresses
        )

    return PortProtocol
