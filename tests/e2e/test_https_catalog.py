"""End to end over loopback: the real service over real TLS, python-tuf's own Updater."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata

from tidings.catalog.entries import payload_target, piece_map_target
from tidings.catalog.layout import bin_of_role
from tidings.catalog.publisher import Publisher, PublishResult
from tidings.clock import FixedClock
from tidings.errors import UntrustedServerError
from tidings.manifest import manifest_from_dict
from tidings.service.config import ServiceConfig
from tidings.service.server import running_server
from tidings.service.tls import create_ca
from tufclient import https_updater, indexed_manifests


def result_sha(publisher: Publisher, result: PublishResult) -> str:
    """``<xx>/<sha256>`` of the stored manifest document of a published revision."""
    sha = {u.id: u.manifest_sha256 for u in publisher.updates()}[result.update_id]
    return f"{sha[:2]}/{sha}"


def test_python_tuf_updater_verifies_and_downloads_every_payload_over_https(
    data_dir: Path, publisher: Publisher, published: list[PublishResult], tmp_path: Path
) -> None:
    with running_server(data_dir, ServiceConfig(port=0)) as endpoints:
        updater, fetcher = https_updater(data_dir, tmp_path / "device", endpoints.base_url)
        try:
            updater.refresh()
            for result in published:
                home = bin_of_role(result.bins[0], publisher.layout)
                signed = indexed_manifests(updater, home, result.keys[0])[result.update_id]
                manifest = manifest_from_dict(signed, source="signed")
                # The manifest arrives intact: the one the publisher stored for this revision.
                stored = (data_dir / "content/sha256" / result_sha(publisher, result)).read_bytes()
                assert manifest_from_dict(json.loads(stored), source="stored") == manifest
                for payload in manifest.payloads:
                    target = payload_target(home.directory, manifest.id, payload)
                    pieces = piece_map_target(home.directory, manifest.id, payload)
                    data = Path(updater.download_target(target)).read_bytes()
                    assert hashlib.sha256(data).hexdigest() == payload.sha256
                    assert updater.find_cached_target(target) is not None
                    map_bytes = Path(updater.download_target(pieces)).read_bytes()
                    assert hashlib.sha256(map_bytes).hexdigest() == payload.piece_map_sha256
        finally:
            fetcher.close()


def test_client_with_another_ca_refuses_the_service(
    data_dir: Path, published: list[PublishResult], tmp_path: Path, clock: FixedClock
) -> None:
    create_ca(tmp_path / "other-ca", clock=clock)
    other = tmp_path / "other-data"
    (other / "tls").mkdir(parents=True)
    (other / "tls/ca.pem").write_bytes((tmp_path / "other-ca/ca.pem").read_bytes())
    (other / "repo/metadata").mkdir(parents=True)
    root = (data_dir / "repo/metadata/1.root.json").read_bytes()
    with running_server(data_dir, ServiceConfig(port=0)) as endpoints:
        updater, fetcher = https_updater(
            other, tmp_path / "dev", endpoints.base_url, bootstrap=root
        )
        try:
            # Our fetcher's security event passes through python-tuf's Updater untouched.
            with pytest.raises(UntrustedServerError, match="not signed by the pinned CA"):
                updater.refresh()
        finally:
            fetcher.close()


def test_running_service_resigns_an_expiring_timestamp(
    data_dir: Path,
    publisher: Publisher,
    published: list[PublishResult],
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    ts_path = data_dir / "repo/metadata/timestamp.json"
    before = Metadata.from_bytes(ts_path.read_bytes()).signed
    config = ServiceConfig(port=0, resign_interval_s=0.05)
    with running_server(data_dir, config, resign=publisher.refresh_online) as endpoints:
        clock.advance(20 * 3600)  # 4 hours of the timestamp's day left: due for re-signing
        deadline = time.monotonic() + 10
        while Metadata.from_bytes(ts_path.read_bytes()).signed.version == before.version:
            assert time.monotonic() < deadline, "the service never re-signed the timestamp"
            time.sleep(0.05)
        after = Metadata.from_bytes(ts_path.read_bytes()).signed
        assert after.version == before.version + 1
        assert (
            after.expires == clock.now().replace(microsecond=0) + publisher.config.expiry.timestamp
        )
        # ...and a device accepts the re-signed timestamp.
        updater, fetcher = https_updater(data_dir, tmp_path / "device", endpoints.base_url)
        try:
            updater.refresh()
        finally:
            fetcher.close()
