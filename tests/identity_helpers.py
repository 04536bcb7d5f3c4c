"""Certificates an attacker holding a device identity could present, made with the real CA key.

An enrolled device owns a certificate from the service CA; these are the shapes it could get,
or that a CA bug could hand out, to pose as the update service at the address a device dials.
"""

from __future__ import annotations

from datetime import timedelta
from ipaddress import ip_address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tidings.clock import Clock
from tidings.service.tls import load_ca

DEVICE_ID = "0b6f4a53-5d0c-4f0e-9a51-5d4c1f5a8c11"
CLIENT, SERVER = ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH
LOOPBACK = x509.IPAddress(ip_address("127.0.0.1"))

# name -> (extended key usages, subjectAltNames): every one names the address the device dials.
IMPOSTORS: dict[str, tuple[list[x509.ObjectIdentifier], list[x509.GeneralName]]] = {
    # Today's device profile, plus the address: the role name gives it away.
    "device certificate naming 127.0.0.1": (
        [CLIENT, SERVER],
        [LOOPBACK, x509.UniformResourceIdentifier(f"urn:tidings:device:{DEVICE_ID}")],
    ),
    # What the previous version issued to devices (no role name), plus the address.
    "legacy device certificate naming 127.0.0.1": ([CLIENT, SERVER], [LOOPBACK]),
    # Even the service's own name does not help a certificate not meant for TLS servers.
    "clientAuth-only certificate naming the service": (
        [CLIENT],
        [LOOPBACK, x509.UniformResourceIdentifier("urn:tidings:service")],
    ),
}


def impostor_files(tls_dir: Path, out_dir: Path, name: str, *, clock: Clock) -> tuple[Path, Path]:
    """Write a chain (leaf + CA) and key for ``IMPOSTORS[name]``, signed by ``tls_dir``'s CA."""
    usages, sans = IMPOSTORS[name]
    ca_cert, ca_key = load_ca(tls_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    now = clock.now() - timedelta(minutes=5)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DEVICE_ID)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = out_dir / "impostor.pem", out_dir / "impostor.key"
    pem = serialization.Encoding.PEM
    cert_file.write_bytes(leaf.public_bytes(pem) + ca_cert.public_bytes(pem))
    key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file
