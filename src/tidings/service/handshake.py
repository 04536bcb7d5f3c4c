"""TLS for the update service inside the protocol: the per-address cap first, then a deadline.

With ``loop.create_server(ssl=...)`` asyncio runs the TLS handshake before any protocol sees
the connection, with a 60 s default deadline: bare TCP connections that never start TLS
escaped the per-address cap and every deadline, and enough of them exhausted file
descriptors. Here the listening socket is plain TCP; each accepted connection gets a
``TLSAcceptor`` that

- counts it against its address's cap at once (``GuardedH11Protocol.admit``);
- enters it in the port's table of handshakes in progress (``limits.HandshakeTable``): an
  address with ``max_handshakes_per_address`` handshakes in progress is refused; when
  ``limit_concurrency`` are in progress the *oldest* is aborted to make room. Refusing the
  newcomer instead let 8 addresses x 32 stalled ClientHellos lock every client out of HTTPS;
- runs the handshake with ``loop.start_tls`` (public asyncio API) within
  ``tls_handshake_timeout_s``, then hands the TLS transport to the guarded h11 protocol, which
  from then on sees an ordinary HTTPS connection.

Invariant: every connection counted is released exactly once, by the acceptor when its
handshake fails and by the h11 protocol's ``connection_lost`` after it succeeded.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tidings.service.limits import HandshakeTable, LogThrottle, address_key

if TYPE_CHECKING:
    from tidings.service.config import ServiceConfig
    from tidings.service.protocol import GuardedH11Protocol

logger = logging.getLogger(__name__)

LOG_WINDOW_S = 60.0  # seconds: at most one line per address (and one for the full table)
TABLE_FULL = "*"  # the log throttle's key for "the table is full", whoever arrived


class _Handshakes:
    """Handshakes in progress on one port: the table deciding who may run, and its log lines."""

    def __init__(self, *, limit: int, max_per_address: int, max_addresses: int) -> None:
        self.table: HandshakeTable[TLSAcceptor] = HandshakeTable(
            limit=limit, max_per_address=max_per_address
        )
        self._log_throttle = LogThrottle(window_s=LOG_WINDOW_S, max_addresses=max_addresses)

    def log(self, key: str, message: str) -> None:
        """A WARNING about ``key``, at most one per ``LOG_WINDOW_S``, with what was left out."""
        left_out = self._log_throttle.admit(key, asyncio.get_running_loop().time())
        if left_out is None:
            return
        more = f" ({left_out} more like it not logged)" if left_out else ""
        logger.warning("%s%s", message, more)


class TLSAcceptor(asyncio.Protocol):
    """The TCP side of one HTTPS connection until its TLS handshake is done."""

    def __init__(
        self,
        app: GuardedH11Protocol,
        context: ssl.SSLContext,
        *,
        timeout_s: float,
        handshakes: _Handshakes,
    ) -> None:
        self._app = app
        self._context = context
        self._timeout_s = timeout_s
        self._handshakes = handshakes
        self._task: asyncio.Task[None] | None = None
        self._transport: asyncio.Transport | None = None
        self._key = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # a stream server's transport
        transport.pause_reading()  # the ClientHello is for start_tls
        if not self._app.admit(transport):
            return  # over the per-address connection cap: aborted
        peer = transport.get_extra_info("peername")
        key = address_key(str(peer[0])) if isinstance(peer, tuple) and peer else "?"
        handshakes = self._handshakes
        evicted = handshakes.table.start(key, self)
        if evicted is None:  # this address has its share of handshakes in progress: refuse
            cap = handshakes.table.address_count(key)
            handshakes.log(key, f"{key}: refused a connection: {cap} TLS handshakes in progress")
            self._app.release()
            transport.abort()
            return
        if evicted:
            handshakes.log(
                TABLE_FULL,
                f"TLS handshake table full ({handshakes.table.limit} in progress): "
                f"aborted the oldest, from {evicted[0].address}",
            )
            for stalled in evicted:
                stalled.evict()
        self._key, self._transport = key, transport
        task = asyncio.get_running_loop().create_task(self._handshake(transport))
        # Also when cancelled before it ran (connection lost at once): finish is idempotent.
        task.add_done_callback(lambda _: handshakes.table.finish(self))
        self._task = task

    @property
    def address(self) -> str:
        """The address key this handshake counts under ("?" before it is accepted)."""
        return self._key

    def evict(self) -> None:
        """Abort this handshake: the table is full and it is the oldest in progress."""
        if self._transport is not None:
            self._transport.abort()  # the descriptor goes now, not when the task next runs
        if self._task is not None:
            self._task.cancel()  # its handler releases the address's connection slot

    def connection_lost(self, exc: Exception | None) -> None:
        # Only before start_tls takes the transport over (refused, or gone at once): the
        # task may not have started, so the slot is released here (release is idempotent).
        if self._task is not None:
            self._task.cancel()
            self._app.release()

    async def _handshake(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(
                transport,
                self._app,
                self._context,
                server_side=True,
                ssl_handshake_timeout=self._timeout_s,
            )
        except (OSError, asyncio.CancelledError) as e:  # timed out, refused, reset, stopping
            self._handshakes.table.finish(self)
            logger.debug("TLS handshake failed: %r", e)
            transport.abort()
            self._app.release()
            if isinstance(e, asyncio.CancelledError):
                raise
            return
        self._handshakes.table.finish(self)  # done: never evicted from here on
        if tls is None:  # the connection closed as the handshake ended
            self._app.release()
            return
        self._app.connection_made(tls)


def tls_acceptor(
    protocol_class: type[GuardedH11Protocol], context: ssl.SSLContext, limits: ServiceConfig
) -> Callable[..., TLSAcceptor]:
    """A protocol factory for uvicorn that serves ``protocol_class`` over TLS from ``context``.

    Args:
        protocol_class: The guarded h11 protocol class of the port.
        context: The server's TLS context.
        limits: ``tls_handshake_timeout_s``, ``limit_concurrency`` (handshakes at once),
            ``max_handshakes_per_address`` and ``max_tracked_addresses`` (log throttle).

    Returns:
        A callable taking uvicorn's protocol keyword arguments, as ``Config.http`` does.
    """
    handshakes = _Handshakes(
        limit=limits.limit_concurrency,
        max_per_address=limits.max_handshakes_per_address,
        max_addresses=limits.max_tracked_addresses,
    )

    def factory(**uvicorn_kwargs: Any) -> TLSAcceptor:
        app = protocol_class(**uvicorn_kwargs)
        timeout_s = limits.tls_handshake_timeout_s
        return TLSAcceptor(app, context, timeout_s=timeout_s, handshakes=handshakes)

    return factory
