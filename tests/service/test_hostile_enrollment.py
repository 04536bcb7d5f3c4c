"""``POST /v1/enroll`` against hostile bodies and clients: 400 not 500, no tracebacks, 429.

Real server over real TLS on loopback; the honest client connects from another loopback
address (127.0.0.2) so per-address limits on the attacker (127.0.0.1) are tested for real.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from service_helpers import csr_for

from tidings.clock import SystemClock
from tidings.errors import EnrollmentError
from tidings.service.config import ServiceConfig
from tidings.service.enrollment import parse_enroll_request
from tidings.service.server import ServiceEndpoints
from tidings.service.state import ServiceState, default_database_url

HONEST_ADDRESS = "127.0.0.2"  # all of 127.0.0.0/8 is loopback on Linux


def nested(depth: int) -> bytes:
    return b'{"token": ' + b"[" * depth + b"]" * depth + b', "csr": "x"}'


@pytest.fixture
def state(data_dir: Path) -> Iterator[ServiceState]:
    s = ServiceState.open(default_database_url(data_dir), clock=SystemClock())
    yield s
    s.close()


@pytest.fixture
def honest(service: ServiceEndpoints, ca_context: ssl.SSLContext) -> Iterator[httpx.Client]:
    """A client whose connections come from 127.0.0.2, not the attacker's 127.0.0.1."""
    transport = httpx.HTTPTransport(verify=ca_context, local_address=HONEST_ADDRESS)
    with httpx.Client(base_url=service.base_url, transport=transport, timeout=30) as c:
        yield c


@pytest.mark.parametrize(
    "body",
    [
        nested(5_000),
        b'{"token": "tdt_x", "csr": "\\ud800"}',  # a lone surrogate cannot be encoded
        b'{"token": "tdt_\\ud800", "csr": "x"}',
        b'{"token": "tdt_\\u0000", "csr": "x"}',
        b'{"token": "' + b"t" * 5_000 + b'", "csr": "x"}',
        b'{"token": "tdt_x", "csr": "x", "hostname": "\\ud800"}',
        b"\xff\xfe{}",
        b"1" * 5_000,  # beyond Python's int digit limit
    ],
    ids=[
        "nested",
        "surrogate-csr",
        "surrogate-token",
        "nul-token",
        "long-token",
        "surrogate-hostname",
        "not-utf8",
        "huge-int",
    ],
)
def test_hostile_enrollment_body_is_refused_by_the_parser(body: bytes) -> None:
    with pytest.raises(EnrollmentError):
        parse_enroll_request(body)


def test_deeply_nested_json_is_400_with_one_line_not_500(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    response = client.post("/v1/enroll", content=nested(5_000))
    assert response.status_code == 400
    assert "\n" not in response.json()["error"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize(
    "body",
    [b'{"token": "tdt_x", "csr": "\\ud800"}', b'{"token": "tdt_\\ud800", "csr": "x"}'],
    ids=["surrogate-csr", "surrogate-token"],
)
def test_unencodable_enrollment_fields_are_400_not_500(client: httpx.Client, body: bytes) -> None:
    assert client.post("/v1/enroll", content=body).status_code == 400


def test_client_vanishing_mid_enrollment_logs_no_error(
    service: ServiceEndpoints,
    ca_context: ssl.SSLContext,
    honest: httpx.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    host, port = service.base_url.removeprefix("https://").rsplit(":", 1)
    head = (
        f"POST /v1/enroll HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n"
    ).encode()
    with (
        socket.create_connection((host, int(port)), timeout=30) as tcp,
        ca_context.wrap_socket(tcp, server_hostname=host) as tls,
    ):
        tls.sendall(head + b'{"token": "tdt_')
    # Wait (bounded) until the server has dealt with the disconnect one way or the other.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
        r.levelno >= logging.ERROR or "disconnected" in r.getMessage() for r in caplog.records
    ):
        time.sleep(0.05)
    assert honest.get("/health").status_code == 200
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]


@pytest.fixture
def config() -> ServiceConfig:
    return ServiceConfig(
        port=0,
        plain_http_port=0,
        shutdown_grace_s=2,
        enroll_max_failures=3,
        enroll_failure_window_s=600,
    )


def test_repeated_failed_enrollments_get_429_without_checking_the_token(
    client: httpx.Client,
    honest: httpx.Client,
    state: ServiceState,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tidings")
    for _ in range(3):
        assert client.post("/v1/enroll", json={"token": "tdt_guess", "csr": "x"}).status_code == 403
    good = {"token": state.create_token("lab", lifetime=timedelta(hours=1)).token}
    refused = client.post("/v1/enroll", json={**good, "csr": csr_for()})
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 600
    for _ in range(20):  # the attacker keeps knocking: still refused, the log stays short
        assert client.post("/v1/enroll", content=b"junk").status_code == 429
    # another address is unaffected, and the token was never spent by the refused request
    accepted = honest.post("/v1/enroll", json={**good, "csr": csr_for()})
    assert accepted.status_code == 200, accepted.text
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert 1 <= len(warnings) <= 4, [r.getMessage() for r in warnings]
    assert all("127.0.0.1" in r.getMessage() for r in warnings)


def test_enrollment_failures_are_not_counted_against_another_address(
    client: httpx.Client, honest: httpx.Client
) -> None:
    for _ in range(5):
        client.post("/v1/enroll", content=b"junk")
    assert client.post("/v1/enroll", content=b"junk").status_code == 429
    assert honest.post("/v1/enroll", content=b"junk").status_code == 400


def test_parallel_enrollments_cannot_all_try_a_token_before_the_first_fails(
    service: ServiceEndpoints, ca_context: ssl.SSLContext
) -> None:
    host, port = service.base_url.removeprefix("https://").rsplit(":", 1)
    body = json.dumps({"token": "tdt_guess", "csr": "x"}).encode()
    head = (
        f"POST /v1/enroll HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    attempts = []
    try:
        for _ in range(12):  # every head first: each passes the check before any body
            tcp = socket.create_connection((host, int(port)), 30, ("127.0.0.3", 0))
            attempts.append(ca_context.wrap_socket(tcp, server_hostname=host))
            attempts[-1].sendall(head)
        time.sleep(0.5)  # let the server read every head (no effect on the outcome if slower)
        for tls in attempts:
            tls.sendall(body)
        statuses = [int(read_all(tls).split(b" ", 2)[1]) for tls in attempts]
    finally:
        for tls in attempts:
            tls.close()
    assert statuses.count(403) <= 3  # enroll_max_failures: no more tokens were checked
    assert statuses.count(403) + statuses.count(429) == len(attempts), statuses


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65_536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_nested_json_body_is_still_json_for_honest_bodies() -> None:
    body = json.dumps({"token": "tdt_x", "csr": "x", "hostname": "pc-1"}).encode()
    assert parse_enroll_request(body).hostname == "pc-1"
