"""``tidings demo``: the main job end to end on embedded defaults.

Creates a data directory, publishes one update of each kind, starts the update service on
loopback, then: python-tuf's Updater, through our pinned fetcher over HTTPS, verifies the
catalog and downloads every payload and piece map (each payload checked piece by piece against
its signed piece map); and three simulated devices with different inventories enroll with a
token and the CA pin, sync the catalog and search for the updates that apply to them.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from tidings.agent.enroll import enroll
from tidings.catalog.create import InitOptions, create_data_dir
from tidings.catalog.entries import payload_target, piece_map_target
from tidings.catalog.index import filing
from tidings.catalog.piecemap import PieceMap
from tidings.catalog.publisher import Publisher
from tidings.catalog.samples import write_samples
from tidings.clock import SystemClock
from tidings.errors import ConfigError, IntegrityError
from tidings.manifest import UpdateManifest, load_manifest
from tidings.scan.samples import SAMPLE_DEVICES
from tidings.scan.session import INVENTORY_FILE, UpdateSession
from tidings.service.config import ServiceConfig
from tidings.service.server import running_server
from tidings.service.state import ServiceState, default_database_url
from tidings.service.tls import ca_pin, create_ca, issue_server_certificate
from tidings.trust.catalog_reader import CatalogReader
from tidings.trust.fetcher import HttpxFetcher

Say = Callable[[str], None]


@dataclass(frozen=True)
class DownloadedUpdate:
    """One update as the demo device received it."""

    kind: str
    title: str
    files: int
    bytes: int
    pieces: int


@dataclass(frozen=True)
class DeviceScan:
    """What one simulated device found."""

    name: str
    device_id: str
    titles: tuple[str, ...]
    bins: int  # index bins its inventory selected
    bytes: int  # metadata bytes its first scan downloaded


@dataclass(frozen=True)
class DemoSummary:
    """What the demo did."""

    data_dir: Path
    service_url: str
    ca_pin: str
    root_version: int
    timestamp_version: int
    updates: tuple[DownloadedUpdate, ...]
    devices: tuple[DeviceScan, ...]
    seconds: float


def run_demo(work_dir: Path | None = None, *, say: Say = print) -> DemoSummary:
    """Run the demo in ``work_dir`` (a new temporary directory by default).

    Raises:
        ConfigError: ``work_dir`` is not a directory and cannot be made one, or it already
            holds a demo's data.
    """
    started = time.monotonic()
    base = work_dir or Path(tempfile.mkdtemp(prefix="tidings-demo-"))
    try:
        base.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as e:
        raise ConfigError(f"{base} is not a directory: give a new or existing directory") from e
    except OSError as e:
        raise ConfigError(f"cannot create the work directory {base}: {e.strerror}") from e
    clock = SystemClock()
    data_dir = base / "service-data"

    def add_tls(tmp: Path) -> None:
        create_ca(tmp / "tls", clock=clock)
        issue_server_certificate(tmp / "tls", clock=clock)

    create_data_dir(data_dir, clock=clock, options=InitOptions(), extra=add_tls)
    pin = ca_pin(data_dir / "tls")
    say(f"created data directory {data_dir} (CA pin {pin})")
    publisher = Publisher(data_dir, clock=clock)
    manifests = write_samples(base / "publisher")
    authored = [load_manifest(p) for p in manifests]
    results = publisher.publish_many(authored)
    for r in results:
        say(f"published {r.update_id} revision {r.revision} into {', '.join(r.bins)}")
    config = ServiceConfig(port=0, resign_interval_s=60.0)
    with running_server(data_dir, config, resign=publisher.refresh_online) as endpoints:
        say(f"update service listening on {endpoints.base_url}")
        reader, fetcher = _device_reader(base / "device", data_dir, endpoints.base_url)
        try:
            reader.refresh()
            received = tuple(
                _download_update(reader, publisher, a.manifest, say=say) for a in authored
            )
        finally:
            fetcher.close()
        # python-tuf exposes the trusted versions only through its (read-only) trusted set.
        root_version = reader.updater._trusted_set.root.version
        ts_version = reader.updater._trusted_set.timestamp.version
        devices = _scan_devices(base / "devices", data_dir, endpoints.base_url, pin, say=say)
    say("update service stopped")
    return DemoSummary(
        data_dir,
        endpoints.base_url,
        pin,
        root_version,
        ts_version,
        received,
        devices,
        time.monotonic() - started,
    )


def _device_reader(
    device_dir: Path, data_dir: Path, base_url: str
) -> tuple[CatalogReader, HttpxFetcher]:
    # Enrollment hands a device the CA and the first root (see _scan_devices); here we copy them.
    bootstrap = (data_dir / "repo" / "metadata" / "1.root.json").read_bytes()
    fetcher = HttpxFetcher(ca_file=data_dir / "tls" / "ca.pem")
    reader = CatalogReader(
        metadata_dir=device_dir / "metadata",
        metadata_url=f"{base_url}/metadata/",
        targets_url=f"{base_url}/targets/",
        download_dir=device_dir / "downloads",
        fetcher=fetcher,
        bootstrap=bootstrap,
    )
    return reader, fetcher


def _download_update(
    reader: CatalogReader, publisher: Publisher, published: UpdateManifest, *, say: Say
) -> DownloadedUpdate:
    """Find the update through its signed index, then download and verify every payload."""
    home, keys = next(iter(filing(published, publisher.layout).items()))
    found, _ = reader.bin_entries(home, keys)
    entry = next((e for e in found if e.manifest.id == published.id), None)
    if entry is None:
        raise IntegrityError(f"update {published.id} is not in the signed catalog")
    manifest, updater = entry.manifest, reader.updater
    total = pieces = 0
    for payload in manifest.payloads:
        # Length and SHA-256 come from the signed manifest; python-tuf checks both.
        path = Path(
            updater.download_target(payload_target(entry.payload_dir, manifest.id, payload))
        )
        map_path = updater.download_target(
            piece_map_target(entry.payload_dir, manifest.id, payload)
        )
        piece_map = PieceMap.from_bytes(Path(map_path).read_bytes())
        if hashlib.sha256(piece_map.to_bytes()).hexdigest() != payload.piece_map_sha256:
            raise IntegrityError(f"{payload.name}: piece map does not match the manifest")
        data = path.read_bytes()
        for index in range(piece_map.count):
            start, end = piece_map.piece_range(index)
            piece_map.verify_piece(index, data[start:end])
        total += len(data)
        pieces += piece_map.count
    say(f"downloaded and verified {manifest.kind.value:<11} {manifest.title}")
    return DownloadedUpdate(
        manifest.kind.value, manifest.title, len(manifest.payloads), total, pieces
    )


def _scan_devices(
    devices_dir: Path, data_dir: Path, server: str, pin: str, *, say: Say
) -> tuple[DeviceScan, ...]:
    """Enroll the three sample devices with one token and let each search for updates."""
    clock = SystemClock()
    with ServiceState.open(default_database_url(data_dir), clock=clock) as state:
        token = state.create_token("demo", lifetime=timedelta(hours=1), uses=None).token
    scans = []
    for name, inventory in SAMPLE_DEVICES.items():
        state_dir = devices_dir / name
        identity = enroll(state_dir, server=server, pin=pin, token=token, clock=clock)
        (state_dir / INVENTORY_FILE).write_text(inventory.lstrip())
        with UpdateSession(state_dir, clock=clock) as session:
            result = session.create_searcher().search()
        titles = tuple(u.title for u in result.updates)
        say(f"device {name} ({identity.device_id[:8]}) enrolled and found {len(titles)} update(s)")
        stats = result.stats
        scans.append(
            DeviceScan(name, identity.device_id, titles, stats.bins_selected, stats.bytes_received)
        )
    return tuple(scans)
