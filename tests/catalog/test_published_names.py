"""A published name never changes its bytes, and a killed publish's files are never served.

Caches and CDNs keep versioned metadata, index documents and their gzip copies for a year
(``Cache-Control: immutable``): if one URL ever answered other bytes, every device behind such a
cache would fail to verify. Each test kills a real child publisher with SIGKILL at a step of its
commit (``atomic_helpers`` pause points), asks the service (the real ASGI app, in process) for
every file on disk, publishes again, and compares every answer with every earlier one.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from atomic_helpers import (
    CHILD_TIMEOUT_S,
    PAUSE_POINTS,
    PAUSED_FILE,
    SIGKILLED,
    Child,
    ChildPlan,
    create_catalog,
    kill_9,
    mixed_specs,
    start_child,
    verify_catalog,
    wait_until,
    write_manifest,
)
from fastapi import FastAPI
from tuf.api.metadata import Metadata, Snapshot, Timestamp

from tidings.catalog.publisher import Publisher
from tidings.catalog.samples import write_samples
from tidings.manifest import load_manifest
from tidings.service.app import create_app
from tidings.service.config import ServiceConfig

RENAME_PHASE = ("renamed:1", "renamed:metadata", "timestamp-rename")  # before the commit point
UNVERSIONED = ("timestamp.json", "root.json")  # replaced in place by design, served no-cache
VERSIONED = re.compile(r"/metadata/(?P<version>[0-9]+)\.(?P<role>.+)\.json")


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        kill_9(child)


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    data_dir = create_catalog(tmp_path / "data")
    Publisher(data_dir).publish_many(
        [load_manifest(p) for p in write_samples(tmp_path / "samples")]
    )
    return data_dir


@pytest.fixture
def app(catalog: Path) -> FastAPI:
    return create_app(catalog, config=ServiceConfig(port=0))


class ServedHistory:
    """Every (encoding, URL) the service ever answered 200, with the bytes it sent."""

    def __init__(self, app: FastAPI, data_dir: Path) -> None:
        self.app = app
        self.data_dir = data_dir
        self.bytes: dict[str, bytes] = {}
        # (role, version) of every snapshot seen committed, and the roles it lists; before
        # any kill, every versioned file on disk was committed by some publish.
        self.committed = {
            (m["role"], int(m["version"]))
            for p in (data_dir / "repo" / "metadata").iterdir()
            if (m := VERSIONED.fullmatch(f"/metadata/{p.name}"))
        }

    def observe(self, moment: str) -> set[str]:
        """Ask for every file on disk; fail if a name changed its bytes or is not committed."""
        served = asyncio.run(self._fetch_all())
        self.committed |= committed_versions(self.data_dir)
        for name, data in served.items():
            earlier = self.bytes.setdefault(name, data)
            assert earlier == data, f"{name} changed its bytes {moment}"
            match = VERSIONED.fullmatch(name.partition(" ")[2])
            if match and match["role"] != "root":
                listed = (match["role"], int(match["version"])) in self.committed
                assert listed, f"{name} was never committed, yet served {moment}"
        return set(served)

    async def _fetch_all(self) -> dict[str, bytes]:
        served = {}
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://catalog.test") as c:
            for url in self._urls():
                # Metadata and index documents (JSON) have gzip copies; payloads do not.
                for coding in ("identity", "gzip") if url.endswith(".json") else ("identity",):
                    headers = {"Accept-Encoding": coding}
                    async with c.stream("GET", url, headers=headers) as response:
                        body = b"".join([chunk async for chunk in response.aiter_raw()])
                    if response.status_code == 200:
                        served[f"{coding} {url}"] = body  # as sent: gzip copies stay packed
        return served

    def _urls(self) -> Iterator[str]:
        repo = self.data_dir / "repo"
        for path in sorted((repo / "metadata").iterdir()):
            if path.name not in UNVERSIONED:
                yield f"/metadata/{path.name}"
        for path in sorted((repo / "targets").rglob("*")):
            if path.is_file():
                yield f"/targets/{path.relative_to(repo / 'targets').as_posix()}"


def committed_versions(data_dir: Path) -> set[tuple[str, int]]:
    """(role, version) of the committed snapshot and of every role it lists."""
    metadata = data_dir / "repo" / "metadata"
    timestamp = Metadata[Timestamp].from_file(str(metadata / "timestamp.json")).signed
    version = timestamp.snapshot_meta.version
    snapshot = Metadata[Snapshot].from_file(str(metadata / f"{version}.snapshot.json")).signed
    listed = {(name.removesuffix(".json"), meta.version) for name, meta in snapshot.meta.items()}
    return listed | {("snapshot", version)}


def test_no_served_name_changes_its_bytes_when_a_publish_is_killed_at_any_step(
    tmp_path: Path, catalog: Path, app: FastAPI, children: list[Child]
) -> None:
    history = ServedHistory(app, catalog)
    served = history.observe("before any kill")
    for number, point in enumerate(PAUSE_POINTS):  # a kill at every step
        batch = [
            write_manifest(tmp_path / f"batch{number}", spec)
            for spec in mixed_specs(20, first_kind=number)
        ]
        ops = [{"publish": str(p)} for p in batch]
        plan = ChildPlan(str(catalog), ops, batch=True, pause_at=point)
        children.append(child := start_child(plan, tmp_path / f"kill{number}"))
        wait_until(
            lambda: (child.signal_dir / PAUSED_FILE).exists() or child.process.poll() is not None,
            timeout_s=CHILD_TIMEOUT_S,
            what=f"the child to pause at {point}",
        )
        assert kill_9(child) == SIGKILLED, child.output()

        after_kill = history.observe(f"after kill -9 at {point}")
        new = after_kill - served
        if point in RENAME_PHASE:
            # Killed among the commit's renames: only content-addressed targets can show early,
            # whose names are their bytes' hash; versioned metadata is refused until committed.
            assert all(" /targets/" in name for name in new), (point, sorted(new))
            for name in new:
                data = history.bytes[name]
                digest = name.rpartition("/")[2][:64]
                if name.endswith(".gz"):  # a gzip copy's name is the hash of what it packs
                    data = gzip.decompress(data)
                if name.startswith("identity"):
                    assert hashlib.sha256(data).hexdigest() == digest, name
        elif point != "lookup":  # before the renames nothing of the dead publish is served
            assert new == set(), (point, sorted(new))

        # The publisher runs again (a retry, plus something new so its bytes must differ).
        extra = write_manifest(tmp_path / f"extra{number}", mixed_specs(1, first_kind=number)[0])
        Publisher(catalog).publish_many([load_manifest(p) for p in (*batch, extra)])
        served = history.observe(f"after publishing again what the kill at {point} stopped")

    verify_catalog(catalog, tmp_path / "scratch")  # and the catalog is still whole
