"""Connection limits of the update service, inside uvicorn's h11 protocol.

h11 bounds only *incomplete* request heads (``max_incomplete_event_size``), so a head that
arrives in one piece may be far larger than ``max_header_bytes`` (up to what one read
returns, 64 KiB or more). ``guarded_protocol`` returns, per listening port, a subclass of
uvicorn's ``H11Protocol`` for ``uvicorn.Config(http=...)`` (uvicorn's documented way to pass a
protocol class) in which request line plus headers larger than ``max_header_bytes``, however
the bytes arrive, get 431 and the connection is closed (``HeadBoundedConnection``, on h11's
public API).

This is the one module that relies on uvicorn's internals: the ``H11Protocol`` constructor
and methods overridden below and its attributes ``conn`` and ``transport``.
``UVICORN_INTERNALS`` lists them;
tests/service/test_hostile_connections.py fails if uvicorn changes them, and pyproject.toml
pins uvicorn to the versions checked.
"""

from __future__ import annotations

import asyncio
import http
import logging
from typing import Any, ClassVar

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from tidings.service.config import ServiceConfig

logger = logging.getLogger(__name__)

# What this module uses of uvicorn beyond ``Config(http=...)``: methods it overrides or calls
# and attributes it reads (checked by the tests against the installed uvicorn).
UVICORN_INTERNALS = {
    "methods": (
        "data_received",
        "send_400_response",
    ),
    "attributes": ("conn", "transport"),
}

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


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a bounded request head.

    Subclassed per listening port by ``guarded_protocol``, which sets the class attributes.
    """

    limits: ClassVar[ServiceConfig]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.conn = HeadBoundedConnection(self.limits.max_header_bytes)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return  # answered with an error: nothing more is read
        super().data_received(data)

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
            self.transport.abort()
            return
        self.transport.close()


def guarded_protocol(config: ServiceConfig) -> type[GuardedH11Protocol]:
    """The protocol class for one listening port.

    Args:
        config: The limits (header bytes).

    Returns:
        A class to pass as ``uvicorn.Config(http=...)``.
    """

    class PortProtocol(GuardedH11Protocol):
        limits = config

    return PortProtocol
