"""Fixtures shared by every test folder: a data directory with a published sample catalog."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import settings

from tidings.catalog.create import create_data_dir
from tidings.catalog.publisher import Publisher, PublishResult
from tidings.catalog.samples import write_samples
from tidings.clock import FixedClock
from tidings.manifest import load_manifest
from tidings.service.tls import create_ca, issue_server_certificate

# Tests never assert on wall-clock time (benchmarks in bench/ measure it): no per-example deadlines
# on shared, noisy machines; a real hang is still stopped by pytest-timeout.
settings.register_profile("tidings", deadline=None)
settings.load_profile("tidings")

START = datetime.now(UTC).replace(microsecond=0)  # real now: TLS and TUF check real time too


@pytest.fixture
def clock() -> FixedClock:
    """A clock that moves only when a test says so."""
    return FixedClock(START)


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[PublishResult]]:
    """Made once per run: an empty data directory, and one with the samples published.

    Tests get copies, so each starts from the same keys and state without paying for key
    generation, signing and hashing again.
    """
    base = tmp_path_factory.mktemp("templates")
    clock = FixedClock(START)

    def add_tls(tmp: Path) -> None:
        create_ca(tmp / "tls", clock=clock)
        issue_server_certificate(tmp / "tls", clock=clock)

    empty = base / "empty"
    create_data_dir(empty, clock=clock, extra=add_tls)
    full = base / "published"
    shutil.copytree(empty, full)
    manifests = write_samples(base / "publisher")
    results = Publisher(full, clock=clock).publish_many([load_manifest(p) for p in manifests])
    return empty, full, results


@pytest.fixture
def data_dir(tmp_path: Path, templates: tuple[Path, Path, list[PublishResult]]) -> Path:
    """A fresh data directory (keys, empty catalog, CA and server certificate)."""
    path = tmp_path / "data"
    shutil.copytree(templates[0], path)
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
def published(
    data_dir: Path, publisher: Publisher, templates: tuple[Path, Path, list[PublishResult]]
) -> list[PublishResult]:
    """The sample catalog, published into ``data_dir`` (a copy of the published template)."""
    shutil.rmtree(data_dir)
    shutil.copytree(templates[1], data_dir)
    return list(templates[2])
