"""Publishing is atomic: a reader at any moment sees the old complete catalog or the new one,
never a mix; kill -9 in the middle of a publish leaves the old catalog valid; concurrent
publishers are serialized; the lookup table heals after a crash between commit and its update.

Every check of "a valid catalog" is a cold python-tuf client walking the whole catalog
(``atomic_helpers.verify_catalog``). Publishers that race or die run as real child processes
(``atomic_helpers`` is also the child's script) so the concurrency and the SIGKILL are real.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from atomic_helpers import (
    CHILD_TIMEOUT_S,
    PAUSE_POINTS,
    PAUSED_FILE,
    SIGKILLED,
    CatalogView,
    Child,
    ChildPlan,
    UpdateSpec,
    assert_lock_free,
    create_catalog,
    finish,
    kill_9,
    mixed_specs,
    start_child,
    verify_catalog,
    wait_until,
    write_manifest,
)

from tidings.catalog.publisher import Publisher
from tidings.catalog.samples import write_samples
from tidings.errors import CatalogError
from tidings.manifest import load_manifest

VERSIONED_FILE = re.compile(r"\d+\..+\.json")
STAGED_FILE = re.compile(r"\.\d+\..+\.json\.staged")


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, CatalogView]:
    """A catalog holding the five samples, and what a cold client sees of it."""
    data_dir = create_catalog(tmp_path / "data")
    publisher = Publisher(data_dir)
    publisher.publish_many([load_manifest(p) for p in write_samples(tmp_path / "samples")])
    return data_dir, verify_catalog(data_dir, tmp_path / "scratch")


@pytest.fixture
def children() -> Iterator[list[Child]]:
    """Children started by a test; any still running at the end are killed and reaped."""
    started: list[Child] = []
    yield started
    for child in started:
        kill_9(child)


def test_reader_during_publish_storm_never_sees_a_mixed_catalog(
    tmp_path: Path, seeded: tuple[Path, CatalogView], children: list[Child]
) -> None:
    data_dir, initial = seeded
    manifests = tmp_path / "manifests"
    new = mixed_specs(30)
    new[12] = UpdateSpec("driver", pci_vendor="10DE")  # a vendor role appears mid-storm
    os_update, app_update = new[0], new[1]
    assert (os_update.kind, app_update.kind) == ("os", "app")
    os_r2 = os_update.next_revision(architectures=("x86",), payload_name="moved.bin")
    later = {
        8: [("publish", os_r2)],  # moves to other bins, renames its payload
        14: [("revoke", new[3])],
        20: [("publish", app_update.next_revision())],
        24: [("publish", os_r2.next_revision(architectures=("x64", "arm64")))],
    }
    ops: list[dict[str, str]] = []
    states = [dict(initial.updates)]  # the catalog after each commit, in order
    for i, spec in enumerate(new):
        for action, item in [("publish", spec), *later.get(i, [])]:
            state = dict(states[-1])
            if action == "publish":
                ops.append({"publish": str(write_manifest(manifests, item))})
                state[item.update_id] = item.revision
            else:
                ops.append({"revoke": item.update_id})
                del state[item.update_id]
            states.append(state)

    plan = ChildPlan(str(data_dir), ops, pace_s=0.05)
    children.append(child := start_child(plan, tmp_path / "storm"))
    views: list[CatalogView] = []
    while child.process.poll() is None and len(views) < 200:
        views.append(verify_catalog(data_dir, tmp_path / "scratch"))
    assert finish(child, timeout_s=CHILD_TIMEOUT_S) == 0, child.output()
    views.append(verify_catalog(data_dir, tmp_path / "scratch"))

    for earlier, view in itertools.pairwise(views):
        assert earlier.timestamp_version <= view.timestamp_version  # readers never go back
    for view in views:
        commits = view.timestamp_version - initial.timestamp_version
        assert 0 <= commits < len(states)
        assert view.snapshot_version == initial.snapshot_version + commits
        assert view.updates == states[commits], f"after {commits} commits"
    assert views[-1].updates == states[-1]
    assert "vendor.pci-10de" in views[-1].roles
    # The reader really ran during the storm, not only before and after it.
    seen = [v.timestamp_version - initial.timestamp_version for v in views]
    assert len(set(seen)) >= 4, f"the reader saw only the states after commits {seen}"


def test_kill_9_during_publish_leaves_the_old_catalog_valid(
    tmp_path: Path, seeded: tuple[Path, CatalogView], children: list[Child]
) -> None:
    data_dir, before = seeded
    metadata = data_dir / "repo" / "metadata"
    rng = random.Random(20261129)
    expected = dict(before.updates)
    first_write_s = 1.0  # measured by the "poll" round, then used to spread the random kills
    rounds = [
        "poll",
        "versioned:1",
        "versioned:10",
        "snapshot",
        "timestamp-rename",
        "random",
        "random",
    ]
    batch: list[UpdateSpec] = []
    last_ops: list[dict[str, str]] = []
    for number, moment in enumerate(rounds):
        batch = mixed_specs(40, first_kind=number)  # spread over most of the 29 bins
        ops = [{"publish": str(write_manifest(tmp_path / f"batch{number}", s))} for s in batch]
        pause_at = moment if moment in PAUSE_POINTS else None
        plan = ChildPlan(str(data_dir), ops, batch=True, pause_at=pause_at)
        files_before = _inodes(metadata)
        started = time.monotonic()
        children.append(child := start_child(plan, tmp_path / f"kill{number}"))
        if moment == "poll":  # uninstrumented: kill as soon as the commit's first file shows
            _wait_first_write(child, metadata, files_before)
            first_write_s = time.monotonic() - started
        elif moment == "random":  # uninstrumented: anywhere from start-up to the commit
            time.sleep(rng.uniform(0, 1.2 * first_write_s))
        else:
            _wait_paused(child, moment)
        status = kill_9(child)
        label = f"round {number} ({moment}, exit status {status}):\n{child.output()}"
        assert status in (SIGKILLED, 0), label
        assert_lock_free(data_dir)  # the kernel dropped the dead writer's flock

        view = verify_catalog(data_dir, tmp_path / "scratch")
        if pause_at is None and view.timestamp_version != before.timestamp_version:
            # The kill came after the commit point: the complete new catalog, nothing between.
            assert view.timestamp_version == before.timestamp_version + 1, label
            expected |= {s.update_id: 1 for s in batch}
        elif pause_at is not None:
            assert status == SIGKILLED, label
            # It died mid-commit: its new versioned files are on disk, referenced by nothing,
            # under hidden staged names until the commit renames them just before the timestamp.
            renamed = pause_at == "timestamp-rename"
            assert _versioned_written(metadata, files_before) == renamed, label
            assert renamed or _staged_written(metadata, files_before), label
            assert view.timestamp_version == before.timestamp_version, label
        assert view.updates == expected, label
        before = view
        last_ops = ops

    # The next publisher takes the lock, numbers past any orphan, and sees the right state:
    # retry the last batch and move one sample update to a new revision, in one commit.
    publisher = Publisher(data_dir)
    sample_os = tmp_path / "samples" / "os-cumulative.toml"
    revised = sample_os.with_name("os-r2.toml")
    revised.write_text(sample_os.read_text().replace("revision = 1", "revision = 2"))
    retry = [load_manifest(Path(op["publish"])) for op in last_ops]
    results = publisher.publish_many([*retry, load_manifest(revised)])
    expected |= {r.update_id: r.revision for r in results}
    after = verify_catalog(data_dir, tmp_path / "scratch")
    assert after.timestamp_version == before.timestamp_version + 1
    assert after.updates == expected
    assert {u.id: u.revision for u in publisher.updates() if u.state == "published"} == expected


def test_concurrent_publishers_are_serialized(
    tmp_path: Path, seeded: tuple[Path, CatalogView], children: list[Child]
) -> None:
    data_dir, before = seeded
    start = tmp_path / "go"
    specs_per_child = [
        # Two children race to file the first driver of a new vendor (a new role and key).
        [UpdateSpec("driver", pci_vendor="10DE"), *mixed_specs(3, first_kind=0)],
        [UpdateSpec("driver", pci_vendor="10DE"), *mixed_specs(3, first_kind=1)],
        mixed_specs(4, first_kind=2),
        mixed_specs(4, first_kind=3),
    ]
    for number, specs in enumerate(specs_per_child):
        ops = [{"publish": str(write_manifest(tmp_path / "manifests", s))} for s in specs]
        plan = ChildPlan(str(data_dir), ops, start_file=str(start))
        children.append(start_child(plan, tmp_path / f"publisher{number}"))
    start.touch()  # all of them publish from the same moment on
    for child in children:
        assert finish(child, timeout_s=CHILD_TIMEOUT_S) == 0, child.output()

    commits = sum(len(specs) for specs in specs_per_child)
    everything = dict(before.updates) | {s.update_id: 1 for ss in specs_per_child for s in ss}
    after = verify_catalog(data_dir, tmp_path / "scratch")
    assert after.updates == everything  # no publish was lost to another's commit
    assert after.timestamp_version == before.timestamp_version + commits
    assert after.snapshot_version == before.snapshot_version + commits
    assert "vendor.pci-10de" in after.roles
    publisher = Publisher(data_dir)
    assert {u.id: u.revision for u in publisher.updates()} == everything


@pytest.mark.parametrize(
    "crash",
    [
        "kill-9-before-lookup-update",  # a real SIGKILL at that point
        "lookup-rewound-to-before-commit",  # catalog.db as that crash leaves it, by SQL
        "lookup-version-rewound",  # only the recorded version is behind: a rebuild must agree
    ],
)
def test_new_revision_after_a_crash_between_commit_and_lookup_update_replaces_the_old(
    crash: str, tmp_path: Path, seeded: tuple[Path, CatalogView], children: list[Child]
) -> None:
    data_dir, _ = seeded
    manifests = tmp_path / "manifests"
    first = UpdateSpec("os", architectures=("x64", "arm64"), payload_name="first.bin")
    if crash == "kill-9-before-lookup-update":
        # Really die between the commit (timestamp.json replaced) and catalog.db's update.
        ops = [{"publish": str(write_manifest(manifests, first))}]
        plan = ChildPlan(str(data_dir), ops, pause_at="lookup")
        _killed_at(start_child(plan, tmp_path / "crash"), children)
    else:
        Publisher(data_dir).publish(load_manifest(write_manifest(manifests, first)))
        forget = first.update_id if crash == "lookup-rewound-to-before-commit" else None
        _rewind_lookup(data_dir, forget=forget)
    committed = verify_catalog(data_dir, tmp_path / "scratch")
    assert committed.updates[first.update_id] == 1
    old_bins = committed.bins[first.update_id]

    second = first.next_revision(architectures=("x86",), payload_name="second.bin")
    publisher = Publisher(data_dir)
    result = publisher.publish(load_manifest(write_manifest(manifests, second)))
    assert result.previous_revision == 1  # found through the rebuilt lookup table

    after = verify_catalog(data_dir, tmp_path / "scratch")  # no stale entry, no old payload
    assert after.updates[first.update_id] == 2
    assert after.bins[first.update_id] == set(result.bins)
    assert after.homes[first.update_id] == result.bins[0]
    assert not old_bins & after.bins[first.update_id]  # x86 files elsewhere: a real move
    located = {u.id: u for u in publisher.updates()}[first.update_id]
    assert (located.revision, located.bins, located.state) == (2, result.bins, "published")


def test_kill_9_after_a_revoke_commit_keeps_the_update_revoked(
    tmp_path: Path, seeded: tuple[Path, CatalogView], children: list[Child]
) -> None:
    data_dir, _ = seeded
    spec = UpdateSpec("app")
    manifest = write_manifest(tmp_path / "manifests", spec)
    Publisher(data_dir).publish(load_manifest(manifest))
    plan = ChildPlan(str(data_dir), [{"revoke": spec.update_id}], pause_at="lookup")
    _killed_at(start_child(plan, tmp_path / "crash"), children)
    assert spec.update_id not in verify_catalog(data_dir, tmp_path / "scratch").updates

    # As without the crash: the update is known as revoked, and its revision cannot come back.
    publisher = Publisher(data_dir)
    states = {u.id: u.state for u in publisher.updates()}
    assert states.get(spec.update_id) == "revoked"
    with pytest.raises(CatalogError, match="revision 2 or higher"):
        publisher.publish(load_manifest(manifest))


def _killed_at(child: Child, children: list[Child]) -> None:
    children.append(child)
    _wait_paused(child, "its pause point")
    assert kill_9(child) == SIGKILLED, child.output()


def _wait_first_write(child: Child, metadata: Path, files_before: dict[str, int]) -> None:
    wait_until(
        lambda: (
            _staged_written(metadata, files_before)
            or _versioned_written(metadata, files_before)
            or _exited(child)
        ),
        timeout_s=CHILD_TIMEOUT_S,
        what="the commit's first versioned file",
    )


def _wait_paused(child: Child, point: str) -> None:
    wait_until(
        lambda: (child.signal_dir / PAUSED_FILE).exists() or _exited(child),
        timeout_s=CHILD_TIMEOUT_S,
        what=f"the child to pause at {point}",
    )


def _exited(child: Child) -> bool:
    return child.process.poll() is not None


def _rewind_lookup(data_dir: Path, *, forget: str | None) -> None:
    """Put catalog.db's recorded snapshot version one commit back (and drop ``forget``'s row):
    what a crash right after the commit, before the lookup update, leaves behind."""
    db = sqlite3.connect(data_dir / "catalog.db")
    try:
        with db:
            db.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) - 1 WHERE key = 'snapshot_version'"
            )
            db.execute("DELETE FROM updates WHERE id = ?", (forget,))
    finally:
        db.close()


def _inodes(directory: Path) -> dict[str, int]:
    with os.scandir(directory) as entries:
        return {e.name: e.inode() for e in entries}


def _staged_written(directory: Path, before: dict[str, int]) -> bool:
    """Whether a versioned metadata file was (re)written under its staged name since ``before``."""
    return any(
        STAGED_FILE.fullmatch(name) and before.get(name) != inode
        for name, inode in _inodes(directory).items()
    )


def _versioned_written(directory: Path, before: dict[str, int]) -> bool:
    """Whether a versioned metadata file was (re)written since ``before`` was taken."""
    return any(
        VERSIONED_FILE.fullmatch(name) and before.get(name) != inode
        for name, inode in _inodes(directory).items()
    )
