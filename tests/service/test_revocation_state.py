"""Listing and revoking tokens and devices in the service state, and upgrading an old database.

Every test taking ``state`` or ``url`` runs on SQLite and on PostgreSQL (see conftest.py).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from service_helpers import STATE_START, device_certificate, fake_issue, raw_engine
from sqlalchemy import text

from tidings.clock import FixedClock
from tidings.errors import ConfigError, EnrollmentError, UntrustedDeviceError
from tidings.service import state as state_module
from tidings.service.state import IssuedCertificate, ServiceState, hash_token
from tidings.service.tls import create_ca, issue_server_certificate


@pytest.fixture
def tls_dir(tmp_path: Path, state_clock: FixedClock) -> Path:
    directory = tmp_path / "tls"
    create_ca(directory, clock=state_clock)
    issue_server_certificate(directory, clock=state_clock)
    return directory


def enroll_with(state: ServiceState, cert: x509.Certificate, device_id: str) -> None:
    token = state.create_token("lab", lifetime=timedelta(hours=1)).token
    der = cert.public_bytes(serialization.Encoding.DER)
    issued = IssuedCertificate(
        pem=cert.public_bytes(serialization.Encoding.PEM),
        serial=format(cert.serial_number, "x"),
        sha256=hashlib.sha256(der).hexdigest(),
    )
    state.redeem_token(token, device_id=device_id, hostname=None, issue=lambda _g: issued)


def test_tokens_are_listed_by_a_stable_id_never_by_the_secret(state: ServiceState) -> None:
    issued = state.create_token("lab", lifetime=timedelta(hours=1), uses=2)
    state.redeem_token(issued.token, device_id="d1", hostname=None, issue=fake_issue)
    (listed,) = state.tokens()
    assert listed.token_id == issued.token_id == hash_token(issued.token)[:16]
    assert issued.token not in repr(listed)
    assert (listed.group_id, listed.uses, listed.uses_left) == ("lab", 1, 1)
    assert listed.status(STATE_START) == "active"
    assert listed.status(STATE_START + timedelta(hours=1)) == "expired"


def test_revoked_token_enrolls_nothing_more(state: ServiceState) -> None:
    issued = state.create_token("lab", lifetime=timedelta(hours=1), uses=None)
    state.redeem_token(issued.token, device_id="d1", hostname=None, issue=fake_issue)
    revoked = state.revoke_token(issued.token_id)
    assert revoked.revoked and revoked.status(STATE_START) == "revoked"
    with pytest.raises(EnrollmentError, match=r"^token revoked$"):
        state.redeem_token(issued.token, device_id="d2", hostname=None, issue=fake_issue)
    assert state.device("d2") is None
    assert state.device("d1") is not None  # what it enrolled before stays enrolled
    assert state.revoke_token(issued.token_id) == revoked  # twice: nothing changes
    assert [t.status(STATE_START) for t in state.tokens()] == ["revoked"]


@pytest.mark.parametrize(
    ("token_id", "message"),
    [
        ("0123456789abcdef", "no token with id"),
        ("abc", "not a token id"),
        ("tdt_x", "a token itself"),
    ],
)
def test_revoking_an_unknown_or_malformed_token_id_is_a_config_error(
    state: ServiceState, token_id: str, message: str
) -> None:
    state.create_token("lab", lifetime=timedelta(hours=1))
    with pytest.raises(ConfigError, match=message):
        state.revoke_token(token_id)


def test_an_ambiguous_token_id_revokes_nothing(state: ServiceState, url: str) -> None:
    first = state.create_token("lab", lifetime=timedelta(hours=1))
    tokens = state_module.enrollment_tokens
    with raw_engine(url) as engine, engine.begin() as conn:
        # A second token whose hash shares the first 16 digits (2^-64 by chance; forced here).
        row = conn.execute(tokens.select()).mappings().one()
        conn.execute(tokens.insert().values({**row, "token_hash": first.token_id + "0" * 48}))
    with pytest.raises(ConfigError, match="more than one token"):
        state.revoke_token(first.token_id)
    assert not any(t.revoked for t in state.tokens())
    state.revoke_token(hash_token(first.token))  # the full hash is unambiguous
    assert [t.revoked for t in state.tokens()].count(True) == 1


def test_revoked_device_is_recorded_with_its_time_and_refused(
    state: ServiceState, tls_dir: Path, state_clock: FixedClock
) -> None:
    cert = device_certificate(tls_dir, "dev-1", state_clock)
    enroll_with(state, cert, "dev-1")
    assert state.check_device_certificate(cert).device_id == "dev-1"
    assert not state.is_device_revoked("dev-1")
    state_clock.advance(60)
    revoked = state.revoke_device("dev-1")
    assert revoked.revoked_at == STATE_START + timedelta(seconds=60)
    assert state.is_device_revoked("dev-1")
    with pytest.raises(UntrustedDeviceError, match="dev-1 was revoked at 2030-01-01T00:01:00Z"):
        state.check_device_certificate(cert)
    state_clock.advance(60)
    assert state.revoke_device("dev-1").revoked_at == revoked.revoked_at  # the first time stands
    assert [d.revoked_at for d in state.devices()] == [revoked.revoked_at]


def test_revoking_an_unknown_device_is_a_config_error(state: ServiceState) -> None:
    with pytest.raises(ConfigError, match="no enrolled device"):
        state.revoke_device("nobody")
    assert not state.is_device_revoked("nobody")


def test_device_certificates_not_as_enrolled_are_refused(
    state: ServiceState, tls_dir: Path, state_clock: FixedClock
) -> None:
    enrolled = device_certificate(tls_dir, "dev-1", state_clock)
    enroll_with(state, enrolled, "dev-1")
    # Same CA, same device id, another certificate: not the one recorded at enrollment.
    with pytest.raises(UntrustedDeviceError, match="not the certificate issued"):
        state.check_device_certificate(device_certificate(tls_dir, "dev-1", state_clock))
    with pytest.raises(UntrustedDeviceError, match="not enrolled"):
        state.check_device_certificate(device_certificate(tls_dir, "dev-2", state_clock))
    server = x509.load_pem_x509_certificates((tls_dir / "server.pem").read_bytes())[0]
    with pytest.raises(UntrustedDeviceError, match="refused certificate"):
        state.check_device_certificate(server)


OLD_SCHEMA = [  # exactly what the previous release created ({timestamp}: see OLD_TIMESTAMP)
    """CREATE TABLE enrollment_tokens (
        token_hash VARCHAR(64) NOT NULL, group_id VARCHAR(64) NOT NULL,
        created_at {timestamp} NOT NULL, expires_at {timestamp} NOT NULL, uses_left INTEGER,
        uses INTEGER NOT NULL, revoked BOOLEAN NOT NULL, PRIMARY KEY (token_hash))""",
    """CREATE TABLE devices (
        device_id VARCHAR(64) NOT NULL, group_id VARCHAR(64) NOT NULL, hostname VARCHAR(253),
        cert_serial VARCHAR(40) NOT NULL, cert_sha256 VARCHAR(64) NOT NULL,
        enrolled_at {timestamp} NOT NULL, PRIMARY KEY (device_id))""",
    "CREATE INDEX ix_devices_group_id ON devices (group_id)",
]
OLD_TIMESTAMP = {"sqlite": "DATETIME", "postgresql": "TIMESTAMP WITH TIME ZONE"}


def test_a_database_made_by_the_previous_release_is_upgraded_in_place(
    url: str, state_clock: FixedClock
) -> None:
    # The previous release had tokens and devices, not device_revocations (added since).
    token = "tdt_" + "A" * 43
    with raw_engine(url) as engine, engine.begin() as conn:
        for statement in OLD_SCHEMA:
            conn.execute(text(statement.format(timestamp=OLD_TIMESTAMP[engine.dialect.name])))
        conn.execute(
            state_module.enrollment_tokens.insert().values(
                token_hash=hash_token(token),
                group_id="lab",
                created_at=STATE_START - timedelta(days=1),
                expires_at=STATE_START + timedelta(days=1),
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
                enrolled_at=STATE_START - timedelta(hours=12),
            )
        )
    with ServiceState.open(url, clock=state_clock) as state:
        (listed,) = state.tokens()
        assert listed.token_id == hash_token(token)[:16] and listed.uses_left == 3
        (old,) = state.devices()
        assert old.device_id == "old-1" and old.revoked_at is None
        assert old.enrolled_at == STATE_START - timedelta(hours=12)
        state.redeem_token(token, device_id="new-1", hostname=None, issue=fake_issue)
        assert state.revoke_device("old-1").revoked_at == STATE_START
        state.revoke_token(listed.token_id)
    with ServiceState.open(url, clock=state_clock) as reopened:
        assert reopened.is_device_revoked("old-1") and not reopened.is_device_revoked("new-1")
        assert [t.revoked for t in reopened.tokens()] == [True]
