"""Fixtures for CLI tests: an enrolled device talking to a running service."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tidings.agent.enroll import enroll
from tidings.catalog.publisher import PublishResult
from tidings.clock import FixedClock
from tidings.scan.samples import SAMPLE_DEVICES
from tidings.scan.session import INVENTORY_FILE
from tidings.service.config import ServiceConfig
from tidings.service.server import running_server
from tidings.service.state import ServiceState, default_database_url
from tidings.service.tls import ca_pin


@pytest.fixture
def enrolled(
    data_dir: Path, published: list[PublishResult], tmp_path: Path, clock: FixedClock
) -> Iterator[Path]:
    """A device enrolled with a running service that serves the sample catalog.

    The device's inventory is the sample desktop (every sample update applies to it).
    """
    with running_server(data_dir, ServiceConfig(port=0)) as endpoints:
        with ServiceState.open(default_database_url(data_dir), clock=clock) as state:
            token = state.create_token("lab", lifetime=timedelta(hours=1)).token
        state_dir = tmp_path / "device"
        enroll(
            state_dir,
            server=endpoints.base_url,
            pin=ca_pin(data_dir / "tls"),
            token=token,
            clock=clock,
        )
        (state_dir / INVENTORY_FILE).write_text(SAMPLE_DEVICES["desktop-x64"])
        yield state_dir
