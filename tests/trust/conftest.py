"""Fixtures of the attack matrix: the published sample catalog as a simulator, and a device."""

from __future__ import annotations

from pathlib import Path

import pytest
from attack_helpers import Device, new_device
from repo_simulator import RepositorySimulator

from tidings.catalog.publisher import PublishResult
from tidings.clock import FixedClock
from tidings.service.tls import create_ca, issue_server_certificate

Templates = tuple[Path, Path, list[PublishResult]]


@pytest.fixture
def sim(templates: Templates) -> RepositorySimulator:
    """The published sample catalog served from memory: a read-only view of the shared template."""
    return RepositorySimulator(templates[1], read_only=True)


@pytest.fixture
def disk_sim(data_dir: Path, published: list[PublishResult]) -> RepositorySimulator:
    """The same catalog from this test's own data dir: the real publisher may change it (a
    new revision, a key rotation) and the service may serve it."""
    return RepositorySimulator(data_dir)


@pytest.fixture
def device(templates: Templates, tmp_path: Path) -> Device:
    """A device enrolled with the catalog's first root, with nothing synced yet."""
    return new_device(templates[1], tmp_path / "device")


@pytest.fixture
def other_ca(tmp_path: Path, clock: FixedClock) -> Path:
    """Another CA, with a server certificate for 127.0.0.1: a man in the middle's."""
    tls = tmp_path / "mitm"
    create_ca(tls, clock=clock)
    issue_server_certificate(tls, clock=clock)
    return tls
