"""Certificate roles under the one CA: the service's certificate and devices' cannot be confused."""

from __future__ import annotations

from datetime import UTC, datetime
from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from service_helpers import device_certificate

from tidings.clock import FixedClock
from tidings.errors import ConfigError
from tidings.service.tls import (
    ca_pin,
    create_ca,
    issue_server_certificate,
    renew_server_certificate,
    server_certificate,
)
from tidings.wire.identity import (
    SERVICE_URI,
    RoleError,
    check_service_certificate,
    device_id_of,
)

CLOCK = FixedClock(datetime(2030, 1, 1, tzinfo=UTC))


@pytest.fixture
def tls_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "tls"
    create_ca(directory, clock=CLOCK)
    issue_server_certificate(directory, hostnames=["updates.example", "10.0.0.1"], clock=CLOCK)
    return directory


def _sans(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def _usages(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_server_certificate_names_the_service_and_passes_the_role_check(tls_dir: Path) -> None:
    cert = server_certificate(tls_dir)
    assert _usages(cert) == {ExtendedKeyUsageOID.SERVER_AUTH}
    assert _sans(cert).get_values_for_type(x509.UniformResourceIdentifier) == [SERVICE_URI]
    check_service_certificate(cert)
    with pytest.raises(RoleError):
        device_id_of(cert)


def test_device_certificate_names_only_its_device_and_fails_the_service_role_check(
    tls_dir: Path,
) -> None:
    cert = device_certificate(tls_dir, "dev-1", CLOCK)
    assert _usages(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    sans = _sans(cert)
    # Whatever the CSR asked for (its CN named the service's host), no host name is certified.
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:tidings:device:dev-1"]
    assert not sans.get_values_for_type(x509.DNSName)
    assert not sans.get_values_for_type(x509.IPAddress)
    assert device_id_of(cert) == "dev-1"
    with pytest.raises(RoleError, match="device certificate"):
        check_service_certificate(cert)


@pytest.mark.parametrize("device_id", ["urn:tidings:service", "a b", "../x", "é"])
def test_device_ids_that_could_forge_a_name_are_refused(tls_dir: Path, device_id: str) -> None:
    with pytest.raises(ConfigError, match="not a device id"):
        device_certificate(tls_dir, device_id, CLOCK)


def test_renewal_keeps_the_pin_the_key_and_the_names(tls_dir: Path) -> None:
    pin, key = ca_pin(tls_dir), (tls_dir / "server.key").read_bytes()
    old = server_certificate(tls_dir)
    new = renew_server_certificate(tls_dir, clock=FixedClock(datetime(2030, 6, 1, tzinfo=UTC)))
    assert server_certificate(tls_dir) == new != old
    assert ca_pin(tls_dir) == pin and (tls_dir / "server.key").read_bytes() == key
    assert new.public_key() == old.public_key()
    assert _sans(new).get_values_for_type(x509.DNSName) == ["updates.example"]
    assert _sans(new).get_values_for_type(x509.IPAddress) == [ip_address("10.0.0.1")]
    assert new.not_valid_before_utc > old.not_valid_before_utc
    check_service_certificate(new)


def test_renewal_with_new_names_and_a_new_key(tls_dir: Path) -> None:
    old_key = (tls_dir / "server.key").read_bytes()
    new = renew_server_certificate(tls_dir, hostnames=["other.example"], clock=CLOCK, new_key=True)
    assert (tls_dir / "server.key").read_bytes() != old_key
    key = serialization.load_pem_private_key((tls_dir / "server.key").read_bytes(), None)
    assert key.public_key() == new.public_key()
    assert _sans(new).get_values_for_type(x509.DNSName) == ["other.example"]


def test_renewal_without_usable_server_files_issues_a_fresh_pair(tls_dir: Path) -> None:
    (tls_dir / "server.pem").unlink()
    (tls_dir / "server.key").write_bytes(b"damaged")
    new = renew_server_certificate(tls_dir, clock=CLOCK)
    assert _sans(new).get_values_for_type(x509.DNSName) == ["localhost"]
    check_service_certificate(new)
