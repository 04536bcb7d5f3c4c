"""The pure limits against hostile clients (``tidings.service.limits``), with plain timestamps."""

from __future__ import annotations

import pytest

from tidings.errors import ConfigError
from tidings.service.config import ServiceConfig
from tidings.service.limits import (
    ConnectionCounter,
    FailureLimiter,
    LogThrottle,
    ReadDeadline,
    ReadPhase,
    SendRate,
    address_key,
)


def test_ipv6_addresses_of_one_slash_64_count_as_one_client() -> None:
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:192.0.2.7") == address_key("192.0.2.7") == "192.0.2.7"
    assert address_key("127.0.0.1") != address_key("127.0.0.2")
    assert address_key("not-an-ip") == "not-an-ip"


def test_connections_beyond_the_per_address_cap_are_refused_and_others_unaffected() -> None:
    counter = ConnectionCounter(max_per_address=2)
    assert counter.try_open("a") and counter.try_open("a")
    assert not counter.try_open("a")
    assert counter.try_open("b")
    counter.close("a")
    assert counter.try_open("a")
    assert counter.open_count("a") == 2


def test_closed_connections_leave_no_trace_in_the_counter() -> None:
    counter = ConnectionCounter(max_per_address=3)
    for key in ("a", "b"):
        counter.try_open(key)
        counter.close(key)
    assert counter.open_count("a") == counter.open_count("b") == 0
    assert not counter._open  # nothing kept for addresses without connections


def test_dripping_bytes_never_extends_the_header_deadline() -> None:
    deadline = ReadDeadline(idle_s=5, head_s=10, body_s=20)
    assert deadline.observe(ReadPhase.IDLE, 100.0) == 105.0
    assert deadline.observe(ReadPhase.HEAD, 101.0) == 110.0  # counted from the cycle's start
    assert deadline.observe(ReadPhase.HEAD, 109.0) == 110.0  # more bytes: same deadline


def test_body_deadline_counts_from_the_end_of_the_headers() -> None:
    deadline = ReadDeadline(idle_s=5, head_s=10, body_s=20)
    deadline.observe(ReadPhase.IDLE, 0.0)
    assert deadline.observe(ReadPhase.BODY, 3.0) == 23.0
    assert deadline.observe(ReadPhase.BODY, 22.0) == 23.0
    assert deadline.observe(None, 23.0) is None  # request complete: being answered
    assert deadline.observe(ReadPhase.IDLE, 40.0) == 45.0  # next request cycle starts afresh


def test_a_failing_address_must_wait_until_its_oldest_failure_leaves_the_window() -> None:
    limiter = FailureLimiter(max_failures=3, window_s=60, max_addresses=100)
    for t in (0.0, 10.0, 20.0):
        assert limiter.retry_after("a", t) is None
        limiter.record_failure("a", t)
    assert limiter.retry_after("a", 30.0) == 30.0
    assert limiter.retry_after("b", 30.0) is None  # another address is unaffected
    assert limiter.retry_after("a", 60.0) is None  # the failure at 0 has left the window
    limiter.record_failure("a", 60.0)
    assert limiter.retry_after("a", 61.0) == 9.0  # 10, 20 and 60 are in the window


def test_failures_spread_wider_than_the_window_are_never_limited() -> None:
    limiter = FailureLimiter(max_failures=2, window_s=10, max_addresses=100)
    for t in range(0, 100, 6):
        assert limiter.retry_after("a", float(t)) is None
        limiter.record_failure("a", float(t))


def test_many_failing_addresses_cannot_grow_the_limiter_without_bound() -> None:
    limiter = FailureLimiter(max_failures=5, window_s=60, max_addresses=100)
    for i in range(10_000):
        limiter.record_failure(f"10.0.{i // 256}.{i % 256}", 1.0)
    assert len(limiter) == 100
    for _ in range(50):
        limiter.record_failure("a", 2.0)
    assert limiter._failures["a"].maxlen == 5  # per address too


def test_a_client_that_stops_reading_is_too_slow_within_one_window() -> None:
    rate = SendRate(window_s=10, min_bytes_per_s=1000)
    rate.start(5_000, 100.0)
    assert rate.too_slow(5_000, 110.0)


def test_a_slow_but_steady_reader_is_judged_on_each_window() -> None:
    rate = SendRate(window_s=10, min_bytes_per_s=1000)
    rate.start(0, 0.0)
    assert not rate.too_slow(12_000, 10.0)
    assert not rate.too_slow(22_000, 20.0)  # 10,000 bytes in this window: exactly enough
    assert rate.too_slow(25_000, 30.0)  # an early burst does not pay for a later stall


def test_only_what_the_client_took_within_the_window_counts_not_its_baseline() -> None:
    rate = SendRate(window_s=2, min_bytes_per_s=1024)
    rate.start(7_000_000, 0.0)  # a kernel count that began long before (TLS handshake, ...)
    assert not rate.too_slow(7_000_000 + 2 * 64 * 1024, 2.0)  # 64 KiB/s: far above 1 KiB/s
    assert rate.too_slow(7_000_000 + 2 * 64 * 1024 + 2047, 4.0)  # one byte short of 2 KiB


def test_failures_of_other_addresses_never_evict_a_blocked_address() -> None:
    limiter = FailureLimiter(max_failures=3, window_s=60, max_addresses=5)
    for t in (0.0, 1.0, 2.0):
        limiter.record_failure("blocked", t)
    for i in range(20):  # many more addresses than tracked, one failure each
        limiter.record_failure(f"other-{i}", 3.0 + i)
    assert len(limiter) == 5
    assert limiter.retry_after("blocked", 30.0) == 30.0


def test_when_every_tracked_address_is_blocked_the_oldest_block_is_forgotten() -> None:
    limiter = FailureLimiter(max_failures=2, window_s=60, max_addresses=2)
    for key, t in (("a", 0.0), ("b", 1.0)):
        limiter.record_failure(key, t)
        limiter.record_failure(key, t)
    limiter.record_failure("c", 2.0)
    assert limiter.retry_after("a", 3.0) is None  # a new address is tracked, bounded memory
    assert limiter.retry_after("b", 3.0) == 58.0
    assert len(limiter) == 2


def test_attempts_in_progress_count_toward_the_failure_limit() -> None:
    limiter = FailureLimiter(max_failures=3, window_s=60, max_addresses=100)
    assert [limiter.begin("a", 0.0) for _ in range(3)] == [None, None, None]
    assert limiter.begin("a", 0.0) == 1.0  # parallel attempts fill the limit
    assert limiter.begin("b", 0.0) is None  # another address is unaffected
    limiter.end("a", 1.0, failed=False)
    assert limiter.begin("a", 1.0) is None  # a success frees its reservation
    for _ in range(3):
        limiter.end("a", 2.0, failed=True)
    assert limiter.begin("a", 3.0) == 59.0  # three failures: wait for the window
    assert limiter._attempts == {"b": 1}  # only what is still in progress


def test_refusals_are_logged_once_per_window_with_the_count_left_out() -> None:
    throttle = LogThrottle(window_s=60, max_addresses=100)
    assert throttle.admit("a", 0.0) == 0
    assert [throttle.admit("a", t) for t in (1.0, 2.0, 59.0)] == [None, None, None]
    assert throttle.admit("b", 1.0) == 0  # another address has its own line
    assert throttle.admit("a", 60.0) == 3
    assert throttle.admit("a", 61.0) is None


def test_log_throttle_memory_is_bounded() -> None:
    throttle = LogThrottle(window_s=60, max_addresses=10)
    for i in range(1_000):
        throttle.admit(str(i), 0.0)
    assert len(throttle) == 10


@pytest.mark.parametrize(
    "fields",
    [
        {"header_timeout_s": 0},
        {"body_timeout_s": -1},
        {"max_connections_per_address": 0},
        {"enroll_max_failures": 0},
        {"enroll_failure_window_s": 0},
        {"max_tracked_addresses": 0},
        {"send_window_s": 0},
        {"min_send_bytes_per_s": 0},
        {"max_connections_per_address": 300, "limit_concurrency": 256},
    ],
)
def test_unsafe_limit_settings_are_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        ServiceConfig(**fields)  # type: ignore[arg-type]
