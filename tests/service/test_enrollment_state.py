"""The service's token and device repository: hashing, expiry, use counts, atomic redemption.

Every test taking ``state`` or ``url`` runs on SQLite and on PostgreSQL (see conftest.py).
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from service_helpers import STATE_START, fake_issue, raw_engine, redeem
from sqlalchemy import MetaData

from tidings.clock import FixedClock
from tidings.errors import ConfigError, EnrollmentError
from tidings.service.state import (
    IssuedCertificate,
    ServiceState,
    hash_token,
    parse_lifetime,
    validate_group,
)


def test_only_the_token_hash_is_stored(state: ServiceState, url: str) -> None:
    issued = state.create_token("lab", lifetime=timedelta(hours=1))
    assert issued.token.startswith("tdt_") and len(issued.token) >= 40
    with raw_engine(url) as engine, engine.connect() as conn:
        tables = MetaData()
        tables.reflect(conn)  # every table in the database, not only those Tidings knows
        stored = [
            str(v) for t in tables.sorted_tables for row in conn.execute(t.select()) for v in row
        ]
    assert not any(issued.token in value for value in stored)
    assert hash_token(issued.token) in stored


def test_redeemed_token_records_the_device_in_its_group(state: ServiceState) -> None:
    token = state.create_token("lab.east", lifetime=timedelta(hours=1)).token
    record = state.redeem_token(token, device_id="dev-1", hostname="pc1", issue=fake_issue)
    assert record.group_id == "lab.east"
    stored = state.device("dev-1")
    assert stored == record and state.devices() == [record]
    assert stored is not None and stored.enrolled_at == STATE_START and stored.hostname == "pc1"


def test_expired_token_is_refused(state: ServiceState, state_clock: FixedClock) -> None:
    token = state.create_token("lab", lifetime=timedelta(minutes=30)).token
    state_clock.advance(30 * 60)
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
    issued = state.create_token("lab", lifetime=timedelta(hours=1), uses=3)
    for i in range(3):
        assert redeem(state, issued.token, f"dev-{i}") == "lab"
    with pytest.raises(EnrollmentError, match=r"^token used up$"):
        redeem(state, issued.token, "dev-3")
    (listed,) = state.tokens()
    assert (listed.token_id, listed.uses, listed.uses_left) == (issued.token_id, 3, 0)
    assert listed.created_at == STATE_START
    assert listed.expires_at == STATE_START + timedelta(hours=1)


def test_unlimited_token_never_runs_out_but_still_expires(
    state: ServiceState, state_clock: FixedClock
) -> None:
    token = state.create_token("lab", lifetime=timedelta(hours=1), uses=None).token
    for i in range(20):
        redeem(state, token, f"dev-{i}")
    state_clock.advance(3600)
    with pytest.raises(EnrollmentError, match="expired"):
        redeem(state, token, "dev-late")


def test_failed_issuance_leaves_the_token_unspent(state: ServiceState) -> None:
    token = state.create_token("lab", lifetime=timedelta(hours=1)).token

    def broken(_group: str) -> IssuedCertificate:
        raise ConfigError("CA missing")

    with pytest.raises(ConfigError):
        state.redeem_token(token, device_id="dev-1", hostname=None, issue=broken)
    assert state.device("dev-1") is None and state.devices() == []
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


def test_two_services_on_one_database_share_tokens_and_revocations(
    url: str, state_clock: FixedClock
) -> None:
    with (
        ServiceState.open(url, clock=state_clock) as first,
        ServiceState.open(url, clock=state_clock) as second,
    ):
        token = first.create_token("lab", lifetime=timedelta(hours=1)).token
        assert redeem(second, token) == "lab"
        with pytest.raises(EnrollmentError, match=r"^token used up$"):
            redeem(first, token, "dev-2")
        first.revoke_device("dev-1")
        assert second.is_device_revoked("dev-1")


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
