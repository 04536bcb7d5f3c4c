"""The re-signing schedule: calls a blocking hook at startup and every interval, off the loop.

Invariants: a failing hook is logged and retried at the next interval, never stopping the
server; stopping the schedule is prompt: the sleep is cancelled at once, and a call already in
progress gets at most ``grace_s`` to finish. The hook runs in a daemon thread, so a hook that
hangs (a remote signer that never answers) cannot keep the process from exiting; re-signing
writes atomically (``fsutil.atomic_write``), so abandoning it never leaves a half-written file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class ResignSchedule:
    """Runs ``resign`` now and then every ``interval_s`` seconds until ``stop``."""

    def __init__(self, resign: Callable[[], object], *, interval_s: float, grace_s: float) -> None:
        self._resign = resign
        self._interval_s = interval_s
        self._grace_s = grace_s
        self._task: asyncio.Task[None] | None = None
        self._in_flight: asyncio.Future[None] | None = None

    def start(self) -> None:
        """Start the schedule on the running event loop."""
        self._task = asyncio.create_task(self._run_forever(), name="tidings-resign")

    async def stop(self) -> None:
        """Stop the schedule; wait up to ``grace_s`` for a call in progress."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        in_flight = self._in_flight
        if in_flight is not None and not in_flight.done():
            try:
                await asyncio.wait_for(asyncio.shield(in_flight), self._grace_s)
            except TimeoutError:
                logger.warning("re-signing still running at shutdown; abandoning it")
            except Exception:
                logger.exception("re-signing failed during shutdown")

    async def _run_forever(self) -> None:
        # Run at startup too: a service restarted after downtime may hold an expired timestamp.
        while True:
            self._in_flight = _call_in_daemon_thread(self._resign)
            try:
                await asyncio.shield(self._in_flight)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("re-signing failed; retrying in %g s", self._interval_s)
            await asyncio.sleep(self._interval_s)


def _call_in_daemon_thread(fn: Callable[[], object]) -> asyncio.Future[None]:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def work() -> None:
        error: BaseException | None = None
        try:
            fn()
        except BaseException as e:  # handed to the loop, which logs it
            error = e
        with contextlib.suppress(RuntimeError):  # the loop already closed: nobody is waiting
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=work, name="tidings-resign", daemon=True).start()
    return done
