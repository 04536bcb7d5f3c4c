"""End to end over loopback: the real service over real TLS, python-tuf's own Updater."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from tuf.api.exceptions import DownloadError
from tuf.api.metadata import Metadata

from tidings.catalog.entries import CUSTOM_KEY, manifest_path, payload_path, pieces_path
from tidings.catalog.layout import bin_of_role
from tidings.catalog.publisher import Publisher, PublishResult
from tidings.clock import FixedClock
from tidings.manifest import manifest_from_dict
from tidings.service.config import ServiceConfig
from tidings.service.server import running_server
from tidings.service.tls import create_ca
from tufclient import https_updater


def test_python_tuf_updater_verifies_and_downloads_every_payload_over_https(
    data_dir: Path, publisher: Publisher, published: list[PublishResult], tmp_path: Path
) -> None:
    with running_server(data_dir, ServiceConfig(port=0)) as endpoints:
        updater, fetcher = https_updater(data_dir, tmp_path / "device", endpoints.base_url)
        try:
            updater.refresh()
            for result in published:
                home = bin_of_role(result.bins[0], publisher.layout)
                info = updater.get_targetinfo(manifest_path(home, result.update_id))
                assert info is not None
                custom = info.custom[CUSTOM_KEY]
                manifest = manifest_from_dict(custom["manifest"], source="signed")
                # The custom metadata arrives intact: the same manifest the publisher stored.
                stored = (
                    data_dir / "content/sha256" / info.hashes["sha256"][:2] / info.hashes["sha256"]
                ).read_bytes()
                assert manifest_from_dict(__import__("json").loads(stored), source="x") == manifest
                assert custom["payload_dir"] == home.directory
                for payload in manifest.payloads:
                    target = updater.get_targetinfo(payload_path(home, manifest.id, payload.name))
                    pieces = updater.get_targetinfo(pieces_path(home, manifest.id, payload.name))
                    assert target is not None and pieces is not None
                    assert target.custom[CUSTOM_KEY]["piece_map"] == pieces.path
                    data = Path(updater.download_target(target)).read_bytes()
                    assert hashlib.sha256(data).hexdigest() == payload.sha256
                    assert updater.find_cached_target(target) is not None
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
            with pytest.raises(DownloadError):
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
