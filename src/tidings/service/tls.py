"""The service's certificate authority: CA, server certificate, device certificates, SPKI pins.

Owns ``DATA_DIR/tls/`` (``ca.pem``, ``ca.key``, ``server.pem``, ``server.key``). Invariants:

- Every key is ECDSA P-256 and every signature SHA-256 (docs/architecture.md, "Trust model": one
  small, modern suite).
- Private keys are written atomically with mode 0600 (``fsutil.atomic_write``); a key is written
  before its certificate, so a certificate on disk always has its key beside it.
- ``server.pem`` holds the leaf followed by the CA certificate: the server presents the whole chain,
  so a client that pins the CA's SPKI (enrollment, docs/architecture.md, "Trust model") can match
  the pin against what it is shown, while a client that only trusts ``ca.pem`` needs nothing more.
- Device certificates take only the public key from a CSR: subject and extensions are decided
  here, never copied from the request (the request is untrusted input).
- Roles (``wire/identity.py``): the server certificate alone carries the URI name
  ``urn:tidings:service`` (EKU serverAuth); a device certificate carries
  ``urn:tidings:device:<id>`` and CN = the id (EKU clientAuth and serverAuth, for mutual TLS
  between peers), never a host name, so it cannot pass for the service.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tidings.clock import Clock
from tidings.errors import ConfigError, UsageError
from tidings.fsutil import atomic_write
from tidings.wire.identity import SERVICE_URI, RoleError, device_uri

DEFAULT_HOSTNAMES = ("localhost", "127.0.0.1", "::1")
CA_CERT = "ca.pem"
CA_KEY = "ca.key"
SERVER_CERT = "server.pem"
SERVER_KEY = "server.key"

MAX_CSR_BYTES = 16_384  # bytes; a P-256 CSR in PEM is about 500
_RESTORE = {  # what to do when a CA file is lost or damaged: it cannot be re-created
    CA_KEY: "restore tls/ca.key from your backup "
    "(the CA key signs device and server certificates; devices pin the CA)",
    CA_CERT: "restore tls/ca.pem from your backup (devices pin the CA)",
}
MAX_VALID_DAYS = 3650  # days; nothing we issue lives longer than the CA default
BACKDATE = timedelta(minutes=5)  # tolerate small clock skew on devices and clients
_MAX_CN_CHARS = 64  # RFC 5280 upper bound for commonName
_MAX_KEY_BYTES = 65_536  # bytes; a P-256 key in PEM is about 250

_KEY_MODE = 0o600
_CERT_MODE = 0o644


def create_ca(
    tls_dir: Path,
    *,
    common_name: str = "Tidings Update Service CA",
    clock: Clock,
    valid_days: int = 3650,
    overwrite: bool = False,
) -> None:
    """Create the service CA: ``ca.key`` (mode 0600) and a self-signed ``ca.pem``.

    Replacing a CA invalidates every enrolled device's pin, so an existing CA is kept
    unless ``overwrite`` is true.

    Args:
        tls_dir: Directory for the files, created if missing.
        common_name: Subject CN of the CA certificate.
        clock: Source of the validity start.
        valid_days: Validity period in days.
        overwrite: Replace an existing CA.

    Raises:
        ConfigError: A CA already exists, or an argument is out of range.
    """
    _check_days(valid_days)
    _check_common_name(common_name)
    if not overwrite and ((tls_dir / CA_CERT).exists() or (tls_dir / CA_KEY).exists()):
        raise ConfigError(f"a CA already exists in {tls_dir}; refusing to replace it")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    not_before = clock.now() - BACKDATE
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_pair(tls_dir, CA_KEY, key, CA_CERT, _pem(cert))


def issue_server_certificate(
    tls_dir: Path,
    *,
    hostnames: Sequence[str] = DEFAULT_HOSTNAMES,
    clock: Clock,
    valid_days: int = 397,
) -> None:
    """Issue the server certificate from the CA with a new key: ``server.key``, ``server.pem``.

    An existing server certificate is replaced (renewal keeps the CA, hence the pins).

    Args:
        tls_dir: Directory holding ``ca.pem`` and ``ca.key``.
        hostnames: DNS names and IP addresses for the subjectAltName; the first is the CN.
        clock: Source of the validity start.
        valid_days: Validity period in days (397 is the browser maximum).

    Raises:
        ConfigError: The CA is missing or unreadable, or a hostname or argument is invalid.
    """
    ca_cert, ca_key = load_ca(tls_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _server_leaf(ca_cert, ca_key, key.public_key(), hostnames, clock, valid_days)
    _write_pair(tls_dir, SERVER_KEY, key, SERVER_CERT, _pem(leaf) + _pem(ca_cert))


def renew_server_certificate(
    tls_dir: Path,
    *,
    hostnames: Sequence[str] | None = None,
    clock: Clock,
    valid_days: int = 397,
    new_key: bool = False,
) -> x509.Certificate:
    """Re-issue ``server.pem`` from the existing CA; the CA, hence every device's pin, stays.

    By default the server keeps its key and only ``server.pem`` is replaced, in one atomic
    rename: an interrupted renewal leaves the old certificate or the new one, both matching
    ``server.key``. With ``new_key`` (or when ``server.key`` is unusable) a new key is written
    first, then the certificate; if interrupted in between, run the renewal again.

    Args:
        tls_dir: Directory holding ``ca.pem``, ``ca.key`` and the server's files.
        hostnames: Names for the certificate; None keeps those of the current one (or the
            defaults when there is none).
        clock: Source of the validity start.
        valid_days: Validity period in days.
        new_key: Generate a new server key as well.

    Returns:
        The new server certificate.

    Raises:
        ConfigError: The CA is missing or unreadable, or a hostname or argument is invalid.
    """
    ca_cert, ca_key = load_ca(tls_dir)
    names = tuple(hostnames) if hostnames else current_hostnames(tls_dir) or DEFAULT_HOSTNAMES
    key = None if new_key else _existing_server_key(tls_dir)
    if key is not None:
        leaf = _server_leaf(ca_cert, ca_key, key.public_key(), names, clock, valid_days)
        try:
            atomic_write(tls_dir / SERVER_CERT, _pem(leaf) + _pem(ca_cert), mode=_CERT_MODE)
        except OSError as e:
            raise ConfigError(f"cannot write TLS files in {tls_dir}: {e.strerror}") from e
        return leaf
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _server_leaf(ca_cert, ca_key, key.public_key(), names, clock, valid_days)
    _write_pair(tls_dir, SERVER_KEY, key, SERVER_CERT, _pem(leaf) + _pem(ca_cert))
    return leaf


def server_certificate(tls_dir: Path) -> x509.Certificate:
    """The server certificate in ``tls_dir/server.pem`` (the leaf).

    Raises:
        ConfigError: Missing, unreadable or not a certificate.
    """
    try:
        return x509.load_pem_x509_certificate(_read(tls_dir / SERVER_CERT, "server certificate"))
    except ValueError as e:
        raise ConfigError(f"{tls_dir / SERVER_CERT} is not a PEM certificate") from e


def issue_certificate_from_csr(
    tls_dir: Path,
    csr_pem: bytes,
    *,
    common_name: str,
    clock: Clock,
    valid_days: int,
) -> bytes:
    """Sign a device's CSR with the service CA and return the device certificate in PEM.

    Only the CSR's public key is used; subject and extensions come from here: CN and the URI
    name ``urn:tidings:device:<common_name>``, EKU clientAuth and serverAuth (mutual TLS
    between peers, docs/architecture.md, "Trust model"), never a host name nor the service's
    name.

    Args:
        tls_dir: Directory holding ``ca.pem`` and ``ca.key``.
        csr_pem: The request, PEM, at most ``MAX_CSR_BYTES``.
        common_name: The device id (``wire.identity.DEVICE_ID``).
        clock: Source of the validity start.
        valid_days: Validity period in days.

    Returns:
        The certificate, PEM.

    Raises:
        UsageError: The CSR is too large, malformed, badly signed or not a P-256 key.
        ConfigError: The CA is missing or unreadable, or an argument is out of range.
    """
    _check_days(valid_days)
    _check_common_name(common_name)
    try:
        uri = device_uri(common_name)
    except RoleError as e:
        raise ConfigError(str(e)) from e
    public_key = _verified_csr_key(csr_pem)
    ca_cert, ca_key = load_ca(tls_dir)
    builder = _leaf_builder(
        ca_cert,
        public_key,
        common_name=common_name,
        clock=clock,
        valid_days=valid_days,
        usages=[ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
    ).add_extension(
        x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False
    )
    return _pem(builder.sign(ca_key, hashes.SHA256()))


def spki_pin(cert_pem: bytes) -> str:
    """Return the HPKP-style pin of a certificate: ``"sha256/" + base64(SHA-256(SPKI DER))``.

    For a PEM chain, the first certificate is pinned.

    Raises:
        ConfigError: ``cert_pem`` is not a PEM certificate.
    """
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as e:
        raise ConfigError(f"not a PEM certificate: {e}") from e
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256/" + base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def tls_pair_problem(certfile: Path, keyfile: Path) -> str | None:
    """What is wrong with a certificate chain and key an HTTPS server would present, or None.

    OpenSSL says only "PEM lib" for any of these; this names the file at fault.
    """
    try:
        certs = x509.load_pem_x509_certificates(certfile.read_bytes())
    except OSError as e:
        return f"cannot read {certfile} ({e.strerror})"
    except ValueError:
        return f"{certfile} is not a PEM certificate chain"
    try:
        key = serialization.load_pem_private_key(keyfile.read_bytes(), password=None)
    except OSError as e:
        return f"cannot read {keyfile} ({e.strerror})"
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return f"{keyfile} is not an unencrypted PEM private key"
    if key.public_key() != certs[0].public_key():
        return f"{keyfile} is not the key of {certfile}"
    return None


def ca_pin(tls_dir: Path) -> str:
    """Return the SPKI pin of ``tls_dir/ca.pem`` (what devices pin at enrollment).

    Raises:
        ConfigError: ``ca.pem`` is missing, unreadable or not a certificate.
    """
    path = tls_dir / CA_CERT
    pem = _read(path, "CA certificate")
    try:
        return spki_pin(pem)
    except ConfigError as e:
        raise ConfigError(f"{path} is not a PEM certificate: {_RESTORE[CA_CERT]}") from e


def load_ca(tls_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Load the CA certificate and its private key, checking that they belong together.

    Raises:
        ConfigError: A file is missing or unreadable, or the key is not the CA's P-256 key.
    """
    cert_pem = _read(tls_dir / CA_CERT, "CA certificate")
    key_pem = _read(tls_dir / CA_KEY, "CA key")
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as e:
        raise ConfigError(
            f"{tls_dir / CA_CERT} is not a PEM certificate: {_RESTORE[CA_CERT]}"
        ) from e
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise ConfigError(
            f"{tls_dir / CA_KEY} is not an unencrypted PEM private key: {_RESTORE[CA_KEY]}"
        ) from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise ConfigError(f"{tls_dir / CA_KEY} is not the private key of {tls_dir / CA_CERT}")
    return cert, key


def _server_leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    public_key: ec.EllipticCurvePublicKey,
    hostnames: Sequence[str],
    clock: Clock,
    valid_days: int,
) -> x509.Certificate:
    _check_days(valid_days)
    if not hostnames:
        raise ConfigError("at least one hostname is needed for the server certificate")
    sans = [_general_name(h) for h in hostnames]
    sans.append(x509.UniformResourceIdentifier(SERVICE_URI))  # the role: wire/identity.py
    builder = _leaf_builder(
        ca_cert,
        public_key,
        common_name=hostnames[0][:_MAX_CN_CHARS],
        clock=clock,
        valid_days=valid_days,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH],
    ).add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def current_hostnames(tls_dir: Path) -> tuple[str, ...]:
    """The DNS names and IP addresses of the current server certificate; () if it is unusable."""
    if not (tls_dir / SERVER_CERT).is_file():
        return ()
    try:
        return hostnames_of(server_certificate(tls_dir))
    except ConfigError:
        return ()


def hostnames_of(cert: x509.Certificate) -> tuple[str, ...]:
    """The DNS names and IP addresses a certificate is valid for, in its order."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    return tuple(
        str(name.value) for name in ext.value if isinstance(name, x509.DNSName | x509.IPAddress)
    )


def _existing_server_key(tls_dir: Path) -> ec.EllipticCurvePrivateKey | None:
    """The current server key if it is a usable P-256 key, else None (a new one is made)."""
    try:
        key = serialization.load_pem_private_key(
            (tls_dir / SERVER_KEY).read_bytes()[:_MAX_KEY_BYTES], password=None
        )
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    return None


def _verified_csr_key(csr_pem: bytes) -> ec.EllipticCurvePublicKey:
    if len(csr_pem) > MAX_CSR_BYTES:
        raise UsageError(f"certificate request rejected: larger than {MAX_CSR_BYTES} bytes")
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
        public_key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as e:
        raise UsageError(f"certificate request rejected: not a PEM CSR ({e})") from e
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise UsageError("certificate request rejected: the key must be ECDSA P-256")
    # Proof of possession: the requester holds the private key of what we certify.
    if not csr.is_signature_valid:
        raise UsageError("certificate request rejected: bad signature")
    return public_key


def _leaf_builder(
    ca_cert: x509.Certificate,
    public_key: ec.EllipticCurvePublicKey,
    *,
    common_name: str,
    clock: Clock,
    valid_days: int,
    usages: list[x509.ObjectIdentifier],
) -> x509.CertificateBuilder:
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    not_before: datetime = clock.now() - BACKDATE
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(hostname: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(hostname))
    except ValueError:
        pass
    labels = hostname.rstrip(".").split(".")
    if not hostname.isascii() or not all(
        0 < len(label) <= 63 and label.replace("-", "").replace("*", "").isalnum()
        for label in labels
    ):
        raise ConfigError(f"not a DNS name or IP address: {hostname!r}")
    return x509.DNSName(hostname)


def _check_days(valid_days: int) -> None:
    if not 0 < valid_days <= MAX_VALID_DAYS:
        raise ConfigError(f"valid_days must be between 1 and {MAX_VALID_DAYS}, not {valid_days}")


def _check_common_name(common_name: str) -> None:
    if not 0 < len(common_name) <= _MAX_CN_CHARS:
        raise ConfigError(f"common name must be 1 to {_MAX_CN_CHARS} characters")


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        # Never "run server init": it refuses a data directory, and a new CA breaks every pin.
        hint = _RESTORE.get(path.name) or f"run `tidings server cert renew {path.parent.parent}`"
        raise ConfigError(f"cannot read the {what} {path} ({e.strerror}): {hint}") from e


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_pair(
    tls_dir: Path, key_name: str, key: ec.EllipticCurvePrivateKey, cert_name: str, cert_pem: bytes
) -> None:
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(tls_dir / key_name, key_pem, mode=_KEY_MODE)
        atomic_write(tls_dir / cert_name, cert_pem, mode=_CERT_MODE)
    except OSError as e:
        raise ConfigError(f"cannot write TLS files in {tls_dir}: {e.strerror}") from e
