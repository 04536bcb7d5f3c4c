"""Process resources of the update service under load: open files and accept errors.

- ``raise_open_files_limit``: the soft ``RLIMIT_NOFILE`` is raised to the hard limit at
  start-up; a warning says so when even that is below what the configured limits can use.
- ``AcceptErrorHandler``: when the process runs out of file descriptors, asyncio logs an
  ERROR with a traceback for every failed ``accept()`` (hundreds of MB a minute under a
  flood); this event-loop exception handler turns them into one WARNING per minute with the
  count left out, and passes every other error to asyncio's default handler.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

from tidings.service.config import ServiceConfig
from tidings.service.limits import LogThrottle

logger = logging.getLogger(__name__)

ACCEPT_ERROR = "socket.accept() out of system resource"  # asyncio's message (selector_events)
ACCEPT_LOG_WINDOW_S = 60.0  # seconds between lines about failed accepts
SPARE_FILES = 128  # descriptors beyond connections: logs, the database, files being served


def open_files_needed(config: ServiceConfig) -> int:
    """File descriptors the limits allow the service to use at once.

    Per port: ``limit_concurrency`` TLS handshakes in progress plus as many established
    connections (uvicorn still accepts, and answers 503, beyond its limit), plus spares.
    """
    ports = 1 if config.plain_http_port is None else 2
    return ports * 2 * config.limit_concurrency + SPARE_FILES


def raise_open_files_limit(config: ServiceConfig) -> None:
    """Raise the soft open-files limit to the hard one; warn when it stays below the need."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as e:  # e.g. a hard limit the platform refuses
            logger.debug("cannot raise the open-files limit to %s: %s", hard, e)
    needed = open_files_needed(config)
    if soft != resource.RLIM_INFINITY and soft < needed:
        logger.warning(
            "the open-files limit is %d, below the %d the connection limits can use: "
            "raise it (ulimit -n, LimitNOFILE=) or lower limit_concurrency",
            soft,
            needed,
        )


class AcceptErrorHandler:
    """An event-loop exception handler that throttles asyncio's failed-accept errors."""

    def __init__(self) -> None:
        self._throttle = LogThrottle(window_s=ACCEPT_LOG_WINDOW_S, max_addresses=1)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != ACCEPT_ERROR:
            loop.default_exception_handler(context)
            return
        left_out = self._throttle.admit("accept", loop.time())
        if left_out is None:
            return
        more = f" ({left_out} more not logged)" if left_out else ""
        logger.warning("cannot accept connections: %s; retrying%s", context.get("exception"), more)
