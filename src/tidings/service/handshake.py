"""TLS for the update service inside the protocol: the per-address cap first, then a deadline.

With ``loop.create_server(ssl=...)`` asyncio runs the TLS handshake before any protocol sees
the connection, with a 60 s default deadline: bare TCP connections that never start TLS
escaped the per-address cap and every deadline, and enough of them exhausted file
descriptors. Here the listening socket is plain TCP; each accepted connection gets a
``TLSAcceptor`` that

- counts it against its address's cap at once (``GuardedH11Protocol.admit``), and refuses it
  when more than ``limit_concurrency`` handshakes are already in progress on the port;
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

if TYPE_CHECKING:
    from tidings.service.config import ServiceConfig
    from tidings.service.protocol import GuardedH11Protocol

logger = logging.getLogger(__name__)


class _Handshakes:
    """Handshakes in progress on one port: their tasks (kept referenced) and a cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.tasks: set[asyncio.Task[None]] = set()


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

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # a stream server's transport
        transport.pause_reading()  # the ClientHello is for start_tls
        if len(self._handshakes.tasks) >= self._handshakes.limit:
            transport.abort()  # the port is flooded with handshakes: refuse, cheaply
            return
        if not self._app.admit(transport):
            return  # over the per-address cap: aborted
        task = asyncio.get_running_loop().create_task(self._handshake(transport))
        self._handshakes.tasks.add(task)
        task.add_done_callback(self._handshakes.tasks.discard)
        self._task = task

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
            logger.debug("TLS handshake failed: %r", e)
            transport.abort()
            self._app.release()
            if isinstance(e, asyncio.CancelledError):
                raise
            return
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
        limits: ``tls_handshake_timeout_s`` and ``limit_concurrency`` (handshakes at once).

    Returns:
        A callable taking uvicorn's protocol keyword arguments, as ``Config.http`` does.
    """
    handshakes = _Handshakes(limits.limit_concurrency)

    def factory(**uvicorn_kwargs: Any) -> TLSAcceptor:
        app = protocol_class(**uvicorn_kwargs)
        timeout_s = limits.tls_handshake_timeout_s
        return TLSAcceptor(app, context, timeout_s=timeout_s, handshakes=handshakes)

    return factory
