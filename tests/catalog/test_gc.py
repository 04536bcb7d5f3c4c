"""Garbage collection removes only what no snapshot of the keep window reaches.

Threats: a device mid-scan (it loaded an older snapshot) losing what that snapshot names; gc
removing what the current catalog needs; gc racing a publish; a reused version number after gc;
leftovers of killed publishes kept forever.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from atomic_helpers import (
    PAUSED_FILE,
    ChildPlan,
    UpdateSpec,
    create_catalog,
    kill_9,
    start_child,
    verify_catalog,
    wait_until,
    write_manifest,
)
from typer.testing import CliRunner

from tidings.catalog.entries import payload_target
from tidings.catalog.gc import (
    GcPolicy,
    VersionedFile,
    collect,
    manifest_targets,
    parse_versioned,
    removable_metadata,
    retained_snapshots,
    version_ranges,
)
from tidings.catalog.index import parse_key_text
from tidings.catalog.publisher import Publisher
from tidings.cli.main import registered_app
from tidings.clock import FixedClock
from tidings.manifest import load_manifest, manifest_from_dict
from tufclient import file_updater, indexed_manifests

cli = registered_app()

DAY = timedelta(days=1)
T0 = datetime(2026, 11, 1, tzinfo=UTC)


# --------------------------------------------------------------------------- pure decisions


def test_a_snapshot_current_at_any_moment_of_the_window_is_retained() -> None:
    written = {1: T0, 2: T0 + DAY, 3: T0 + 5 * DAY, 4: T0 + 6 * DAY, 9: T0 + 9 * DAY}
    cutoff = T0 + 3 * DAY
    # 2 was current until 3 was written (day 5, in the window); 1 was replaced on day 1.
    assert retained_snapshots(written, 4, cutoff) == {2, 3, 4}
    # Snapshot 9 was never committed (a killed publish): it retains nothing.
    assert retained_snapshots(written, 4, T0 + 10 * DAY) == {4}


def test_metadata_above_the_committed_version_is_kept_so_its_number_is_never_reused() -> None:
    files = [
        VersionedFile("3.apps.0a.json", "apps.0a", 3),
        VersionedFile("3.apps.0a.json.gz", "apps.0a", 3),
        VersionedFile("5.apps.0a.json", "apps.0a", 5),  # retained snapshot reaches it
        VersionedFile("6.apps.0a.json", "apps.0a", 6),  # current
        VersionedFile("7.apps.0a.json", "apps.0a", 7),  # left by a killed publish
        VersionedFile("1.vendor.x.json", "vendor.x", 1),  # a role no commit created yet
        VersionedFile("1.root.json", "root", 1),
    ]
    reachable = {("apps.0a", 5), ("apps.0a", 6)}
    committed = {"apps.0a": 6, "root": 4}
    names = [f.name for f in removable_metadata(files, reachable, committed)]
    assert names == ["3.apps.0a.json", "3.apps.0a.json.gz"]


def test_kept_versions_are_shown_as_runs() -> None:
    assert version_ranges([4, 1, 2, 3]) == "1-4"
    assert version_ranges([2, 5, 6, 7, 9]) == "2, 5-7, 9"


def test_an_index_document_reaches_its_payloads_piece_maps_and_manifests() -> None:
    manifest = {
        "id": "u1",
        "payloads": [{"name": "a.bin", "sha256": "a" * 64, "piece_map_sha256": "b" * 64}],
    }
    doc = {"updates": [{"manifest": manifest, "payload_dir": "apps/0a"}]}
    found = list(manifest_targets(doc))
    assert (f"apps/0a/{'a' * 64}.u1.payload.a.bin", "a" * 64) in found
    assert (f"apps/0a/{'b' * 64}.u1.pieces.a.bin", "b" * 64) in found
    assert len([sha for path, sha in found if path == ""]) == 1  # the manifest document


# --------------------------------------------------------------------------- real catalogs


def committed_versions(data_dir: Path) -> dict[str, int]:
    """Role -> version in the committed snapshot (and ``snapshot`` -> its own version)."""
    metadata = data_dir / "repo" / "metadata"
    timestamp = json.loads((metadata / "timestamp.json").read_bytes())
    version = timestamp["signed"]["meta"]["snapshot.json"]["version"]
    snapshot = json.loads((metadata / f"{version}.snapshot.json").read_bytes())
    meta = snapshot["signed"]["meta"]
    return {n.removesuffix(".json"): m["version"] for n, m in meta.items()} | {"snapshot": version}


def age(path: Path, moment: datetime) -> None:
    """Set ``path``'s mtime: when gc believes it was written."""
    stamp = moment.timestamp()
    os.utime(path, (stamp, stamp))


def age_everything(data_dir: Path, moment: datetime) -> None:
    for top in ("repo", "content"):
        for path in (data_dir / top).rglob("*"):
            if path.is_file():
                age(path, moment)


def current_snapshot(data_dir: Path) -> int:
    metadata = data_dir / "repo" / "metadata"
    return max(
        int(p.name.split(".")[0]) for p in metadata.glob("*.snapshot.json") if p.name[0].isdigit()
    )


def publish(data_dir: Path, spec: UpdateSpec, where: Path, *, payload: bytes | None = None) -> None:
    manifest = write_manifest(where, spec)
    if payload is not None:
        payload_dir = where / "payloads" / f"{spec.update_id}-r{spec.revision}"
        (payload_dir / spec.payload_name).write_bytes(payload)
    Publisher(data_dir).publish(load_manifest(manifest))


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return create_catalog(tmp_path / "data")


def test_a_device_mid_scan_on_an_older_snapshot_still_fetches_what_it_names_after_gc(
    tmp_path: Path, catalog: Path
) -> None:
    first = UpdateSpec("app", payload_name="first.bin")
    publish(catalog, first, tmp_path / "m")
    # The device loads timestamp, snapshot and targets now, and goes on scanning later.
    device = file_updater(catalog, tmp_path / "device")
    device.refresh()
    old_snapshot = current_snapshot(catalog)
    age_everything(catalog, T0)  # all that was written on day 0

    publish(catalog, first.next_revision(payload_name="second.bin"), tmp_path / "m")
    for path in (catalog / "repo" / "metadata").glob(f"{old_snapshot + 1}.snapshot.json*"):
        age(path, T0 + 5 * DAY)  # snapshot 1 stayed current until day 5
    report = collect(catalog, clock=FixedClock(T0 + 10 * DAY), policy=GcPolicy(keep=7 * DAY))

    assert old_snapshot in report.retained_snapshots
    # It goes on: the bin its key needs, that bin's documents, the payloads they name, all
    # as the older snapshot lists them.
    key = parse_key_text("apps:contoso-editor")
    bin_ = Publisher(catalog).layout.family(key.family).bin_for_key(key.key)
    doc = indexed_manifests(device, bin_, "apps:contoso-editor")[first.update_id]
    assert doc["revision"] == 1
    for payload in manifest_from_dict(doc, source=first.update_id).payloads:
        target = payload_target(bin_.directory, first.update_id, payload)
        device.download_target(target, str(tmp_path / "got"))

    # Once that snapshot leaves the window, what only it reached goes; the catalog stays whole.
    later = collect(catalog, clock=FixedClock(T0 + 20 * DAY), policy=GcPolicy(keep=7 * DAY))
    assert later.retained_snapshots == (current_snapshot(catalog),)
    assert later.files["metadata"] > 0 and later.files["targets"] > 0
    assert later.files["content"] > 0 and later.freed_bytes > 0
    assert not list((catalog / "repo" / "targets").rglob("*.first.bin"))
    assert verify_catalog(catalog, tmp_path / "scratch").updates == {first.update_id: 2}


def test_gc_keeps_everything_the_current_catalog_reaches(tmp_path: Path, catalog: Path) -> None:
    for n in range(3):
        publish(catalog, UpdateSpec(("os", "app", "driver")[n], spread=True), tmp_path / "m")
    before = verify_catalog(catalog, tmp_path / "scratch")
    age_everything(catalog, T0)
    report = collect(catalog, clock=FixedClock(T0 + 30 * DAY), policy=GcPolicy(keep=0 * DAY))
    assert report.files["metadata"] > 0  # older versions did go
    assert verify_catalog(catalog, tmp_path / "scratch") == before
    again = collect(catalog, clock=FixedClock(T0 + 30 * DAY), policy=GcPolicy(keep=0 * DAY))
    assert sum(again.files.values()) == 0


def test_dry_run_removes_nothing_and_reports_the_same(tmp_path: Path, catalog: Path) -> None:
    spec = UpdateSpec("app")
    publish(catalog, spec, tmp_path / "m")
    publish(catalog, spec.next_revision(), tmp_path / "m")
    age_everything(catalog, T0)
    files = sorted(p for p in catalog.rglob("*") if p.is_file())
    clock, policy = FixedClock(T0 + 30 * DAY), GcPolicy(keep=7 * DAY)
    dry = collect(catalog, clock=clock, policy=policy, dry_run=True)
    assert sorted(p for p in catalog.rglob("*") if p.is_file()) == files
    real = collect(catalog, clock=clock, policy=policy)
    assert (dry.files, dry.bytes, dry.freed_bytes) == (real.files, real.bytes, real.freed_bytes)
    assert all(not p.exists() for p in real.paths)


def test_leftovers_of_a_killed_publish_go_but_its_version_numbers_stay_taken(
    tmp_path: Path, catalog: Path
) -> None:
    spec = UpdateSpec("os", spread=True)
    plan = ChildPlan(
        str(catalog),
        [{"publish": str(write_manifest(tmp_path / "m", spec))}],
        pause_at="renamed:metadata",
    )
    child = start_child(plan, tmp_path / "child")
    try:
        wait_until(
            lambda: (child.signal_dir / PAUSED_FILE).exists() or child.process.poll() is not None,
            timeout_s=60,
            what="the child to pause",
        )
        # It holds the publish lock: gc must wait for it, not remove its staged files.
        done = threading.Event()
        reports = []

        def run_gc() -> None:
            reports.append(collect(catalog, clock=FixedClock(T0 + 30 * DAY)))
            done.set()

        worker = threading.Thread(target=run_gc)
        worker.start()
        assert not done.wait(0.5), "gc ran while a publish held the lock"
    finally:
        kill_9(child)
    worker.join(timeout=60)
    assert done.is_set()

    metadata = catalog / "repo" / "metadata"
    assert reports[0].files["temporary"] > 0
    assert not [p for p in catalog.joinpath("repo").rglob(".*") if p.is_file()]
    committed = committed_versions(catalog)
    orphans = {
        p.name: p.read_bytes()
        for p in metadata.glob("*.json")
        if (f := parse_versioned(p.name)) and f.role != "root" and f.version > committed[f.role]
    }
    assert orphans  # renamed into place by the dead publish: kept, so never renumbered

    # A fresh content-store temp file may be a running publish's copy: kept; an old one goes.
    tmp = catalog / "content" / "tmp"
    tmp.mkdir(exist_ok=True)
    (tmp / "old.part").write_bytes(b"x")
    age(tmp / "old.part", T0)
    (tmp / "live.part").write_bytes(b"y")
    collect(catalog, clock=FixedClock(datetime.now(UTC)))
    assert sorted(p.name for p in tmp.iterdir()) == ["live.part"]

    # The next publish numbers past what the dead one renamed into place, then removes it.
    publish(catalog, spec, tmp_path / "m")
    assert not [name for name in orphans if (metadata / name).exists()]
    committed = committed_versions(catalog)
    for name in orphans:
        orphan = parse_versioned(name)
        assert orphan is not None and committed[orphan.role] > orphan.version
    assert verify_catalog(catalog, tmp_path / "scratch").updates == {spec.update_id: 1}


def test_gc_command_prints_counts_and_bytes_in_plain_text(tmp_path: Path, catalog: Path) -> None:
    spec = UpdateSpec("app")
    publish(catalog, spec, tmp_path / "m")
    publish(catalog, spec.next_revision(), tmp_path / "m")
    age_everything(catalog, datetime.now(UTC) - 30 * DAY)
    runner = CliRunner()
    dry = runner.invoke(cli, ["server", "gc", str(catalog), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would remove" in dry.output and "bytes" in dry.output
    done = runner.invoke(cli, ["server", "gc", str(catalog), "--keep-days", "7"])
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert any(line.startswith("removed ") and "metadata file(s)" in line for line in lines)
    total = [line for line in lines if "in all" in line]
    assert total and not total[0].startswith("removed 0 ")
    missing = runner.invoke(cli, ["server", "gc", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1
    assert f"{tmp_path / 'nowhere'} does not exist" in missing.output


def test_gc_keeps_the_snapshots_it_retains_and_a_second_run_removes_nothing(
    tmp_path: Path, catalog: Path
) -> None:
    first = UpdateSpec("app", payload_name="first.bin")
    publish(catalog, first, tmp_path / "m")
    device = file_updater(catalog, tmp_path / "device")
    device.refresh()  # the device holds snapshot 2 and scans on while the catalog moves
    publish(catalog, first.next_revision(payload_name="second.bin"), tmp_path / "m")
    publish(catalog, UpdateSpec("os"), tmp_path / "m")
    metadata = catalog / "repo" / "metadata"
    clock, policy = FixedClock(datetime.now(UTC)), GcPolicy(keep=7 * DAY)

    runs = [collect(catalog, clock=clock, policy=policy) for _ in range(3)]

    assert [r.retained_snapshots for r in runs] == [(1, 2, 3, 4)] * 3
    for version in (1, 2, 3, 4):
        assert (metadata / f"{version}.snapshot.json").exists()
        assert (metadata / f"{version}.snapshot.json.gz").exists()
    assert [p for r in runs for p in r.paths] == []  # everything is within the window
    key = parse_key_text("apps:contoso-editor")
    bin_ = Publisher(catalog).layout.family(key.family).bin_for_key(key.key)
    doc = indexed_manifests(device, bin_, "apps:contoso-editor")[first.update_id]
    assert doc["revision"] == 1  # as snapshot 2 names it
    for payload in manifest_from_dict(doc, source=first.update_id).payloads:
        target = payload_target(bin_.directory, first.update_id, payload)
        device.download_target(target, str(tmp_path / "got"))


def test_repeated_gc_with_old_snapshots_keeps_the_same_set(tmp_path: Path, catalog: Path) -> None:
    spec = UpdateSpec("app")
    publish(catalog, spec, tmp_path / "m")
    publish(catalog, spec.next_revision(), tmp_path / "m")
    age_everything(catalog, T0)  # snapshots 1-3 replaced long ago
    publish(catalog, spec.next_revision().next_revision(), tmp_path / "m")
    clock, policy = FixedClock(datetime.now(UTC)), GcPolicy(keep=7 * DAY)
    first = collect(catalog, clock=clock, policy=policy)
    assert first.retained_snapshots == (3, 4)  # 3 was current until 4, written now
    assert first.files["metadata"] > 0
    again = [collect(catalog, clock=clock, policy=policy) for _ in range(2)]
    assert [r.retained_snapshots for r in again] == [(3, 4), (3, 4)]
    assert [p for r in again for p in r.paths] == []
    assert verify_catalog(catalog, tmp_path / "scratch").updates == {spec.update_id: 3}


def test_gc_command_says_which_snapshots_it_keeps(tmp_path: Path, catalog: Path) -> None:
    spec = UpdateSpec("app")
    publish(catalog, spec, tmp_path / "m")
    publish(catalog, spec.next_revision(), tmp_path / "m")
    runner = CliRunner()
    kept = "3 snapshots (versions 1-3): those current within the last 7 days"
    dry = runner.invoke(cli, ["server", "gc", str(catalog), "--dry-run"])
    assert dry.output.splitlines()[0] == f"would keep {kept}"
    for _ in range(2):
        done = runner.invoke(cli, ["server", "gc", str(catalog), "--keep-days", "7"])
        lines = done.output.splitlines()
        assert lines[0] == f"keeping {kept}"
        assert lines[-1] == "removed 0 file(s) in all, freeing 0 bytes"
    help_text = runner.invoke(cli, ["server", "gc", "--help"], env={"COLUMNS": "300"}).output
    # One paragraph: a wide terminal shows it on one line, with no break of its own.
    assert "temporary files that no snapshot current within the last --keep-days" in help_text
