"""``/v1/ca.pem`` and ``POST /v1/enroll`` over real TLS: tokens, CSRs, bounds, methods."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from service_helpers import csr_for

from tidings.catalog.create import create_data_dir
from tidings.clock import FixedClock
from tidings.service.enrollment import MAX_ENROLL_BODY_BYTES
from tidings.service.server import ServiceEndpoints
from tidings.service.state import ServiceState, default_database_url
from tidings.service.tls import ca_pin, create_ca, issue_server_certificate, spki_pin


@pytest.fixture
def data_dir(tmp_path: Path, clock: FixedClock) -> Path:
    """A real data directory (signed root), overriding the service tests' fake one."""

    def add_tls(tmp: Path) -> None:
        create_ca(tmp / "tls", clock=clock)
        issue_server_certificate(tmp / "tls", clock=clock)

    path = tmp_path / "data"
    create_data_dir(path, clock=clock, extra=add_tls)
    return path


@pytest.fixture
def state(data_dir: Path, clock: FixedClock) -> Iterator[ServiceState]:
    s = ServiceState.open(default_database_url(data_dir), clock=clock)
    yield s
    s.close()


def new_token(state: ServiceState, **kwargs: object) -> str:
    return state.create_token("lab", lifetime=timedelta(hours=1), **kwargs).token  # type: ignore[arg-type]


def test_ca_certificate_is_public_and_matches_the_pin(client: httpx.Client, data_dir: Path) -> None:
    response = client.get("/v1/ca.pem")
    assert response.status_code == 200
    assert response.content == (data_dir / "tls/ca.pem").read_bytes()
    assert spki_pin(response.content) == ca_pin(data_dir / "tls")


def test_enrollment_issues_a_certificate_for_the_csr_key_named_by_the_service(
    client: httpx.Client, data_dir: Path, state: ServiceState
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    body = {"token": new_token(state), "csr": csr_for(key, cn="admin"), "hostname": "pc-1"}
    response = client.post("/v1/enroll", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    reply = response.json()
    cert = x509.load_pem_x509_certificate(reply["certificate"].encode())
    ca = x509.load_pem_x509_certificate((data_dir / "tls/ca.pem").read_bytes())
    cert.verify_directly_issued_by(ca)
    assert cert.public_key() == key.public_key()
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == reply["device_id"] != "admin"  # the request's subject is ignored
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages
    assert reply["group_id"] == "lab"
    assert reply["ca"].encode() == (data_dir / "tls/ca.pem").read_bytes()
    assert reply["root"] == json.loads((data_dir / "repo/metadata/root.json").read_bytes())
    device = state.device(reply["device_id"])
    assert device is not None and device.group_id == "lab" and device.hostname == "pc-1"
    assert device.cert_serial == format(cert.serial_number, "x")


def test_unknown_token_is_403_with_its_reason(client: httpx.Client) -> None:
    response = client.post("/v1/enroll", json={"token": "tdt_guess", "csr": csr_for()})
    assert response.status_code == 403
    assert response.json() == {"error": "unknown token"}


def test_reused_single_use_token_is_403(client: httpx.Client, state: ServiceState) -> None:
    token = new_token(state)
    assert client.post("/v1/enroll", json={"token": token, "csr": csr_for()}).status_code == 200
    again = client.post("/v1/enroll", json={"token": token, "csr": csr_for()})
    assert again.status_code == 403
    assert again.json() == {"error": "token used up"}


def test_expired_token_is_403(client: httpx.Client, data_dir: Path, clock: FixedClock) -> None:
    past = FixedClock(clock.now() - timedelta(days=2))
    old = ServiceState.open(default_database_url(data_dir), clock=past)
    try:
        token = old.create_token("lab", lifetime=timedelta(days=1)).token
    finally:
        old.close()
    response = client.post("/v1/enroll", json={"token": token, "csr": csr_for()})
    assert response.status_code == 403
    assert response.json() == {"error": "token expired"}


@pytest.mark.parametrize(
    "csr",
    [
        "not a csr",
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        csr_for(ec.generate_private_key(ec.SECP384R1())),  # not P-256
    ],
)
def test_bad_csr_is_400_and_does_not_spend_the_token(
    client: httpx.Client, state: ServiceState, csr: str
) -> None:
    token = new_token(state)
    response = client.post("/v1/enroll", json={"token": token, "csr": csr})
    assert response.status_code == 400
    assert "certificate request rejected" in response.json()["error"]
    assert client.post("/v1/enroll", json={"token": token, "csr": csr_for()}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"csr": "x"}', b'{"token": "tdt_x"}', b'{"token": 1, "csr": "x"}'],
)
def test_malformed_request_is_400(client: httpx.Client, body: bytes) -> None:
    response = client.post("/v1/enroll", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "error" in response.json()


def test_oversized_body_is_413_before_it_is_read(client: httpx.Client) -> None:
    body = b"x" * (MAX_ENROLL_BODY_BYTES + 1)
    assert client.post("/v1/enroll", content=body).status_code == 413


def test_body_without_length_is_refused(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"token": "tdt_x",'
        yield b'"csr": "x"}'

    assert client.post("/v1/enroll", content=chunks()).status_code == 411


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
def test_enroll_accepts_only_post(client: httpx.Client, method: str) -> None:
    assert client.request(method, "/v1/enroll").status_code == 405


@pytest.mark.parametrize(
    "path", ["/v1/ca.pem", "/metadata/root.json", "/health", "/v1/enroll/", "/targets/x", "/x"]
)
def test_other_posts_are_still_rejected(client: httpx.Client, path: str) -> None:
    assert client.post(path, content=b"").status_code == 405
    assert client.post(path, json={"token": "tdt_x", "csr": "x"}).status_code == 405


def test_plain_http_port_offers_no_enrollment(
    plain_client: httpx.Client, service: ServiceEndpoints
) -> None:
    assert plain_client.post("/v1/enroll", json={"token": "t", "csr": "x"}).status_code == 405
    assert plain_client.get("/v1/ca.pem").status_code == 404
