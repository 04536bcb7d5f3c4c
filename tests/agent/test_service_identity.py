"""An enrolled device posing as the update service is refused, at enrollment and at sync.

Every impostor certificate here is issued by the service's own CA (so the chain verifies) and
names 127.0.0.1, the address the agent dials (so the host name check passes): only the role
check (``wire/identity.py``) stands between it and the agent. Real TLS on loopback, the real
service app behind the impostor's certificate.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from identity_helpers import IMPOSTORS, impostor_files
from tidings.agent.enroll import enroll
from tidings.catalog.publisher import PublishResult
from tidings.clock import FixedClock
from tidings.errors import UntrustedServerError
from tidings.scan.session import UpdateSession
from tidings.service.config import ServiceConfig
from tidings.service.server import running_server
from tidings.service.state import IssuedCertificate, ServiceState
from tidings.service.tls import ca_pin, issue_certificate_from_csr, issue_server_certificate
from tidings.trust.service_tls import service_tls_context


def _fake_issue(_group: str) -> IssuedCertificate:
    return IssuedCertificate(pem=b"x", serial="1", sha256="0" * 64)


@pytest.mark.parametrize("impostor", list(IMPOSTORS))
def test_enrollment_refuses_a_device_certificate_posing_as_the_service_and_keeps_the_token(
    data_dir: Path,
    token: str,
    pin: str,
    clock: FixedClock,
    service_state: ServiceState,
    tmp_path: Path,
    impostor: str,
) -> None:
    cert, key = impostor_files(data_dir / "tls", tmp_path / "attacker", impostor, clock=clock)
    state_dir = tmp_path / "device"
    config = ServiceConfig(port=0, shutdown_grace_s=2, certfile=cert, keyfile=key)
    with (
        running_server(data_dir, config) as impostor_service,
        pytest.raises(UntrustedServerError, match="or is not the update service's") as caught,
    ):
        enroll(state_dir, server=impostor_service.base_url, pin=pin, token=token, clock=clock)
    assert caught.value.url.endswith("/v1/enroll")
    assert not state_dir.exists()
    # Refused during the handshake: the token never reached the impostor, it is still good.
    redeemed = service_state.redeem_token(token, device_id="d", hostname=None, issue=_fake_issue)
    assert redeemed.group_id == "lab"


def test_a_device_certificate_as_issued_is_refused_as_the_service(
    data_dir: Path, token: str, pin: str, clock: FixedClock, tmp_path: Path
) -> None:
    """The plain device profile (no host name at all) fails on the name as well."""
    device_key = ec.generate_private_key(ec.SECP256R1())
    pem = issue_certificate_from_csr(
        data_dir / "tls", _csr(device_key), common_name="dev-1", clock=clock, valid_days=30
    )
    cert, key = tmp_path / "device.pem", tmp_path / "device.key"
    cert.write_bytes(pem + (data_dir / "tls/ca.pem").read_bytes())
    key.write_bytes(
        device_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    config = ServiceConfig(port=0, shutdown_grace_s=2, certfile=cert, keyfile=key)
    with running_server(data_dir, config) as impostor, pytest.raises(UntrustedServerError):
        enroll(tmp_path / "d", server=impostor.base_url, pin=pin, token=token, clock=clock)


@pytest.mark.parametrize("impostor", list(IMPOSTORS))
def test_catalog_sync_refuses_a_device_certificate_posing_as_the_service(
    data_dir: Path,
    published: list[PublishResult],
    clock: FixedClock,
    tmp_path: Path,
    impostor: str,
) -> None:
    with ServiceState.open(f"sqlite:///{data_dir / 'service.db'}", clock=clock) as state:
        token = state.create_token("lab", lifetime=timedelta(hours=1)).token
    port = _free_port()
    genuine = ServiceConfig(port=port, shutdown_grace_s=2)
    state_dir = tmp_path / "device"
    with running_server(data_dir, genuine) as service:
        enroll(state_dir, server=service.base_url, pin=ca_pin(data_dir / "tls"), token=token,
               clock=clock)  # fmt: skip
        with UpdateSession(state_dir) as session:
            session.create_searcher().search()  # the genuine service: a good sync
    trusted = _json_files(state_dir)

    cert, key = impostor_files(data_dir / "tls", tmp_path / "attacker", impostor, clock=clock)
    taken_over = ServiceConfig(port=port, shutdown_grace_s=2, certfile=cert, keyfile=key)
    with (
        running_server(data_dir, taken_over),  # the device's address now answers as the impostor
        UpdateSession(state_dir) as session,
        pytest.raises(UntrustedServerError, match="not signed by the pinned CA") as caught,
    ):
        session.create_searcher().search()
    assert caught.value.url.startswith(f"https://127.0.0.1:{port}/")
    assert _json_files(state_dir) == trusted


def test_renewed_server_certificate_is_still_accepted_by_an_enrolled_agent(
    data_dir: Path,
    published: list[PublishResult],
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    """The role check does not get in the way of the genuine service, before or after renewal."""
    with ServiceState.open(f"sqlite:///{data_dir / 'service.db'}", clock=clock) as state:
        token = state.create_token("lab", lifetime=timedelta(hours=1)).token
    port = _free_port()
    config = ServiceConfig(port=port, shutdown_grace_s=2)
    state_dir = tmp_path / "device"
    with running_server(data_dir, config) as service:
        enroll(state_dir, server=service.base_url, pin=ca_pin(data_dir / "tls"), token=token,
               clock=clock)  # fmt: skip
    issue_server_certificate(data_dir / "tls", hostnames=["127.0.0.1"], clock=clock)
    with running_server(data_dir, config), UpdateSession(state_dir) as session:
        session.create_searcher().search()


def _csr(key: ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    built = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return built.public_bytes(serialization.Encoding.PEM)


def _json_files(state_dir: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(state_dir)): p.read_bytes() for p in sorted(state_dir.rglob("*.json"))
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("impostor", [None, *IMPOSTORS])
def test_asyncio_clients_get_the_same_role_check(
    data_dir: Path, clock: FixedClock, tmp_path: Path, impostor: str | None
) -> None:
    """Non-blocking TLS (asyncio, for peers and the local API later) checks the role too."""
    config = ServiceConfig(port=0, shutdown_grace_s=2)
    if impostor is not None:
        cert, key = impostor_files(data_dir / "tls", tmp_path / "attacker", impostor, clock=clock)
        config = ServiceConfig(port=0, shutdown_grace_s=2, certfile=cert, keyfile=key)
    context = service_tls_context((data_dir / "tls/ca.pem").read_bytes())

    async def handshake(host: str, port: int) -> None:
        _, writer = await asyncio.open_connection(host, port, ssl=context)
        writer.close()
        await writer.wait_closed()

    with running_server(data_dir, config) as endpoints:
        host, port = endpoints.base_url.removeprefix("https://").rsplit(":", 1)
        if impostor is None:
            asyncio.run(handshake(host, int(port)))
        else:
            with pytest.raises(ssl.SSLCertVerificationError):
                asyncio.run(handshake(host, int(port)))
