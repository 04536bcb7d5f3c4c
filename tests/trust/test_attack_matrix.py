"""The attack matrix on the device's trust path: metadata and payload attacks.

Every scenario: the device first syncs the good catalog (and trusts it), then meets the attack,
which must fail with ``IntegrityError`` caused by the python-tuf check that stops that attack.
Afterwards the last good metadata is still what the device trusts: its files are unchanged
(or moved only to the honest newer files the attack had to present first, which python-tuf
rightly keeps) and a sync against the honest repository succeeds with the same results.

Scenarios run against the in-memory simulator; the ones marked ``https`` also against the real
service over real TLS. Transport attacks (slow retrieval, wrong pin) are in
``test_attack_transport.py``; attacks by key holders on delegations and names, and key
compromise, in ``test_attack_delegation.py``.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from attack_helpers import (
    Device,
    fresh_sync,
    mirror_of,
    moved,
    new_device,
    rejected,
    root_keys_replaced_by,
    sync,
)
from repo_simulator import (
    CHUNK_BYTES,
    MemoryFetcher,
    RepositorySimulator,
    target_url_path,
    targets_of,
)
from tuf.api import exceptions as tuf_exceptions
from tuf.api.metadata import Root, Snapshot, Timestamp

from tidings.catalog.create import InitOptions, create_data_dir
from tidings.catalog.entries import payload_target
from tidings.catalog.keyindex import key_digest, key_documents
from tidings.catalog.layout import CatalogLayout, bin_of_role
from tidings.catalog.publisher import Publisher
from tidings.catalog.rotation import rotate_keys
from tidings.catalog.samples import write_samples
from tidings.clock import FixedClock
from tidings.errors import IntegrityError, TransportError
from tidings.manifest import load_manifest
from tidings.trust.catalog_reader import (
    MAX_ROOT_BYTES,
    MAX_TIMESTAMP_BYTES,
    BinCache,
    translated_errors,
)

OS_UPDATE = "3f0a1c52-6a77-4c4e-9a53-2f1e0b3c4d5e"  # filed in os.0f (x64) and os.06 (arm64)
DRIVER_UPDATE = "5b6c7d8e-9fa0-4b1c-8d2e-3f4a5b6c7d8e"  # filed in vendor.pci-8086.04 and .02
OS_KEY = "os:tidings-os-11/x64"
OS_BIN = "os.0f"
VENDOR_BIN = "vendor.pci-8086.04"
SAMPLE_OF = {OS_UPDATE: "os-cumulative.toml", DRIVER_UPDATE: "driver-display.toml"}


def simulator(request: pytest.FixtureRequest, kind: str) -> RepositorySimulator:
    """The simulator a scenario served by ``kind`` needs (HTTPS serves a copy from disk)."""
    sim: RepositorySimulator = request.getfixturevalue("disk_sim" if kind == "https" else "sim")
    return sim


def bump(sim: RepositorySimulator, role: str) -> None:
    """The honest service publishes a new version of ``role`` (same content)."""
    sim.commit({role: sim.load(role)})


def publish_revision(data_dir: Path, clock: FixedClock, update_id: str, revision: int) -> None:
    """The real publisher publishes ``revision`` of a sample update (its bins get versions)."""
    paths = {p.name: p for p in write_samples(data_dir.parent / f"publish-{revision}")}
    manifest = paths[SAMPLE_OF[update_id]]
    manifest.write_text(manifest.read_text().replace("revision = 1", f"revision = {revision}"))
    Publisher(data_dir, clock=clock).publish(load_manifest(manifest))


# -- 3. length and hashes on every MetaFile ------------------------------------------------


@pytest.mark.parametrize("state", ["published", "re-signed, republished and rotated"])
def test_timestamp_and_snapshot_pin_the_length_and_hash_of_every_metadata_file(
    disk_sim: RepositorySimulator,
    publisher: Publisher,
    data_dir: Path,
    clock: FixedClock,
    state: str,
) -> None:
    if state != "published":  # every writer of the snapshot and timestamp
        clock.advance(7 * 86_400)  # the service's schedule, a week later
        assert {"snapshot", "timestamp"} <= set(publisher.refresh_online())
        publish_revision(data_dir, clock, OS_UPDATE, 2)
        rotate_keys(publisher, "os")
    sim = disk_sim
    sim.reload()
    timestamp: Timestamp = sim.load("timestamp").signed
    snap_bytes = sim.bytes_at(sim.metadata_path("snapshot"))
    # docs/architecture.md, "Trust model": without them the client would fall back to its generous
    # default caps.
    assert timestamp.snapshot_meta.length == len(snap_bytes)
    assert timestamp.snapshot_meta.hashes == {"sha256": hashlib.sha256(snap_bytes).hexdigest()}
    snapshot: Snapshot = sim.snapshot()
    assert len(snapshot.meta) > 100
    for name, meta in snapshot.meta.items():
        data = sim.bytes_at(f"metadata/{meta.version}.{name}")
        assert meta.length == len(data), name
        assert meta.hashes == {"sha256": hashlib.sha256(data).hexdigest()}, name


# -- arbitrary payload ----------------------------------------------------------------------


TAMPERING = [
    ("memory", "one byte flipped"),
    ("memory", "truncated"),
    ("memory", "longer than signed"),
    ("memory", "endless"),
    ("https", "one byte flipped"),
]
"""How a mirror tampers with a file whose length and hash are signed (and who serves it)."""


def tampered(original: bytes, how: str) -> bytes:
    if how == "one byte flipped":
        return original[:1000] + bytes([original[1000] ^ 1]) + original[1001:]
    if how == "truncated":
        return original[:-1]
    assert how == "longer than signed"
    return original + b"\x00" * CHUNK_BYTES


@pytest.mark.parametrize(("kind", "how"), TAMPERING)
def test_arbitrary_payload_is_rejected_and_never_lands_in_the_download_dir(
    device: Device, request: pytest.FixtureRequest, kind: str, how: str
) -> None:
    sim = simulator(request, kind)
    with mirror_of(kind, sim) as mirror:
        good = sync(device, mirror)
        reader = device.last_reader
        assert reader is not None
        home = bin_of_role(OS_BIN, CatalogLayout())
        entry = next(e for e in reader.bin_entries(home, [OS_KEY])[0] if e.manifest.id == OS_UPDATE)
        payload = next(p for p in entry.manifest.payloads if p.name == "kb5031354-x64.bin")
        info = payload_target(entry.payload_dir, OS_UPDATE, payload)
        url_path = target_url_path(info.path, info.hashes["sha256"])
        honest, before = sim.save(), device.files()

        if how == "endless":
            sim.serve_endless(url_path)
        else:
            sim.replace(url_path, tampered(sim.bytes_at(url_path), how))
        mirror.publish()
        with pytest.raises(IntegrityError), translated_errors():
            reader.updater.download_target(info)
        fetcher = reader.updater._fetcher
        if isinstance(fetcher, MemoryFetcher):  # read no further than the signed length
            assert fetcher.bytes_served[f"{mirror.base_url}/{url_path}"] <= info.length + 4096
        assert device.files() == before  # nothing under the final name, nor anywhere else
        assert [p.name for p in device.download_dir.iterdir()] == ["index"]  # the scan's only

        sim.restore(honest)
        assert sync(device, mirror) == good
        reader = device.last_reader
        assert reader is not None
        with translated_errors():
            path = Path(reader.updater.download_target(info))
        assert path.parent == device.download_dir
        assert hashlib.sha256(path.read_bytes()).hexdigest() == info.hashes["sha256"]


def os_document_url(sim: RepositorySimulator) -> tuple[str, int]:
    """Where the served index document of the device's OS key is, and its signed length."""
    directory = bin_of_role(OS_BIN, CatalogLayout()).directory
    documents = key_documents(directory, targets_of(sim.load(OS_BIN)).targets)
    (target,) = documents[key_digest(OS_KEY)].values()  # one small document
    return target_url_path(target.path, target.hashes["sha256"]), target.length


@pytest.mark.parametrize(("kind", "how"), TAMPERING)
def test_tampered_index_document_is_rejected_and_none_of_it_is_used(
    device: Device, request: pytest.FixtureRequest, kind: str, how: str
) -> None:
    sim = simulator(request, kind)
    url_path, length = os_document_url(sim)
    honest = sim.save()
    if how == "endless":
        sim.serve_endless(url_path)
    else:
        sim.replace(url_path, tampered(sim.bytes_at(url_path), how))
    if f"{url_path}.gz" in honest:  # the mirror's compressed copy is the attacker's too
        sim.drop(f"{url_path}.gz")
    with mirror_of(kind, sim) as mirror:
        with pytest.raises(IntegrityError):
            sync(device, mirror)
        fetcher = device.last_reader.updater._fetcher if device.last_reader else None
        if isinstance(fetcher, MemoryFetcher):  # read no further than the signed length
            assert fetcher.bytes_served[f"{mirror.base_url}/{url_path}"] <= length + 4096
        kept = (device.download_dir / "index").glob(f"{key_digest(OS_KEY)}.*")
        assert list(kept) == []  # python-tuf writes a document only once it verified

        sim.restore(honest)
        mirror.publish()
        assert OS_UPDATE in {entry[0] for entry in sync(device, mirror)[0]}


# -- rollback of each role ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "https"])
def test_rollback_of_timestamp_is_rejected_and_last_good_stays_trusted(
    device: Device, request: pytest.FixtureRequest, kind: str
) -> None:
    sim = simulator(request, kind)
    first = sim.save()
    with mirror_of(kind, sim) as mirror:
        sync(device, mirror)
        sim.commit({})  # the service re-signs: timestamp and snapshot move on
        good = sync(device, mirror)  # the device has seen the newer timestamp
        honest, before = sim.save(), device.files()

        sim.replay("metadata/timestamp.json", first)
        rejected(device, mirror, tuf_exceptions.BadVersionNumberError)
        assert device.files() == before

        sim.restore(honest)
        assert sync(device, mirror) == good


def test_rollback_of_snapshot_is_rejected_and_last_good_stays_trusted(
    device: Device, sim: RepositorySimulator
) -> None:
    old_snapshot_meta = sim.load("timestamp").signed.snapshot_meta
    with mirror_of("memory", sim) as mirror:
        sync(device, mirror)
        sim.commit({})
        good = sync(device, mirror)
        honest, before = sim.save(), device.files()

        # The timestamp key is online: an attacker holding it points a new timestamp at the
        # snapshot the device has already moved past (client workflow 5.4.3.2).
        sim.resign_timestamp(snapshot_meta=old_snapshot_meta)
        rejected(device, mirror, tuf_exceptions.BadVersionNumberError)
        assert device.files() == before

        sim.restore(honest)
        assert sync(device, mirror) == good


@pytest.mark.parametrize("role", ["targets", "os", "vendor.pci-8086", OS_BIN, VENDOR_BIN])
def test_rollback_of_a_targets_role_is_rejected_and_last_good_stays_trusted(
    device: Device,
    disk_sim: RepositorySimulator,
    data_dir: Path,
    clock: FixedClock,
    tmp_path: Path,
    role: str,
) -> None:
    sim = disk_sim
    update = OS_UPDATE if role == OS_BIN else DRIVER_UPDATE
    is_bin = role in (OS_BIN, VENDOR_BIN)

    def next_version(revision: int) -> None:
        if is_bin:  # bins change when the real publisher publishes a new revision
            publish_revision(data_dir, clock, update, revision)
            sim.reload()
        else:  # kind, vendor and top-level targets roles change rarely: re-sign them
            bump(sim, role)

    first, first_path = sim.save(), sim.metadata_path(role)
    with mirror_of("memory", sim) as mirror:
        sync(device, mirror)
        next_version(2)
        sync(device, mirror)  # the device now trusts the newer version of the role
        before = device.files()
        next_version(3)
        honest, new_path = sim.save(), sim.metadata_path(role)

        sim.replay(new_path, first, first_path)  # old, validly signed bytes where new ones go
        rejected(device, mirror, tuf_exceptions.LengthOrHashMismatchError)
        # Only the honest timestamp and snapshot naming the new version were accepted.
        assert device.files() == {**before, **moved(sim, "timestamp", "snapshot")}

        sim.restore(honest)
        result = sync(device, mirror)
        assert result == fresh_sync(sim, tmp_path)
        if is_bin:
            assert (update, 3) in {(entry[0], entry[1]) for entry in result[0]}


@pytest.mark.parametrize(
    ("replayed", "cause"),
    [
        # v1 is signed by the retired key only: the trusted v2's keys reject it first.
        ("1.root.json", tuf_exceptions.UnsignedMetadataError),
        # v2 is signed by old and new keys: it verifies, and its version number rejects it.
        ("2.root.json", tuf_exceptions.BadVersionNumberError),
    ],
)
def test_rollback_of_root_is_rejected_and_last_good_stays_trusted(
    device: Device,
    disk_sim: RepositorySimulator,
    publisher: Publisher,
    replayed: str,
    cause: type[Exception],
) -> None:
    sim = disk_sim
    with mirror_of("memory", sim) as mirror:
        sync(device, mirror)
        rotate_keys(publisher, "root")  # root v2, signed by the old and the new root keys
        sim.reload()
        good = sync(device, mirror)
        assert (device.metadata_dir / "root_history/2.root.json").exists()
        honest, before = sim.save(), device.files()

        # Every refresh asks for root v3: offer an older root in its place.
        sim.replay("metadata/3.root.json", honest, f"metadata/{replayed}")
        rejected(device, mirror, cause)
        assert device.files() == before

        sim.restore(honest)
        assert sync(device, mirror) == good


def test_rollback_by_stolen_online_keys_is_rejected_and_undone_by_rotating_them(
    device: Device,
    disk_sim: RepositorySimulator,
    data_dir: Path,
    publisher: Publisher,
    clock: FixedClock,
) -> None:
    sim = disk_sim
    first_meta = sim.snapshot().meta[f"{OS_BIN}.json"]
    with mirror_of("memory", sim) as mirror:
        sync(device, mirror)
        publish_revision(data_dir, clock, OS_UPDATE, 2)
        sim.reload()
        good = sync(device, mirror)
        before = device.files()

        # Both online keys stolen: a new snapshot naming the old bin, a timestamp naming it.
        sim.commit({}, edit_snapshot=lambda s: s.meta.update({f"{OS_BIN}.json": first_meta}))
        rejected(device, mirror, tuf_exceptions.BadVersionNumberError)
        # python-tuf keeps the validly signed timestamp (its version is the new rollback
        # floor); the snapshot and every targets role are still the last good ones.
        assert device.files() == {**before, **moved(sim, "timestamp")}

        # TUF's fast-forward recovery: rotate the online keys; the device then drops the
        # timestamp signed by the revoked key and follows the honest catalog again.
        rotate_keys(publisher, "timestamp")
        rotate_keys(publisher, "snapshot")
        sim.reload()
        assert sync(device, mirror) == good


# -- freeze --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "role", "agent"),
    [
        ("memory", "timestamp", "long-running"),
        ("memory", "snapshot", "long-running"),
        ("memory", OS_BIN, "long-running"),
        ("memory", OS_BIN, "restarted"),
        ("memory", "definitions.02", "long-running"),
        ("https", "timestamp", "long-running"),
    ],
)
def test_freeze_of_expired_metadata_is_rejected_and_last_good_stays_trusted(
    device: Device, request: pytest.FixtureRequest, kind: str, role: str, agent: str
) -> None:
    """``agent``: one process for every scan (``UpdateSession`` keeps its ``BinCache`` for
    the agent's life), or a process restarted between the good scan and the frozen one."""
    sim = simulator(request, kind)
    now = datetime.now(UTC).replace(microsecond=0)
    frozen_at = now + timedelta(hours=2)  # the device's clock, later

    def publish_expiring(expires: datetime) -> None:
        if role == "timestamp":
            sim.commit({}, timestamp_expires=expires)
        elif role == "snapshot":
            sim.commit({}, snapshot_expires=expires)
        else:
            md = sim.load(role)
            md.signed.expires = expires
            sim.commit({role: md})

    with mirror_of(kind, sim) as mirror:
        publish_expiring(now + timedelta(hours=1))
        good = sync(device, mirror)
        before = device.files()

        if agent == "restarted":
            device.cache = BinCache()
        # The mirror keeps serving that state (a freeze) while the device's clock moves on.
        rejected(device, mirror, tuf_exceptions.ExpiredMetadataError, at=frozen_at)
        assert device.files() == before

        publish_expiring(now + timedelta(days=30))  # the honest service re-signs
        assert sync(device, mirror, at=frozen_at) == good


def test_freeze_protection_does_not_freeze_an_honest_catalog_kept_fresh_by_the_service(
    device: Device, disk_sim: RepositorySimulator, publisher: Publisher, clock: FixedClock
) -> None:
    sim = disk_sim
    with mirror_of("memory", sim) as mirror:
        good = sync(device, mirror)
        # 15 days later. The service's re-signer (``refresh_online``) ran as scheduled; no
        # publisher had a reason to publish definitions, whose roles are signed for 14 days.
        clock.advance(15 * 86_400)
        assert {"snapshot", "timestamp"} <= set(publisher.refresh_online())
        sim.reload()
        # The honest catalog must stay usable with nothing but the service's schedule.
        assert sync(device, mirror, at=clock.now()) == good


# -- mix-and-match -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mix", ["snapshot of an older timestamp", "bin of another bin", "bin from a forked snapshot"]
)
def test_mix_and_match_is_rejected_and_last_good_stays_trusted(
    device: Device,
    disk_sim: RepositorySimulator,
    data_dir: Path,
    clock: FixedClock,
    tmp_path: Path,
    mix: str,
) -> None:
    sim = disk_sim
    first, first_snapshot_path = sim.save(), sim.metadata_path("snapshot")
    with mirror_of("memory", sim) as mirror:
        sync(device, mirror)
        before = device.files()
        publish_revision(data_dir, clock, OS_UPDATE, 2)  # os.0f.3, os.06.3, snapshot, timestamp
        sim.reload()
        honest = sim.save()
        accepted = moved(sim, "timestamp", "snapshot")

        if mix == "snapshot of an older timestamp":
            sim.replay(sim.metadata_path("snapshot"), first, first_snapshot_path)
            del accepted["metadata/snapshot.json"]
        elif mix == "bin of another bin":  # os.06.3 holds the same update, same version
            sim.replay(sim.metadata_path(OS_BIN), honest, sim.metadata_path("os.06"))
        else:  # the same role and version, validly signed, but not what this snapshot names
            forked = sim.load(OS_BIN)
            forked.signed.targets.clear()  # e.g. hide the update from devices
            sim.replace(sim.metadata_path(OS_BIN), sim.sign(forked, sim.signers(OS_BIN)))
        rejected(device, mirror, tuf_exceptions.LengthOrHashMismatchError)
        assert device.files() == {**before, **accepted}

        sim.restore(honest)
        assert sync(device, mirror) == fresh_sync(sim, tmp_path)


# -- endless data --------------------------------------------------------------------------


def endless_target(sim: RepositorySimulator, role: str) -> tuple[str, int, dict[str, bytes]]:
    """(URL path, length cap, device files the honest part moves) of an endless ``role``."""
    if role == "root":  # every refresh asks for root N+1, capped by the updater config
        return "metadata/2.root.json", MAX_ROOT_BYTES, {}
    if role == "timestamp":
        return "metadata/timestamp.json", MAX_TIMESTAMP_BYTES, {}
    bump(sim, OS_BIN)  # the device needs a new snapshot and a new bin: capped as signed
    if role == "snapshot":
        length = sim.load("timestamp").signed.snapshot_meta.length
        accepted = moved(sim, "timestamp")
    else:
        length = sim.snapshot().meta[f"{role}.json"].length
        accepted = moved(sim, "timestamp", "snapshot")
    assert length is not None
    return sim.metadata_path(role), length, accepted


@pytest.mark.parametrize("role", ["root", "timestamp", "snapshot", OS_BIN])
def test_endless_data_is_cut_at_the_length_cap_and_rejected(
    device: Device, sim: RepositorySimulator, tmp_path: Path, role: str
) -> None:
    with mirror_of("memory", sim) as mirror:
        sync(device, mirror)
        before = device.files()
        path, cap, accepted = endless_target(sim, role)
        honest = sim.save()

        sim.serve_endless(path)
        fetcher = sim.fetcher()
        with pytest.raises(IntegrityError) as info:
            device.sync(fetcher)
        assert isinstance(info.value.__cause__, tuf_exceptions.DownloadLengthMismatchError)
        # Memory stays bounded: the generator is consumed only up to the (signed) cap,
        # and the device asks for nothing after it.
        url = f"{mirror.base_url}/{path}"
        assert cap < fetcher.bytes_served[url] <= cap + CHUNK_BYTES
        assert fetcher.requests[-1] == url
        assert device.files() == {**before, **accepted}

        sim.restore(honest)
        assert sync(device, mirror) == fresh_sync(sim, tmp_path)


def test_oversized_timestamp_from_the_real_service_is_cut_at_its_cap_and_rejected(
    device: Device, disk_sim: RepositorySimulator
) -> None:
    sim = disk_sim
    with mirror_of("https", sim) as mirror:
        good = sync(device, mirror)
        honest, before = sim.save(), device.files()
        sim.replace("metadata/timestamp.json", b"{" + b" " * 8 * 1024**2)  # 8 MiB
        mirror.publish()
        fetcher = mirror.fetcher()
        with pytest.raises(IntegrityError) as info:
            device.sync(fetcher, base_url=mirror.base_url)
        assert isinstance(info.value.__cause__, tuf_exceptions.DownloadLengthMismatchError)
        assert fetcher.bytes_received < 1024**2  # type: ignore[attr-defined]
        assert device.files() == before

        sim.restore(honest)
        assert sync(device, mirror) == good


# -- missing metadata ---------------------------------------------------------------------


def test_missing_metadata_is_a_transport_error_and_last_good_stays_trusted(
    device: Device, sim: RepositorySimulator
) -> None:
    """Not an attack the signatures can see: a retry later, not a security event."""
    with mirror_of("memory", sim) as mirror:
        good = sync(device, mirror)
        before = device.files()
        bump(sim, OS_BIN)
        honest = sim.save()
        sim.drop(sim.metadata_path(OS_BIN))
        with pytest.raises(TransportError):
            device.sync(mirror.fetcher())
        assert device.files() == {**before, **moved(sim, "timestamp", "snapshot")}

        sim.restore(honest)
        assert sync(device, mirror) == good


# -- untrusted key -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "role"),
    [
        ("memory", "timestamp"),
        ("memory", "root"),
        ("memory", "snapshot"),
        ("memory", OS_BIN),
        ("memory", VENDOR_BIN),
        ("https", "timestamp"),
    ],
)
def test_metadata_signed_by_an_untrusted_key_is_rejected_and_last_good_stays_trusted(
    device: Device, request: pytest.FixtureRequest, kind: str, role: str
) -> None:
    sim = simulator(request, kind)
    attacker = [sim.attacker_key()]
    with mirror_of(kind, sim) as mirror:
        good = sync(device, mirror)
        honest, before = sim.save(), device.files()
        accepted: dict[str, bytes] = {}

        if role == "timestamp":
            sim.resign_timestamp(attacker)
        elif role == "root":
            sim.forge_root(attacker, root_keys_replaced_by(attacker))
        elif role == "snapshot":  # a timestamp names a snapshot the snapshot key never signed
            sim.commit({}, online_signers={"snapshot": attacker})
            accepted = moved(sim, "timestamp")
        else:  # a bin submitted signed by another key; the service snapshots what it gets
            honest_md, md = sim.load(role), sim.load(role)
            md.signed.targets.clear()
            sim.commit({role: md}, signers={role: attacker})
            accepted = moved(sim, "timestamp", "snapshot")
        rejected(device, mirror, tuf_exceptions.UnsignedMetadataError)
        assert device.files() == {**before, **accepted}

        if role == "snapshot":  # the service moves on, past the versions it has served
            sim.commit({})
        elif role in (OS_BIN, VENDOR_BIN):
            honest_md.signed.version = sim.current_version(role)
            sim.commit({role: honest_md})
        else:
            sim.restore(honest)
        assert sync(device, mirror) == good


# -- threshold not met ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_of_three_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Made once: a data directory whose root needs 2 of its 3 root keys, samples published."""
    base = tmp_path_factory.mktemp("two-of-three")
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    data_dir = base / "data"
    create_data_dir(data_dir, clock=clock, options=InitOptions(root_threshold=2, root_keys=3))
    manifests = write_samples(base / "samples")
    Publisher(data_dir, clock=clock).publish_many([load_manifest(p) for p in manifests])
    return data_dir


@pytest.fixture
def two_of_three(two_of_three_template: Path, tmp_path: Path) -> Path:
    """This test's copy of the 2-of-3 data directory."""
    data_dir = tmp_path / "data-2-of-3"
    shutil.copytree(two_of_three_template, data_dir)
    return data_dir


@pytest.mark.parametrize("forgery", ["one of three old keys", "one old key and two new ones"])
def test_root_without_the_threshold_of_old_keys_is_rejected_and_last_good_stays_trusted(
    two_of_three: Path, tmp_path: Path, clock: FixedClock, forgery: str
) -> None:
    sim = RepositorySimulator(two_of_three)
    device = new_device(two_of_three, tmp_path / "device")
    old = sim.signers("root")
    assert len(old) == 3
    with mirror_of("memory", sim) as mirror:
        good = sync(device, mirror)
        honest, before = sim.save(), device.files()

        if forgery == "one of three old keys":
            sim.forge_root(old[:1])
        else:  # the new root lists the stolen key and two of the attacker's: 2-of-3 by itself
            attacker = [sim.attacker_key(), sim.attacker_key()]

            def take_over(root: Root) -> None:
                for signer in old[1:]:
                    root.revoke_key(signer.public_key.keyid, "root")
                for signer in attacker:
                    root.add_key(signer.public_key, "root")

            sim.forge_root([old[0], *attacker], take_over)
        rejected(device, mirror, tuf_exceptions.UnsignedMetadataError)
        assert device.files() == before

        sim.restore(honest)
        assert sync(device, mirror) == good
        rotate_keys(Publisher(two_of_three, clock=clock), "root")  # an honest 2-of-3 rotation
        sim.reload()
        assert sync(device, mirror) == good
        assert (device.metadata_dir / "root_history/2.root.json").exists()
