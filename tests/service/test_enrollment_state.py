"""The service's token and device repository: hashing, expiry, use counts, atomic redemption."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tidings.clock import FixedClock
from tidings.errors import ConfigError, EnrollmentError
from tidings.service.state import (
    IssuedCertificate,
    ServiceState,
    default_database_url,
    hash_token,
    parse_lifetime,
    validate_group,
)

START = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def state(tmp_path: Path, clock: FixedClock) -> Iterator[ServiceState]:
    s = ServiceState.open(default_database_url(tmp_path), clock=clock)
    yield s
    s.close()


def fake_issue(group_id: str) -> IssuedCertificate:
    return IssuedCertificate(pem=b"PEM " + group_id.encode(), serial="0a", sha256="ab" * 32)


def redeem(state: ServiceState, token: str, device_id: str = "dev-1") -> str:
    return state.redeem_token(token, device_id=device_id, hostname="h", issue=fake_issue).group_id


def test_only_the_token_hash_is_stored(state: ServiceState, tmp_path: Path) -> None:
    issued = state.create_token("lab", lifetime=timedelta(hours=1))
    assert issued.token.startswith("tdt_") and len(issued.token) >= 40
    with contextlib.closing(sqlite3.connect(tmp_path / "service.db")) as db:
        raw = b"".join(line.encode() for line in db.iterdump())
    assert issued.token.encode() not in raw
    assert hash_token(issued.token).encode() in raw


def test_redeemed_token_records_the_device_in_its_group(state: ServiceState) -> None:
    token = state.create_token("lab.east", lifetime=timedelta(hours=1)).token
    record = state.redeem_token(token, device_id="dev-1", hostname="pc1", issue=fake_issue)
    assert record.group_id == "lab.east"
    stored = state.device("dev-1")
    assert stored == record
    assert stored is not None and stored.enrolled_at == START and stored.hostname == "pc1"


def test_expired_token_is_refused(state: ServiceState, clock: FixedClock) -> None:
    token = state.create_token("lab", lifetime=timedelta(minutes=30)).token
    clock.advance(30 * 60)
    with pytest.raises(EnrollmentError, match=r"^token expired$"):
        redeem(state, token)
    assert state.device("dev-1") is None


@pytest.mark.parametrize("token", ["tdt_nope", "not-even-prefixed", "tdt_" + "x" * 500, ""])
def test_unknown_token_is_refused(state: ServiceState, token: str) -> None:
    state.create_token("lab", lifetime=timedelta(hours=1))
    with pytest.raises(EnrollmentError, match=r"^unknown token$"):
        redeem(state, token)


def test_single_use_token_reused_is_refused(state: ServiceState) -> None:
    token = state.create_token("lab", lifetime=timedelta(hours=1)).token
    redeem(state, token, "dev-1")
    with pytest.raises(EnrollmentError, match=r"^token used up$"):
        redeem(state, token, "dev-2")


def test_multi_use_token_allows_exactly_its_uses(state: ServiceState) -> None:
    token = state.create_token("lab", lifetime=timedelta(hours=1), uses=3).token
    for i in range(3):
        redeem(state, token, f"dev-{i}")
    with pytest.raises(EnrollmentError, match="used up"):
        redeem(state, token, "dev-3")


def test_unlimited_token_never_runs_out_but_still_expires(
    state: ServiceState, clock: FixedClock
) -> None:
    token = state.create_token("lab", lifetime=timedelta(hours=1), uses=None).token
    for i in range(20):
        redeem(state, token, f"dev-{i}")
    clock.advance(3600)
    with pytest.raises(EnrollmentError, match="expired"):
        redeem(state, token, "dev-late")


def test_failed_issuance_leaves_the_token_unspent(state: ServiceState) -> None:
    token = state.create_token("lab", lifetime=timedelta(hours=1)).token

    def broken(_group: str) -> IssuedCertificate:
        raise ConfigError("CA missing")

    with pytest.raises(ConfigError):
        state.redeem_token(token, device_id="dev-1", hostname=None, issue=broken)
    assert state.device("dev-1") is None
    assert redeem(state, token, "dev-2") == "lab"


def test_concurrent_redemption_of_a_single_use_token_succeeds_once(
    state: ServiceState,
) -> None:
    token = state.create_token("lab", lifetime=timedelta(hours=1)).token
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            redeem(state, token, f"dev-{i}")
            result = "ok"
        except EnrollmentError as e:
            result = str(e)
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["ok"] + ["token used up"] * 7


def test_two_services_on_one_database_share_tokens(tmp_path: Path, clock: FixedClock) -> None:
    first = ServiceState.open(default_database_url(tmp_path), clock=clock)
    second = ServiceState.open(default_database_url(tmp_path), clock=clock)
    try:
        token = first.create_token("lab", lifetime=timedelta(hours=1)).token
        assert redeem(second, token) == "lab"
        with pytest.raises(EnrollmentError, match="used up"):
            redeem(first, token, "dev-2")
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("group", ["lab", "a", "0-ring_1.x", "a" * 64])
def test_valid_group_names(group: str) -> None:
    assert validate_group(group) == group


@pytest.mark.parametrize("group", ["", "Lab", "-lab", ".lab", "a" * 65, "lab/x", "lab x", "é"])
def test_invalid_group_names_are_one_line_errors(group: str, state: ServiceState) -> None:
    with pytest.raises(ConfigError, match="invalid group"):
        state.create_token(group, lifetime=timedelta(hours=1))


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800), ("24h", 86_400), ("7d", 604_800), ("90s", 90)]
)
def test_lifetimes_parse(text: str, seconds: int) -> None:
    assert parse_lifetime(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "24", "h", "0h", "-1h", "1.5h", "1w", "366d", "24 hours"])
def test_bad_lifetimes_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_lifetime(text)


def test_zero_uses_is_refused(state: ServiceState) -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        state.create_token("lab", lifetime=timedelta(hours=1), uses=0)


def test_unopenable_database_is_a_config_error(tmp_path: Path, clock: FixedClock) -> None:
    with pytest.raises(ConfigError, match="cannot open the service database"):
        ServiceState.open(f"sqlite:///{tmp_path}/missing/dir/service.db", clock=clock)
