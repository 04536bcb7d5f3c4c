"""The attack matrix, continued: attacks on the transport (slow retrieval, wrong pin).

Slow retrieval: a real TLS server on 127.0.0.1 (the data dir's server certificate) answers the
timestamp request slowly; the fetcher's total deadline and minimum rate (docs/architecture.md,
"Trust model") must end the download with ``DeadlineError`` within a bounded time, and nothing is
trusted from it. Wrong pin: the device's enrolled SPKI pin does not match the CA it is given, or the
service presents a certificate from another CA.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from attack_helpers import Device, TrickleServer, elapsed_s, mirror_of, new_device, summary, sync
from repo_simulator import RepositorySimulator

from tidings.agent.enroll import enroll
from tidings.catalog.publisher import PublishResult
from tidings.clock import FixedClock
from tidings.errors import DeadlineError, IntegrityError, TransportError, UntrustedServerError
from tidings.service.config import ServiceConfig
from tidings.service.server import running_server
from tidings.service.tls import SERVER_CERT, SERVER_KEY, ca_pin
from tidings.trust.fetcher import FetcherConfig, HttpxFetcher

Templates = tuple[Path, Path, list[PublishResult]]
SLOW = FetcherConfig(total_deadline_s=2, min_rate_grace_s=1, read_timeout_s=5)
BOUND_S = 6.0  # seconds: a generous bound on a 2 s deadline, not a benchmark
SERVER_GIVES_UP_S = 8.0  # seconds: the trickling server stops by itself after this


# -- slow retrieval -------------------------------------------------------------------------

HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 16000\r\nConnection: close\r\n\r\n"
TRICKLES = {
    # 20 bytes/s: under the 1024 bytes/s minimum rate once the 1 s grace period is over.
    "body below the minimum rate": (SLOW, HEAD, b"{", 0.05),
    # Above a (lowered) minimum rate, but the body never completes: the 2 s total deadline.
    "body that never completes": (replace(SLOW, min_rate_bytes_s=1), HEAD, b"{", 0.05),
    # The headers never complete; every byte arrives well within the 5 s read timeout.
    "headers that never complete": (SLOW, b"HTTP/1.1 200 OK\r\nX-Trickle: ", b"a", 0.05),
}


@pytest.fixture
def trickle(
    request: pytest.FixtureRequest, sim: RepositorySimulator, templates: Templates
) -> Iterator[tuple[TrickleServer, FetcherConfig]]:
    config, head, step, interval_s = TRICKLES[request.param]
    files = {path: body for path, body in sim.files.items() if isinstance(body, bytes)}
    server = TrickleServer(
        templates[1],
        files,
        lambda path: (head, step, interval_s) if path == "metadata/timestamp.json" else None,
        max_life_s=SERVER_GIVES_UP_S,
    )
    with server:
        yield server, config


@pytest.mark.parametrize("trickle", list(TRICKLES), indirect=True)
def test_slow_retrieval_hits_the_deadline_and_last_good_stays_trusted(
    device: Device,
    sim: RepositorySimulator,
    templates: Templates,
    trickle: tuple[TrickleServer, FetcherConfig],
) -> None:
    server, config = trickle
    with mirror_of("memory", sim) as mirror:
        good = sync(device, mirror)
    before = device.files()

    fetcher = HttpxFetcher(ca_file=templates[1] / "tls/ca.pem", base_url=server.url, config=config)
    try:
        took, error = elapsed_s(lambda: device.sync(fetcher, base_url=server.url))
    finally:
        fetcher.close()
    assert "metadata/timestamp.json" in server.requests
    assert isinstance(error, DeadlineError), f"after {took:.1f} s: {error!r}"
    assert took < BOUND_S, f"the {config.total_deadline_s:g} s deadline took {took:.1f} s"
    assert device.files() == before

    with mirror_of("memory", sim) as mirror:
        assert sync(device, mirror) == good


# -- wrong pin ------------------------------------------------------------------------------


@pytest.mark.parametrize("wrong", ["pin of another key", "CA file of another CA"])
def test_wrong_pin_is_refused_before_any_request(
    templates: Templates, other_ca: Path, tmp_path: Path, wrong: str
) -> None:
    tls = templates[1] / "tls"
    enrolled = ca_pin(tls)
    ca_file = tls / "ca.pem"
    if wrong == "pin of another key":
        pin = "sha256/" + base64.b64encode(b"\x00" * 32).decode()
    else:  # the device's CA file was swapped; the pin taken at enrollment still stands
        pin, ca_file = enrolled, other_ca / "ca.pem"
    with pytest.raises(IntegrityError, match="pin"):
        HttpxFetcher(ca_file=ca_file, pin=pin, base_url="https://127.0.0.1:1")
    HttpxFetcher(ca_file=tls / "ca.pem", pin=enrolled).close()  # the right pair is accepted


def test_service_certificate_from_another_ca_is_refused_and_last_good_stays_trusted(
    data_dir: Path, published: list[PublishResult], other_ca: Path, tmp_path: Path
) -> None:
    device = new_device(data_dir, tmp_path / "device")
    ca_file, pin = data_dir / "tls/ca.pem", ca_pin(data_dir / "tls")

    def sync_from(config: ServiceConfig) -> object:
        with running_server(data_dir, config) as endpoints:
            fetcher = HttpxFetcher(ca_file=ca_file, pin=pin, base_url=endpoints.base_url)
            try:
                return summary(device.sync(fetcher, base_url=endpoints.base_url))
            finally:
                fetcher.close()

    good = sync_from(ServiceConfig(port=0))
    before = device.files()
    mitm = ServiceConfig(port=0, certfile=other_ca / SERVER_CERT, keyfile=other_ca / SERVER_KEY)
    with pytest.raises(UntrustedServerError, match="not signed by the pinned CA") as info:
        sync_from(mitm)
    # A security event, not a network hiccup: the TLS handshake failed certificate verification.
    assert not isinstance(info.value, TransportError)
    assert any(isinstance(e, ssl.SSLCertVerificationError) for e in causes(info.value))
    assert device.files() == before

    assert sync_from(ServiceConfig(port=0)) == good


def causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and its chain of causes and contexts."""
    seen: BaseException | None = error
    for _ in range(20):  # bounded: chains are short
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or seen.__context__


# -- enrollment: any server can answer before the pin is checked -----------------------------


@pytest.mark.parametrize("trickled", ["headers", "body"])
def test_enrollment_from_a_trickling_server_ends_within_its_timeout(
    templates: Templates, tmp_path: Path, clock: FixedClock, trickled: str
) -> None:
    # Each byte arrives well within the per-read timeout, so only a total deadline per
    # request stops the server from holding enrollment until it gives up on its own.
    head = b"HTTP/1.1 200 OK\r\n" + (
        b"" if trickled == "headers" else b"Content-Length: 65536\r\n\r\n"
    )
    step = b"X-Slow: 1\r\n" if trickled == "headers" else b"-"
    server = TrickleServer(
        templates[1], {}, lambda path: (head, step, 0.2), max_life_s=SERVER_GIVES_UP_S
    )
    with server:
        _, error = elapsed_s(
            lambda: enroll(
                tmp_path / "device",
                server=server.url,
                pin=ca_pin(templates[1] / "tls"),
                token="t0ken",
                clock=clock,
                timeout_s=1.0,
            )
        )
    assert isinstance(error, TransportError)
    assert "did not answer within 1 s" in str(error)  # its own deadline, not the server closing
    assert not (tmp_path / "device").exists()
