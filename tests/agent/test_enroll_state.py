"""``AgentState.load``: a state directory that does not hold together is refused in one line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tidings.agent.enroll import write_state_dir
from tidings.agent.state import (
    CA_FILE,
    CERT_FILE,
    IDENTITY_FILE,
    KEY_FILE,
    MAX_IDENTITY_BYTES,
    ROOT_FILE,
    AgentState,
    DeviceIdentity,
)
from tidings.clock import FixedClock
from tidings.errors import ConfigError, EnrollmentError
from tidings.service.tls import issue_certificate_from_csr

IDENTITY = DeviceIdentity(
    device_id="dev-1",
    group_id="lab",
    server="https://127.0.0.1:8443",
    pin="sha256/" + "A" * 43 + "=",
    enrolled_at=datetime(2030, 1, 1, tzinfo=UTC),
)


def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def certificate(
    data_dir: Path, key: ec.EllipticCurvePrivateKey, clock: FixedClock, cn: str
) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return issue_certificate_from_csr(
        data_dir / "tls",
        csr.public_bytes(serialization.Encoding.PEM),
        common_name=cn,
        clock=clock,
        valid_days=30,
    )


@pytest.fixture
def state_dir(data_dir: Path, clock: FixedClock, tmp_path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "device"
    write_state_dir(
        path,
        {
            ROOT_FILE: ((data_dir / "repo/metadata/root.json").read_bytes(), 0o644),
            CA_FILE: ((data_dir / "tls/ca.pem").read_bytes(), 0o644),
            KEY_FILE: (pem_key(key), 0o600),
            CERT_FILE: (certificate(data_dir, key, clock, "dev-1"), 0o644),
            IDENTITY_FILE: (IDENTITY.to_json(), 0o644),
        },
    )
    return path


def test_a_complete_state_dir_loads_with_its_identity_and_paths(state_dir: Path) -> None:
    state = AgentState.load(state_dir)
    assert state.identity == IDENTITY
    assert state.key_path == state_dir / "device/key.pem"
    assert state.cert_path.is_file() and state.ca_path.is_file() and state.root_path.is_file()


def test_missing_state_dir_says_how_to_enroll(tmp_path: Path) -> None:
    with pytest.raises(EnrollmentError, match="is not enrolled: run `tidings agent enroll"):
        AgentState.load(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "content",
    [b"not json", b"[]", b'{"device_id": "x"}', IDENTITY.to_json().replace(b"2030-01-01", b"soon")],
)
def test_damaged_identity_is_a_config_error(state_dir: Path, content: bytes) -> None:
    (state_dir / IDENTITY_FILE).write_bytes(content)
    with pytest.raises(ConfigError, match=r"device\.json"):
        AgentState.load(state_dir)


def test_oversized_identity_is_refused(state_dir: Path) -> None:
    (state_dir / IDENTITY_FILE).write_bytes(b" " * (MAX_IDENTITY_BYTES + 1))
    with pytest.raises(ConfigError, match="larger than"):
        AgentState.load(state_dir)


def test_key_not_matching_the_certificate_is_refused(state_dir: Path) -> None:
    (state_dir / KEY_FILE).write_bytes(pem_key(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(ConfigError, match="is not the key of"):
        AgentState.load(state_dir)


def test_certificate_of_another_device_is_refused(
    state_dir: Path, data_dir: Path, clock: FixedClock
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    (state_dir / KEY_FILE).write_bytes(pem_key(key))
    (state_dir / CERT_FILE).write_bytes(certificate(data_dir, key, clock, "dev-2"))
    with pytest.raises(ConfigError, match="not the certificate of dev-1"):
        AgentState.load(state_dir)


@pytest.mark.parametrize("missing", [ROOT_FILE, CA_FILE, KEY_FILE, CERT_FILE])
def test_missing_file_is_named(state_dir: Path, missing: Path) -> None:
    (state_dir / missing).unlink()
    with pytest.raises(ConfigError, match=str(missing)):
        AgentState.load(state_dir)
