"""Limits against hostile clients, as pure decisions over plain values (no I/O, no clock).

Every class here takes timestamps (seconds on a monotonic clock) from its caller, so the
service uses the event loop's or the injected ``Clock``'s time and tests use plain numbers.

- ``address_key``        which addresses count as one client (IPv6: one /64).
- ``ConnectionCounter``  open connections per client address, capped.
- ``HandshakeTable``     TLS handshakes in progress: capped per address, and in all by making
                         room from the oldest.
- ``ReadDeadline``       when a connection must have sent its request line and headers, or its
                         body; slow sending never extends a deadline.
- ``SendRate``           whether a client reads its response at a minimum rate, once its
                         connection's send buffer is full.
- ``FailureLimiter``     failed enrollments (plus attempts in progress) per address in a
                         sliding window; beyond the limit, how long to wait.
- ``LogThrottle``        at most one log line per address per window, with a count of what
                         was left out.

Invariants: memory is bounded whatever clients do: the counter holds only addresses with open
connections (at most the server's concurrency limit), the limiter and the throttle at most
``max_addresses`` addresses (the least recently seen is forgotten first; the limiter keeps
blocked addresses over unblocked ones) and, per address, at most ``max_failures`` timestamps.
"""

from __future__ import annotations

import enum
import ipaddress
from collections import OrderedDict, deque
from collections.abc import Hashable
from typing import Generic, TypeVar

_H = TypeVar("_H", bound=Hashable)

IPV6_PREFIX_BITS = 64  # one subscriber usually gets a whole /64: count it as one client
BUSY_RETRY_S = 1.0  # seconds to wait when attempts in progress, not failures, fill the limit


def address_key(host: str) -> str:
    """The key under which per-address limits count ``host`` (an IP address as text).

    IPv4 addresses (also IPv4-mapped IPv6) are their own key; IPv6 addresses count per /64,
    since one client can pick any address in its /64. Anything else (not an IP) is itself.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        network = ipaddress.IPv6Network(f"{address}/{IPV6_PREFIX_BITS}", strict=False)
        return str(network)
    return str(address)


class ConnectionCounter:
    """Open connections per address, at most ``max_per_address`` each."""

    def __init__(self, *, max_per_address: int) -> None:
        self._max = max_per_address
        self._open: dict[str, int] = {}

    def try_open(self, key: str) -> bool:
        """Count one more connection from ``key``; False (and nothing counted) at the cap."""
        count = self._open.get(key, 0)
        if count >= self._max:
            return False
        self._open[key] = count + 1
        return True

    def close(self, key: str) -> None:
        """Forget one connection from ``key`` (one that ``try_open`` accepted)."""
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)

    def open_count(self, key: str) -> int:
        """Connections from ``key`` now counted."""
        return self._open.get(key, 0)


class HandshakeTable(Generic[_H]):
    """TLS handshakes in progress on one port: ``max_per_address`` per address, ``limit`` in all.

    An address at its cap is refused a new handshake. When the whole table is full a newcomer
    is still admitted and the *oldest* handshake in progress is evicted to make room: honest
    handshakes finish in milliseconds, so the oldest are the stalled ones, and clients with a
    handful of addresses can no longer deny the table to everyone else. The table never holds
    more than ``limit`` handshakes (the caller aborts those evicted), so descriptors stay
    bounded.
    """

    def __init__(self, *, limit: int, max_per_address: int) -> None:
        self.limit = limit
        self._max_per_address = max_per_address
        self._keys: dict[_H, str] = {}  # handshake -> its address key, oldest first
        self._per_address: dict[str, int] = {}

    def start(self, key: str, handshake: _H) -> list[_H] | None:
        """Admit ``handshake`` from ``key``.

        Returns:
            None when ``key`` is at its cap (nothing counted, the caller refuses it); else the
            handshakes evicted to make room, oldest first, already forgotten by the table (the
            caller aborts them).
        """
        if handshake in self._keys:
            return []
        if self.address_count(key) >= self._max_per_address:
            return None
        evicted: list[_H] = []
        while len(self._keys) >= self.limit:
            oldest = next(iter(self._keys))
            self.finish(oldest)
            evicted.append(oldest)
        self._keys[handshake] = key
        self._per_address[key] = self._per_address.get(key, 0) + 1
        return evicted

    def finish(self, handshake: _H) -> None:
        """Forget ``handshake`` (done, failed or evicted); forgetting it twice is harmless."""
        key = self._keys.pop(handshake, None)
        if key is None:
            return
        count = self._per_address[key] - 1
        if count > 0:
            self._per_address[key] = count
        else:
            del self._per_address[key]

    def address_count(self, key: str) -> int:
        """Handshakes in progress from ``key``."""
        return self._per_address.get(key, 0)

    def __len__(self) -> int:
        return len(self._keys)


class ReadPhase(enum.Enum):
    """What a connection is waiting for from its client."""

    IDLE = "idle"  # a request, and not one byte of it has arrived yet
    HEAD = "head"  # the rest of a request line and headers
    BODY = "body"  # the rest of a request body


class ReadDeadline:
    """The deadline in force on one connection, from the phases its caller observes.

    A request cycle starts when the connection opens or the previous response ends; from then
    on the client has ``idle_s`` to start a request and ``head_s`` to finish its headers. A
    body must be complete ``body_s`` after its headers. Deadlines are absolute: bytes that
    trickle in never push them back (slowloris).
    """

    def __init__(self, *, idle_s: float, head_s: float, body_s: float) -> None:
        self._limits = {ReadPhase.IDLE: idle_s, ReadPhase.HEAD: head_s, ReadPhase.BODY: body_s}
        self._phase: ReadPhase | None = None
        self._since = 0.0

    def observe(self, phase: ReadPhase | None, now: float) -> float | None:
        """Record that the connection is in ``phase`` at ``now``; return the deadline.

        Args:
            phase: What the connection waits for; None when it waits for nothing from the
                client (the request is complete and being answered).
            now: Seconds on the caller's monotonic clock.

        Returns:
            The time (same clock) by which the phase must be over, or None.
        """
        previous, self._phase = self._phase, phase
        if phase is None:
            return None
        request_cycle = (ReadPhase.IDLE, ReadPhase.HEAD)
        entering_cycle = phase in request_cycle and previous not in request_cycle
        if entering_cycle or (phase is ReadPhase.BODY and previous is not ReadPhase.BODY):
            self._since = now
        return self._since + self._limits[phase]

    @property
    def phase(self) -> ReadPhase | None:
        """The phase last observed."""
        return self._phase


class SendRate:
    """Whether a client reads its response fast enough, judged over windows of ``window_s``.

    The caller starts a window when the connection's send buffer fills (the client is not
    keeping up) and checks at its end: a client that took fewer than ``min_bytes_per_s`` times
    the window's length is too slow. Each check starts the next window, so a slow but steady
    download is judged on its recent rate, and a client that stopped reading is found within
    a window once its own receive buffer is full.

    "Taken" is any count that grows only as the client reads (the service passes the bytes
    the client's kernel acknowledged, see ``protocol.CountingTransport``); only its growth over
    a window matters, so the caller must keep to one count per connection.
    """

    def __init__(self, *, window_s: float, min_bytes_per_s: int) -> None:
        self.window_s = window_s
        self._min_rate = min_bytes_per_s
        self._since = 0.0
        self._taken = 0

    def start(self, taken: int, now: float) -> None:
        """Start a window at ``now``; ``taken`` is the bytes the client has taken so far."""
        self._since, self._taken = now, taken

    def too_slow(self, taken: int, now: float) -> bool:
        """True when the client took too few bytes since the window began; starts the next."""
        progress, elapsed = taken - self._taken, now - self._since
        self.start(taken, now)
        return progress < self._min_rate * elapsed


class FailureLimiter:
    """Failures per address in a sliding window of ``window_s`` seconds.

    After ``max_failures`` failures within the window an address must wait until the oldest
    of them leaves the window; failures are not recorded while it waits (the caller refuses
    without trying), so the wait never grows.

    Attempts still in progress count too: ``begin`` reserves one (refused when failures plus
    attempts in progress reach the limit) and ``end`` releases it, so requests sent in
    parallel cannot all pass the check before the first of them fails.

    When more than ``max_addresses`` addresses are tracked, the least recently failed address
    that is *not* blocked is forgotten: forgetting a blocked one would lift its block. Only
    when every tracked address is blocked is the oldest of them forgotten, so an attacker
    with more addresses than that still pays ``max_failures`` failures per address unblocked.
    """

    def __init__(self, *, max_failures: int, window_s: float, max_addresses: int) -> None:
        self._max = max_failures
        self._window = window_s
        self._max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._attempts: dict[str, int] = {}  # attempts in progress (bounded by connections)

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds ``key`` must wait before trying again, or None when it may try now."""
        failures = self._recent(key, now)
        if len(failures) + self._attempts.get(key, 0) < self._max:
            return None
        if len(failures) < self._max:  # attempts in progress fill the limit: ask again soon
            return min(BUSY_RETRY_S, self._window)
        return failures[0] + self._window - now

    def begin(self, key: str, now: float) -> float | None:
        """Reserve an attempt for ``key``: None when reserved, else ``retry_after``'s wait."""
        wait = self.retry_after(key, now)
        if wait is None:
            self._attempts[key] = self._attempts.get(key, 0) + 1
        return wait

    def end(self, key: str, now: float, *, failed: bool) -> None:
        """Release an attempt that ``begin`` reserved, counting it as a failure if ``failed``."""
        left = self._attempts.get(key, 0) - 1
        if left > 0:
            self._attempts[key] = left
        else:
            self._attempts.pop(key, None)
        if failed:
            self.record_failure(key, now)

    def record_failure(self, key: str, now: float) -> None:
        """Count one failure of ``key`` at ``now``."""
        times = self._failures.pop(key, None)
        if times is None:
            times = deque(maxlen=self._max)
        times.append(now)
        self._failures[key] = times  # most recently failed last: evicted last
        while len(self._failures) > self._max_addresses:
            self._evict(keep=key, now=now)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self._window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def _evict(self, *, keep: str, now: float) -> None:
        for key, times in self._failures.items():  # least recently failed first
            if key == keep:  # the failure just recorded: dropping it would never block anyone
                continue
            if len(times) < self._max or times[0] <= now - self._window:
                del self._failures[key]  # not blocked: forgetting it lifts no block
                return
        self._failures.popitem(last=False)  # all blocked: the oldest block goes

    def __len__(self) -> int:
        return len(self._failures)


class LogThrottle:
    """Admits at most one log line per address per ``window_s`` seconds.

    ``admit`` answers None for a line to leave out, or, for a line to write, how many lines of
    that address were left out since its previous one (to be reported in the line written).
    """

    def __init__(self, *, window_s: float, max_addresses: int) -> None:
        self._window = window_s
        self._max_addresses = max_addresses
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()  # last line, left out

    def admit(self, key: str, now: float) -> int | None:
        """Whether to write a line about ``key`` now; see the class docstring."""
        last = self._seen.pop(key, None)
        if last is not None and now - last[0] < self._window:
            self._seen[key] = (last[0], last[1] + 1)
            return None
        self._seen[key] = (now, 0)
        while len(self._seen) > self._max_addresses:
            self._seen.popitem(last=False)
        return 0 if last is None else last[1]

    def __len__(self) -> int:
        return len(self._seen)
