"""A revoked token enrolls nothing over the real HTTPS enrollment endpoint."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tidings.clock import SystemClock
from tidings.service.state import ServiceState, default_database_url


def csr() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    built = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return built.public_bytes(serialization.Encoding.PEM).decode()


def test_revoked_token_is_refused_by_the_enrollment_endpoint(
    client: httpx.Client, data_dir: Path
) -> None:
    with ServiceState.open(default_database_url(data_dir), clock=SystemClock()) as state:
        issued = state.create_token("lab", lifetime=timedelta(hours=1), uses=None)
        first = client.post("/v1/enroll", json={"token": issued.token, "csr": csr()})
        assert first.status_code == 200, first.text
        state.revoke_token(issued.token_id)
        refused = client.post("/v1/enroll", json={"token": issued.token, "csr": csr()})
        assert refused.status_code == 403
        assert refused.json() == {"error": "token revoked"}
        assert [d.device_id for d in state.devices()] == [first.json()["device_id"]]
