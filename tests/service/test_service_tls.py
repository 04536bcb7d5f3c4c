"""The service CA: certificates, pins, CSR issuance, and what a TLS client sees."""

from __future__ import annotations

import socket
import ssl
import stat
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tidings.clock import FixedClock, SystemClock
from tidings.errors import ConfigError, UsageError
from tidings.service.server import ServiceEndpoints
from tidings.service.tls import (
    MAX_CSR_BYTES,
    ca_pin,
    create_ca,
    issue_certificate_from_csr,
    issue_server_certificate,
    spki_pin,
)

START = datetime(2030, 1, 1, tzinfo=UTC)


def _load_chain(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def _csr(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def tls_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "tls"
    create_ca(directory, clock=FixedClock(START))
    issue_server_certificate(directory, clock=FixedClock(START))
    return directory


def test_ca_is_a_p256_signing_only_ca_with_private_key_mode_0600(tls_dir: Path) -> None:
    (ca,) = _load_chain(tls_dir / "ca.pem")
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(ca.public_key().curve, ec.SECP256R1)
    assert isinstance(ca.signature_hash_algorithm, hashes.SHA256)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert ca.not_valid_before_utc <= START < ca.not_valid_after_utc
    assert stat.S_IMODE((tls_dir / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tls_dir / "server.key").stat().st_mode) == 0o600


def test_existing_ca_is_not_replaced_by_accident(tls_dir: Path) -> None:
    pin = ca_pin(tls_dir)
    with pytest.raises(ConfigError, match="already exists"):
        create_ca(tls_dir, clock=FixedClock(START))
    assert ca_pin(tls_dir) == pin
    create_ca(tls_dir, clock=FixedClock(START), overwrite=True)
    assert ca_pin(tls_dir) != pin


def test_server_certificate_chains_to_ca_with_sans_and_server_auth(tls_dir: Path) -> None:
    leaf, chained_ca = _load_chain(tls_dir / "server.pem")
    (ca,) = _load_chain(tls_dir / "ca.pem")
    assert chained_ca == ca
    leaf.verify_directly_issued_by(ca)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ip_address("127.0.0.1"), ip_address("::1")]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(days=397)


def test_server_certificate_without_ca_is_a_config_error(tmp_path: Path) -> None:
    # Not "run server init": it refuses an existing data directory, and a new CA breaks pins.
    with pytest.raises(ConfigError, match=r"restore tls/ca\.pem from your backup"):
        issue_server_certificate(tmp_path, clock=SystemClock())


def test_mismatched_ca_key_is_a_config_error(tls_dir: Path) -> None:
    (tls_dir / "ca.key").write_bytes((tls_dir / "server.key").read_bytes())
    with pytest.raises(ConfigError, match="not the private key"):
        issue_server_certificate(tls_dir, clock=SystemClock())


def test_invalid_hostname_is_a_config_error(tls_dir: Path) -> None:
    with pytest.raises(ConfigError, match="not a DNS name"):
        issue_server_certificate(tls_dir, hostnames=["bad host/name"], clock=SystemClock())


def test_spki_pin_is_stable_and_survives_server_certificate_renewal(tls_dir: Path) -> None:
    pin = ca_pin(tls_dir)
    assert pin.startswith("sha256/") and len(pin) == len("sha256/") + 44
    assert spki_pin((tls_dir / "ca.pem").read_bytes()) == pin
    issue_server_certificate(tls_dir, clock=SystemClock())
    assert ca_pin(tls_dir) == pin
    with pytest.raises(ConfigError):
        spki_pin(b"not a certificate")


def test_csr_issuance_certifies_only_the_requesters_key_for_mutual_tls(tls_dir: Path) -> None:
    device_key = ec.generate_private_key(ec.SECP256R1())
    pem = issue_certificate_from_csr(
        tls_dir, _csr(device_key), common_name="device-42", clock=FixedClock(START), valid_days=30
    )
    cert = x509.load_pem_x509_certificate(pem)
    (ca,) = _load_chain(tls_dir / "ca.pem")
    cert.verify_directly_issued_by(ca)
    assert cert.public_key() == device_key.public_key()
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "device-42"
    eku = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert eku == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=30)
    assert spki_pin(pem) != ca_pin(tls_dir)


def test_csr_with_bad_signature_is_rejected(tls_dir: Path) -> None:
    csr = x509.load_pem_x509_csr(_csr(ec.generate_private_key(ec.SECP256R1())))
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last byte belongs to the signature's s value
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(UsageError, match="bad signature"):
        issue_certificate_from_csr(
            tls_dir, tampered, common_name="d", clock=SystemClock(), valid_days=30
        )


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(ec.generate_private_key(ec.SECP384R1()), id="p384"),
        pytest.param(rsa.generate_private_key(public_exponent=65537, key_size=2048), id="rsa"),
    ],
)
def test_csr_with_non_p256_key_is_rejected(
    tls_dir: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
) -> None:
    with pytest.raises(UsageError, match="P-256"):
        issue_certificate_from_csr(
            tls_dir, _csr(key), common_name="d", clock=SystemClock(), valid_days=30
        )


@pytest.mark.parametrize(
    "csr",
    [b"garbage", b"-----BEGIN CERTIFICATE REQUEST-----\n" + b"A" * (MAX_CSR_BYTES + 1)],
    ids=["not-pem", "oversized"],
)
def test_malformed_or_oversized_csr_is_rejected(tls_dir: Path, csr: bytes) -> None:
    with pytest.raises(UsageError, match="certificate request rejected"):
        issue_certificate_from_csr(tls_dir, csr, common_name="d", clock=SystemClock(), valid_days=1)


def test_client_trusting_only_our_ca_connects_and_sees_the_pinned_chain(
    service: ServiceEndpoints, ca_context: ssl.SSLContext, data_dir: Path
) -> None:
    host, port = service.base_url.removeprefix("https://").rsplit(":", 1)
    with (
        socket.create_connection((host, int(port)), timeout=10) as tcp,
        ca_context.wrap_socket(tcp, server_hostname=host) as tls,
    ):
        leaf_der = tls.getpeercert(binary_form=True)
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    assert leaf_der is not None
    leaf = x509.load_der_x509_certificate(leaf_der)
    ca_pem = (data_dir / "tls" / "ca.pem").read_bytes()
    # The key that signed what the client saw is the key the client pinned at enrollment.
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
    assert spki_pin(ca_pem) == ca_pin(data_dir / "tls")
    assert spki_pin(leaf.public_bytes(serialization.Encoding.PEM)) == spki_pin(
        (data_dir / "tls" / "server.pem").read_bytes()
    )


def test_client_with_a_different_ca_fails_verification(
    service: ServiceEndpoints, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    create_ca(other, clock=SystemClock())
    context = ssl.create_default_context(cafile=str(other / "ca.pem"))
    with (
        httpx.Client(verify=context, timeout=10) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get(f"{service.base_url}/health")
