"""Fixtures shared by every test folder: a data directory with a published sample catalog."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tidings.catalog.create import create_data_dir
from tidings.catalog.publisher import Publisher, PublishResult
from tidings.catalog.samples import write_samples
from tidings.clock import FixedClock
from tidings.manifest import load_manifest
from tidings.service.tls import create_ca, issue_server_certificate

START = datetime.now(UTC).replace(microsecond=0)  # real now: TLS and TUF check real time too


@pytest.fixture
def clock() -> FixedClock:
    """A clock that moves only when a test says so."""
    return FixedClock(START)


@pytest.fixture
def data_dir(tmp_path: Path, clock: FixedClock) -> Path:
    """A fresh data directory (keys, empty catalog, CA and server certificate)."""

    def add_tls(tmp: Path) -> None:
        create_ca(tmp / "tls", clock=clock)
        issue_server_certificate(tmp / "tls", clock=clock)

    path = tmp_path / "data"
    create_data_dir(path, clock=clock, extra=add_tls)
    return path


@pytest.fixture
def sample_manifests(tmp_path: Path) -> list[Path]:
    """The five sample manifests (one per kind) with their payloads."""
    return write_samples(tmp_path / "publisher")


@pytest.fixture
def publisher(data_dir: Path, clock: FixedClock) -> Publisher:
    """A publisher on ``data_dir`` with the fixed clock."""
    return Publisher(data_dir, clock=clock)


@pytest.fixture
def published(publisher: Publisher, sample_manifests: list[Path]) -> list[PublishResult]:
    """The sample catalog, published."""
    return publisher.publish_many([load_manifest(p) for p in sample_manifests])
