"""Fixtures for the update service: a data directory with a real CA, a running server, clients.

Everything listens on 127.0.0.1 with free ports; clients trust only the generated ``ca.pem``.
"""

from __future__ import annotations

import json
import os
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_helpers import PAYLOAD, PAYLOAD_PATH, SECRET, STATE_START, timestamp_json
from sqlalchemy import create_engine, text

from tidings.clock import FixedClock, SystemClock
from tidings.service.config import ServiceConfig
from tidings.service.server import ServiceEndpoints, running_server
from tidings.service.state import ServiceState, default_database_url
from tidings.service.tls import create_ca, issue_server_certificate


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory with a CA, a server certificate, metadata, a payload and a secret."""
    root = tmp_path / "data"
    tls_dir = root / "tls"
    create_ca(tls_dir, clock=SystemClock())
    issue_server_certificate(tls_dir, clock=SystemClock())
    metadata = root / "repo" / "metadata"
    metadata.mkdir(parents=True)
    (metadata / "1.root.json").write_bytes(b'{"signed": {"_type": "root"}}')
    (metadata / "root.json").write_bytes(b'{"signed": {"_type": "root"}}')
    (metadata / "timestamp.json").write_bytes(timestamp_json())
    snapshot = {"signed": {"_type": "snapshot", "meta": {"os.json": {"version": 2}}}}
    (metadata / "3.snapshot.json").write_bytes(json.dumps(snapshot).encode())
    (metadata / "2.os.json").write_bytes(b'{"signed": {"_type": "targets"}}')
    payload = root / "repo" / "targets" / PAYLOAD_PATH
    payload.parent.mkdir(parents=True)
    payload.write_bytes(PAYLOAD)
    (root / "secret.txt").write_bytes(SECRET)
    return root


@pytest.fixture
def ca_context(data_dir: Path) -> ssl.SSLContext:
    """A client TLS context trusting only the service CA."""
    return ssl.create_default_context(cafile=str(data_dir / "tls" / "ca.pem"))


@pytest.fixture
def config() -> ServiceConfig:
    return ServiceConfig(port=0, plain_http_port=0, shutdown_grace_s=2)


@pytest.fixture
def service(data_dir: Path, config: ServiceConfig) -> Iterator[ServiceEndpoints]:
    with running_server(data_dir, config) as endpoints:
        yield endpoints


@pytest.fixture
def client(service: ServiceEndpoints, ca_context: ssl.SSLContext) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.base_url, verify=ca_context, timeout=10) as c:
        yield c


@pytest.fixture
def plain_client(service: ServiceEndpoints) -> Iterator[httpx.Client]:
    assert service.plain_base_url is not None
    with httpx.Client(base_url=service.plain_base_url, timeout=10) as c:
        yield c


POSTGRES_URL = os.environ.get(
    "TIDINGS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose connections see only a fresh schema, dropped afterwards.

    Never skipped: CI (.ci/run) starts PostgreSQL at 127.0.0.1:5432 (trust auth, database
    ``test``); ``TIDINGS_TEST_POSTGRES_URL`` points elsewhere. One schema per test, so test
    sessions can run repeatedly and in parallel on one server.
    """
    schema = f"tidings_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def state_clock() -> FixedClock:
    """The service-state tests' clock: ``STATE_START``, moved only when a test says so.

    Not the global ``clock`` (real now), which the TLS tests in this directory need.
    """
    return FixedClock(STATE_START)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The service database URL: every test using it (or ``state``) runs on both databases."""
    if request.param == "sqlite":
        return default_database_url(tmp_path)
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def state(url: str, state_clock: FixedClock) -> Iterator[ServiceState]:
    """The service state on ``url``, on SQLite and on PostgreSQL."""
    with ServiceState.open(url, clock=state_clock) as s:
        yield s
