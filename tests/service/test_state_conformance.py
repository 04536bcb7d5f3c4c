"""The service state behaves the same on every supported database: SQLite and PostgreSQL.

The PostgreSQL tests never skip: CI (.ci/run) starts the server (see ``postgres_url`` in
conftest.py).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from tidings.clock import FixedClock
from tidings.errors import ConfigError, EnrollmentError
from tidings.service import state as state_module
from tidings.service.state import (
    IssuedCertificate,
    ServiceState,
    default_database_url,
    hash_token,
)

START = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return default_database_url(tmp_path)
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def state(url: str, clock: FixedClock) -> Iterator[ServiceState]:
    with ServiceState.open(url, clock=clock) as s:
        yield s


def fake_issue(_group: str) -> IssuedCertificate:
    return IssuedCertificate(pem=b"x", serial="0a", sha256="ab" * 32)


def redeem(state: ServiceState, token: str, device_id: str = "dev-1") -> str:
    return state.redeem_token(token, device_id=device_id, hostname="h", issue=fake_issue).group_id


def test_a_token_enrolls_its_uses_then_is_used_up(state: ServiceState) -> None:
    issued = state.create_token("lab", lifetime=timedelta(hours=1), uses=2)
    assert redeem(state, issued.token, "dev-1") == "lab"
    assert redeem(state, issued.token, "dev-2") == "lab"
    with pytest.raises(EnrollmentError, match=r"^token used up$"):
        redeem(state, issued.token, "dev-3")
    (listed,) = state.tokens()
    assert (listed.token_id, listed.uses, listed.uses_left) == (issued.token_id, 2, 0)
    assert listed.created_at == START and listed.expires_at == START + timedelta(hours=1)


def test_an_expired_token_is_refused(state: ServiceState, clock: FixedClock) -> None:
    token = state.create_token("lab", lifetime=timedelta(minutes=30), uses=None).token
    clock.advance(30 * 60)
    with pytest.raises(EnrollmentError, match=r"^token expired$"):
        redeem(state, token)
    assert state.device("dev-1") is None


def test_a_revoked_token_enrolls_nothing_more(state: ServiceState) -> None:
    issued = state.create_token("lab", lifetime=timedelta(hours=1), uses=None)
    redeem(state, issued.token, "dev-1")
    assert state.revoke_token(issued.token_id).revoked
    with pytest.raises(EnrollmentError, match=r"^token revoked$"):
        redeem(state, issued.token, "dev-2")
    assert state.tokens()[0].status(START) == "revoked"
    with pytest.raises(ConfigError, match="no token with id"):
        state.revoke_token("0" * 16)


def test_failed_issuance_spends_nothing_and_records_nothing(state: ServiceState) -> None:
    token = state.create_token("lab", lifetime=timedelta(hours=1)).token

    def broken(_group: str) -> IssuedCertificate:
        raise ConfigError("CA missing")

    with pytest.raises(ConfigError):
        state.redeem_token(token, device_id="dev-1", hostname=None, issue=broken)
    assert state.devices() == []
    assert redeem(state, token, "dev-2") == "lab"


def test_a_device_is_recorded_then_revoked_once(state: ServiceState, clock: FixedClock) -> None:
    token = state.create_token("lab.east", lifetime=timedelta(hours=1)).token
    record = state.redeem_token(token, device_id="dev-1", hostname="pc1", issue=fake_issue)
    assert state.devices() == [record] and state.device("dev-1") == record
    assert record.enrolled_at == START and not state.is_device_revoked("dev-1")
    clock.advance(60)
    revoked = state.revoke_device("dev-1")
    clock.advance(60)
    assert (
        state.revoke_device("dev-1").revoked_at
        == revoked.revoked_at
        == START + timedelta(seconds=60)
    )
    assert state.is_device_revoked("dev-1") and not state.is_device_revoked("unknown")
    with pytest.raises(ConfigError, match="no enrolled device"):
        state.revoke_device("unknown")


def test_concurrent_redemption_of_a_single_use_token_succeeds_once(state: ServiceState) -> None:
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


def test_two_replicas_on_one_database_share_tokens_and_revocations(
    url: str, clock: FixedClock
) -> None:
    with (
        ServiceState.open(url, clock=clock) as first,
        ServiceState.open(url, clock=clock) as second,
    ):
        token = first.create_token("lab", lifetime=timedelta(hours=1)).token
        assert redeem(second, token) == "lab"
        with pytest.raises(EnrollmentError, match="used up"):
            redeem(first, token, "dev-2")
        first.revoke_device("dev-1")
        assert second.is_device_revoked("dev-1")


def test_a_database_made_by_the_first_release_is_upgraded_in_place(
    url: str, clock: FixedClock
) -> None:
    # The first release had tokens and devices, not device_revocations (added since).
    old = create_engine(state_module.database_url(url))
    state_module._metadata.create_all(
        old, tables=[state_module.enrollment_tokens, state_module.devices]
    )
    token = "tdt_" + "A" * 43
    with old.begin() as conn:
        conn.execute(
            state_module.enrollment_tokens.insert().values(
                token_hash=hash_token(token),
                group_id="lab",
                created_at=START - timedelta(days=1),
                expires_at=START + timedelta(days=1),
                uses_left=3,
                uses=1,
                revoked=False,
            )
        )
        conn.execute(
            state_module.devices.insert().values(
                device_id="old-1",
                group_id="lab",
                hostname="pc",
                cert_serial="0a",
                cert_sha256="ab" * 32,
                enrolled_at=START - timedelta(hours=12),
            )
        )
    old.dispose()
    with ServiceState.open(url, clock=clock) as state:
        (listed,) = state.tokens()
        assert listed.token_id == hash_token(token)[:16] and listed.uses_left == 3
        (device,) = state.devices()
        assert device.device_id == "old-1" and device.revoked_at is None
        assert device.enrolled_at == START - timedelta(hours=12)
        redeem(state, token, "new-1")
        assert state.revoke_device("old-1").revoked_at == START
    with ServiceState.open(url, clock=clock) as reopened:
        assert reopened.is_device_revoked("old-1") and not reopened.is_device_revoked("new-1")


def test_a_missing_driver_is_not_called_an_invalid_url(
    monkeypatch: pytest.MonkeyPatch, clock: FixedClock
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg raises ImportError
    with pytest.raises(ConfigError, match=r"^no database driver for .*: psycopg is not installed"):
        ServiceState.open("postgresql://postgres@127.0.0.1/test", clock=clock)


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://host/db"])
def test_an_invalid_url_says_which_forms_are_accepted(url: str, clock: FixedClock) -> None:
    with pytest.raises(ConfigError, match=r"^invalid database URL.*use sqlite:///PATH or"):
        ServiceState.open(url, clock=clock)


def test_a_database_url_never_shows_its_password(clock: FixedClock) -> None:
    with pytest.raises(ConfigError) as raised:
        ServiceState.open("nosuchdb://user:hunter2@host/db", clock=clock)
    assert "hunter2" not in str(raised.value)
