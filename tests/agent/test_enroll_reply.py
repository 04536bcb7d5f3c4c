"""``verify_enrollment_reply``, pure: what a device refuses even over a pinned channel."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tidings.agent.enroll import VerifiedReply, verify_enrollment_reply
from tidings.clock import FixedClock
from tidings.errors import EnrollmentError, IntegrityError
from tidings.service.tls import create_ca, issue_certificate_from_csr

DEVICE_ID = "0b6f4a53-5d0c-4f0e-9a51-5d4c1f5a8c11"


def csr(key: ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    built = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return built.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def ca_pem(data_dir: Path) -> bytes:
    return (data_dir / "tls/ca.pem").read_bytes()


def issue(tls_dir: Path, key: ec.EllipticCurvePrivateKey, clock: FixedClock, cn: str) -> str:
    pem = issue_certificate_from_csr(tls_dir, csr(key), common_name=cn, clock=clock, valid_days=365)
    return pem.decode()


@pytest.fixture
def reply(
    data_dir: Path, key: ec.EllipticCurvePrivateKey, clock: FixedClock, ca_pem: bytes
) -> dict[str, Any]:
    return {
        "device_id": DEVICE_ID,
        "group_id": "lab",
        "certificate": issue(data_dir / "tls", key, clock, DEVICE_ID),
        "ca": ca_pem.decode(),
        "root": json.loads((data_dir / "repo/metadata/root.json").read_bytes()),
    }


def verify(
    reply: dict[str, Any], ca_pem: bytes, key: ec.EllipticCurvePrivateKey, clock: FixedClock
) -> VerifiedReply:
    body = json.dumps(reply).encode()
    return verify_enrollment_reply(body, ca_pem=ca_pem, device_key=key, clock=clock)


def test_a_genuine_reply_verifies_and_keeps_the_root_bytes(
    reply: dict[str, Any],
    ca_pem: bytes,
    key: ec.EllipticCurvePrivateKey,
    clock: FixedClock,
    data_dir: Path,
) -> None:
    verified = verify(reply, ca_pem, key, clock)
    assert verified.device_id == DEVICE_ID
    assert verified.root_json == (data_dir / "repo/metadata/root.json").read_bytes()


def test_certificate_for_another_key_is_an_integrity_error(
    reply: dict[str, Any], ca_pem: bytes, clock: FixedClock, data_dir: Path
) -> None:
    mine = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(IntegrityError, match="not for this device's key"):
        verify(reply, ca_pem, mine, clock)


def test_certificate_from_another_ca_is_an_integrity_error(
    reply: dict[str, Any],
    ca_pem: bytes,
    key: ec.EllipticCurvePrivateKey,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    create_ca(tmp_path / "other", clock=clock)
    reply["certificate"] = issue(tmp_path / "other", key, clock, DEVICE_ID)
    with pytest.raises(IntegrityError, match="not issued by the pinned CA"):
        verify(reply, ca_pem, key, clock)


def test_certificate_naming_another_device_is_an_integrity_error(
    reply: dict[str, Any],
    ca_pem: bytes,
    key: ec.EllipticCurvePrivateKey,
    clock: FixedClock,
    data_dir: Path,
) -> None:
    reply["certificate"] = issue(data_dir / "tls", key, clock, "someone-else")
    with pytest.raises(IntegrityError, match="does not name the device id"):
        verify(reply, ca_pem, key, clock)


def test_reply_naming_another_ca_is_an_integrity_error(
    reply: dict[str, Any],
    ca_pem: bytes,
    key: ec.EllipticCurvePrivateKey,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    create_ca(tmp_path / "other", clock=clock)
    reply["ca"] = (tmp_path / "other/ca.pem").read_text()
    with pytest.raises(IntegrityError, match="CA other than the pinned one"):
        verify(reply, ca_pem, key, clock)


def test_tampered_root_is_an_integrity_error(
    reply: dict[str, Any], ca_pem: bytes, key: ec.EllipticCurvePrivateKey, clock: FixedClock
) -> None:
    reply["root"]["signed"]["expires"] = "2099-01-01T00:00:00Z"
    with pytest.raises(IntegrityError, match="not signed by its keys"):
        verify(reply, ca_pem, key, clock)


def test_metadata_other_than_root_is_refused(
    reply: dict[str, Any],
    ca_pem: bytes,
    key: ec.EllipticCurvePrivateKey,
    clock: FixedClock,
    data_dir: Path,
) -> None:
    reply["root"] = json.loads((data_dir / "repo/metadata/timestamp.json").read_bytes())
    with pytest.raises(EnrollmentError, match="not TUF root metadata"):
        verify(reply, ca_pem, key, clock)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("device_id", "../../etc", "device_id"),
        ("device_id", 7, "device_id"),
        ("group_id", "Lab", "group_id"),
        ("certificate", None, "lacks certificate"),
        ("root", "not an object", "lacks certificate, ca or root"),
        ("certificate", "garbage", "not a PEM certificate"),
    ],
)
def test_malformed_replies_are_enrollment_errors(
    reply: dict[str, Any],
    ca_pem: bytes,
    key: ec.EllipticCurvePrivateKey,
    clock: FixedClock,
    field: str,
    value: object,
    message: str,
) -> None:
    reply[field] = value
    with pytest.raises(EnrollmentError, match=message):
        verify(reply, ca_pem, key, clock)


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b"\xff\xfe"])
def test_non_json_reply_is_an_enrollment_error(
    body: bytes, ca_pem: bytes, key: ec.EllipticCurvePrivateKey, clock: FixedClock
) -> None:
    with pytest.raises(EnrollmentError, match="reply is not"):
        verify_enrollment_reply(body, ca_pem=ca_pem, device_key=key, clock=clock)


def test_certificate_outside_its_validity_points_at_the_clock(
    reply: dict[str, Any], ca_pem: bytes, key: ec.EllipticCurvePrivateKey, clock: FixedClock
) -> None:
    late = FixedClock(clock.now() + timedelta(days=400))
    with pytest.raises(EnrollmentError, match="check this clock"):
        verify(reply, ca_pem, key, late)
