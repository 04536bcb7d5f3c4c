"""Fixtures for the agent: a running service over real TLS, tokens, the CA pin."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tidings.clock import FixedClock
from tidings.service.config import ServiceConfig
from tidings.service.server import ServiceEndpoints, running_server
from tidings.service.state import ServiceState, default_database_url
from tidings.service.tls import ca_pin


@pytest.fixture
def service(data_dir: Path) -> Iterator[ServiceEndpoints]:
    """The real service on ``data_dir`` (HTTPS on a free loopback port)."""
    with running_server(data_dir, ServiceConfig(port=0, shutdown_grace_s=2)) as endpoints:
        yield endpoints


@pytest.fixture
def service_state(data_dir: Path, clock: FixedClock) -> Iterator[ServiceState]:
    """The service's token and device repository, opened beside the running service."""
    state = ServiceState.open(default_database_url(data_dir), clock=clock)
    yield state
    state.close()


@pytest.fixture
def token(service_state: ServiceState) -> str:
    """A single-use token for group ``lab``, valid for a day."""
    return service_state.create_token("lab", lifetime=timedelta(days=1)).token


@pytest.fixture
def pin(data_dir: Path) -> str:
    """The SPKI pin of the service CA, as `tidings server init` prints it."""
    return ca_pin(data_dir / "tls")
