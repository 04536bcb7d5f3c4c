"""Enrolled devices scan the real service over HTTPS through the WUA-style API."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tidings.agent.enroll import enroll
from tidings.catalog.keyindex import SegmentPolicy, key_digest
from tidings.catalog.layout import bin_family
from tidings.catalog.publisher import Publisher, PublishResult
from tidings.clock import FixedClock
from tidings.errors import TidingsError, TransportError
from tidings.manifest import load_manifest
from tidings.scan.criteria import CriteriaError
from tidings.scan.samples import SAMPLE_DEVICES
from tidings.scan.session import INVENTORY_FILE, UpdateSession
from tidings.service.config import ServiceConfig
from tidings.service.server import ServiceEndpoints, running_server
from tidings.service.state import ServiceState, default_database_url
from tidings.service.tls import ca_pin


@pytest.fixture
def service(data_dir: Path, published: list[PublishResult]) -> Iterator[ServiceEndpoints]:
    with running_server(data_dir, ServiceConfig(port=0)) as endpoints:
        yield endpoints


def enroll_device(
    data_dir: Path, endpoints: ServiceEndpoints, state_dir: Path, clock: FixedClock, name: str
) -> Path:
    with ServiceState.open(default_database_url(data_dir), clock=clock) as state:
        token = state.create_token("lab", lifetime=timedelta(hours=1)).token
    enroll(state_dir, server=endpoints.base_url, pin=ca_pin(data_dir / "tls"), token=token,
           clock=clock)  # fmt: skip
    (state_dir / INVENTORY_FILE).write_text(SAMPLE_DEVICES[name])
    return state_dir


def titles(result: object) -> set[str]:
    return {u.title for u in result.updates}  # type: ignore[attr-defined]


def test_each_device_finds_what_applies_to_its_inventory(
    data_dir: Path, service: ServiceEndpoints, tmp_path: Path, clock: FixedClock
) -> None:
    found = {}
    for name in SAMPLE_DEVICES:
        state = enroll_device(data_dir, service, tmp_path / name, clock, name)
        with UpdateSession(state) as session:
            found[name] = titles(session.create_searcher().search())
    assert found["desktop-x64"] == {
        "2026-11 Cumulative Update for Tidings OS 11 (KB5031354)",
        "Contoso Editor 2.4.1",
        "Intel(R) Graphics Driver 31.0.101.4502",
        "Security Intelligence Update 1.421.88.0",
        "Contoso Notes 2.3.0.0",
    }
    assert found["laptop-arm64"] == {
        "2026-11 Cumulative Update for Tidings OS 11 (KB5031354)",
        "Security Intelligence Update 1.421.88.0",
    }
    assert found["kiosk"] == set()


def test_merged_index_documents_are_fetched_once_and_old_ones_do_not_pile_up(
    data_dir: Path,
    service: ServiceEndpoints,
    sample_manifests: list[Path],
    tmp_path: Path,
    clock: FixedClock,
) -> None:
    # Tiny segments: every new update of the editor fills one, every 2 sealed ones merge.
    publisher = Publisher(data_dir, clock=clock, segments=SegmentPolicy(1, 2))
    template = sample_manifests[1].read_text()
    state = enroll_device(data_dir, service, tmp_path / "dev", clock, "desktop-x64")
    index = state / "downloads" / "index"
    with UpdateSession(state) as session:
        searcher = session.create_searcher()
        searcher.search()
        first = previous = template.split('id = "')[1].split('"')[0]
        for n in range(1, 6):
            uid = f"9d9d9d9d-1111-4222-8333-{n:012d}"
            path = sample_manifests[1].with_name(f"editor-{n}.toml")  # beside its payload
            text = template.replace(first, uid).replace("Contoso Editor 2.4.1", f"Editor {n}")
            path.write_text(
                text.replace("products = [", f'supersedes = ["{previous}"]\nproducts = [')
            )
            publisher.publish(load_manifest(path))
            previous = uid
            result = searcher.search()
            assert result.stats.documents_fetched <= 2  # the open one, or the one merged into
            listed = {p.name for p in index.iterdir()}
            assert len(listed) == len(session._cache.documents)  # what the scan read, no more
        editors = [u for u in result.updates if u.kind == "app"]
        assert [u.title for u in editors] == ["Editor 5"]  # the others are superseded
    segments = [n for n in listed if n.startswith(key_digest("apps:contoso-editor"))]
    assert len(segments) < 6  # five new updates and the first: merged, not one file each


@pytest.mark.parametrize("damage", ["garbage of the same length", "truncated", "removed"])
def test_a_damaged_local_copy_of_an_index_document_is_fetched_again_never_trusted(
    data_dir: Path, service: ServiceEndpoints, tmp_path: Path, clock: FixedClock, damage: str
) -> None:
    state = enroll_device(data_dir, service, tmp_path / "dev", clock, "desktop-x64")
    with UpdateSession(state) as session:
        good = titles(session.create_searcher().search())
    copies = sorted((state / "downloads" / "index").iterdir())
    verified = {copy: copy.read_bytes() for copy in copies}
    assert copies
    for copy in copies:  # another process, a disk error, a local attacker
        size = copy.stat().st_size
        if damage == "removed":
            copy.unlink()
        else:
            copy.write_bytes(b"{" * (size if damage.startswith("garbage") else size // 2))
    with UpdateSession(state) as fresh:  # a new process: only the disk to go by
        again = fresh.create_searcher().search()
    assert titles(again) == good
    assert again.stats.documents_fetched == len(copies)
    assert {copy: copy.read_bytes() for copy in copies} == verified  # whole, as signed


def test_scan_fetches_only_the_bins_its_inventory_selects(
    data_dir: Path, service: ServiceEndpoints, tmp_path: Path, clock: FixedClock
) -> None:
    state = enroll_device(data_dir, service, tmp_path / "kiosk", clock, "kiosk")
    with UpdateSession(state) as session:
        result = session.create_searcher().search()
    on_disk = {p.name.removesuffix(".json") for p in (state / "trust/metadata").glob("*.json")}
    bins = {n for n in on_disk if bin_family(n) is not None}
    assert len(bins) == result.stats.bins_selected
    published = (p.name.removesuffix(".json") for p in (data_dir / "repo/metadata").glob("1.*"))
    total_bins = sum(1 for n in published if bin_family(n.partition(".")[2]) is not None)
    assert 0 < len(bins) < total_bins / 10  # cost follows the inventory, not the catalog


def test_scan_with_no_change_costs_little_and_an_incremental_scan_only_what_changed(
    data_dir: Path,
    service: ServiceEndpoints,
    publisher: Publisher,
    sample_manifests: list[Path],
    tmp_path: Path,
    clock: FixedClock,
) -> None:
    state = enroll_device(data_dir, service, tmp_path / "dev", clock, "desktop-x64")
    with UpdateSession(state) as session:
        searcher = session.create_searcher()
        cold = searcher.search()
        again = searcher.search()
        assert again.stats.bins_verified == 0
        assert again.stats.bytes_received < 2_000  # the timestamp (and a 404 for the next root)
        assert titles(again) == titles(cold)
        text = sample_manifests[1].read_text().replace("revision = 1", "revision = 2")
        sample_manifests[1].write_text(text)
        publisher.publish(load_manifest(sample_manifests[1]))
        incremental = searcher.search()
        assert incremental.stats.bins_verified == 1  # the app's bin, nothing else
        assert incremental.stats.bytes_received < cold.stats.bytes_received
        editor = [u for u in incremental.updates if u.kind == "app"]
        assert [u.revision for u in editor] == [2]
    with UpdateSession(state) as fresh:  # another process: verified metadata from disk
        assert titles(fresh.create_searcher().search()) == titles(cold)


def test_hidden_updates_and_accepted_eulas_persist(
    data_dir: Path, service: ServiceEndpoints, tmp_path: Path, clock: FixedClock
) -> None:
    state = enroll_device(data_dir, service, tmp_path / "dev", clock, "desktop-x64")
    with UpdateSession(state) as session:
        result = session.create_searcher().search()
        editor = next(u for u in result.updates if u.kind == "app")
        assert editor.eula_text and not editor.eula_accepted
        editor.accept_eula()
        driver = next(u for u in result.updates if u.update_type == "Driver")
        driver.is_hidden = True
    with UpdateSession(state) as session:
        searcher = session.create_searcher()
        default = searcher.search()
        assert "Intel(R) Graphics Driver 31.0.101.4502" not in titles(default)
        assert next(u for u in default.updates if u.kind == "app").eula_accepted
        hidden = searcher.search("IsHidden=1")
        assert titles(hidden) == {"Intel(R) Graphics Driver 31.0.101.4502"}
        drivers = searcher.search("IsInstalled=0 and Type='Driver'")
        assert [u.is_hidden for u in drivers.updates] == [True]


def test_invalid_criteria_fail_before_any_network_traffic(tmp_path: Path) -> None:
    with pytest.raises(TidingsError):
        UpdateSession(tmp_path / "not-enrolled")
    with pytest.raises(CriteriaError, match="position 12"):
        from tidings.scan.criteria import parse_criteria

        parse_criteria("IsInstalled=2")


def test_a_search_never_leaves_the_garbage_collector_off(
    data_dir: Path, published: list[PublishResult], tmp_path: Path, clock: FixedClock
) -> None:
    """Searches pause the cyclic collector; a failed one must not leave it paused for good."""
    with running_server(data_dir, ServiceConfig(port=0)) as endpoints:
        state = enroll_device(data_dir, endpoints, tmp_path / "dev", clock, "kiosk")
        with UpdateSession(state) as session:
            session.create_searcher().search()
        assert gc.isenabled()
    with UpdateSession(state) as session:
        with pytest.raises(TransportError):  # the service is gone
            session.create_searcher().search()
        assert gc.isenabled()
        gc.disable()
        try:  # and a host that keeps it off itself finds it still off
            with pytest.raises(TransportError):
                session.create_searcher().search()
            assert not gc.isenabled()
        finally:
            gc.enable()
