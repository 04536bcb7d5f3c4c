"""Shared values, a raw HTTP/1.1 client and service-state helpers for the service tests.

Imported by conftest.
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine, create_engine

from tidings.clock import Clock
from tidings.service.server import ServiceEndpoints
from tidings.service.state import IssuedCertificate, ServiceState, database_url
from tidings.service.tls import issue_certificate_from_csr

PAYLOAD = bytes(range(256)) * 4  # 1024 bytes, every offset distinguishable
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
PAYLOAD_PATH = f"os/0a/{PAYLOAD_SHA256}.update.cab"
SECRET = b"-----SECRET OUTSIDE THE REPOSITORY-----"
STATE_START = datetime(2030, 1, 1, tzinfo=UTC)  # the service-state tests' ``state_clock``


def timestamp_json(version: int = 7, expires: str = "2099-01-01T00:00:00Z") -> bytes:
    """A timestamp.json shaped like TUF's (signatures are not checked by the service)."""
    signed = {"_type": "timestamp", "spec_version": "1.0.31", "version": version}
    signed["expires"] = expires
    signed["meta"] = {"snapshot.json": {"version": 3}}  # the snapshot data_dir holds
    return json.dumps({"signed": signed, "signatures": []}).encode()


@dataclass(frozen=True)
class RawResponse:
    status: int
    head: bytes
    body: bytes


def raw_request(
    endpoints: ServiceEndpoints,
    context: ssl.SSLContext,
    target: str,
    *,
    method: str = "GET",
    extra: bytes = b"",
) -> RawResponse:
    """Send ``target`` byte for byte (httpx would normalize ``..`` away) over TLS."""
    host, port = endpoints.base_url.removeprefix("https://").rsplit(":", 1)
    request = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n".encode()
    with (
        socket.create_connection((host, int(port)), timeout=10) as tcp,
        context.wrap_socket(tcp, server_hostname=host) as tls,
    ):
        tls.sendall(request + extra + b"\r\n")
        chunks = []
        while chunk := tls.recv(65_536):
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    return RawResponse(status=int(head.split(b" ", 2)[1]), head=head, body=body)


def fake_issue(group_id: str) -> IssuedCertificate:
    """An issuing callback for ``redeem_token`` that signs nothing."""
    return IssuedCertificate(pem=b"PEM " + group_id.encode(), serial="0a", sha256="ab" * 32)


def redeem(state: ServiceState, token: str, device_id: str = "dev-1") -> str:
    """Redeem ``token`` for ``device_id``; the group it enrolled the device in."""
    return state.redeem_token(token, device_id=device_id, hostname="h", issue=fake_issue).group_id


@contextmanager
def raw_engine(url: str) -> Iterator[Engine]:
    """An engine on the service database at ``url``, bypassing ``ServiceState``."""
    engine = create_engine(database_url(url))
    try:
        yield engine
    finally:
        engine.dispose()


def csr_for(key: ec.EllipticCurvePrivateKey | None = None, cn: str = "device") -> str:
    """A PEM certificate request (the service takes only its public key, whatever the CN)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def device_certificate(tls_dir: Path, device_id: str, clock: Clock) -> x509.Certificate:
    """A device certificate as enrollment issues it, from the CA in ``tls_dir``."""
    pem = issue_certificate_from_csr(
        tls_dir, csr_for().encode(), common_name=device_id, clock=clock, valid_days=30
    )
    return x509.load_pem_x509_certificate(pem)
