"""The attack matrix, continued: attackers who hold a key of the catalog.

A delegated role's key (a hardware vendor's, a kind's) may sign only inside the paths its
delegator gave it (docs/architecture.md, "Trust model": "a vendor's key can only sign drivers for
its own hardware IDs"); a compromised publisher key must not be able to make a device write outside
its own directories through hostile target or role names; and once a stolen key is rotated out, what
it signs is refused while devices follow the rotation.

These attackers sign with real keys, so the service snapshots their metadata as it would any
publisher's (``RepositorySimulator.commit``): the device rightly accepts the new timestamp and
snapshot, and only the checks under test stand between it and the attacker's metadata.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from attack_helpers import (
    INVENTORY,
    Device,
    Summary,
    files_outside,
    fresh_sync,
    mirror_of,
    moved,
    new_device,
    rejected,
    root_keys_replaced_by,
    sync,
)
from repo_simulator import RepositorySimulator, target_url_path, targets_of
from tuf.api import exceptions as tuf_exceptions
from tuf.api.metadata import DelegatedRole, Delegations, Metadata, TargetFile, Targets

from tidings.catalog.keyindex import (
    IndexEntry,
    Segment,
    SegmentName,
    key_digest,
    key_documents,
    parse_segment,
    segment_document,
    segment_path,
)
from tidings.catalog.layout import CatalogLayout, bin_of_role
from tidings.catalog.publisher import Publisher, PublishResult
from tidings.catalog.rotation import rotate_keys
from tidings.catalog.samples import write_samples
from tidings.errors import IntegrityError
from tidings.manifest import load_manifest
from tidings.scan.inventory_model import HardwareDevice
from tidings.trust.catalog_reader import translated_errors

OS_UPDATE = "3f0a1c52-6a77-4c4e-9a53-2f1e0b3c4d5e"
DRIVER_UPDATE = "5b6c7d8e-9fa0-4b1c-8d2e-3f4a5b6c7d8e"
OS_KEY = "os:tidings-os-11/x64"
OS_BIN = "os.0f"
INTEL_KEY = "vendor.pci-8086:PCI\\VEN_8086&DEV_46A6"
VENDOR_BIN = "vendor.pci-8086.04"
STORE_KEY = "store:contoso.notes"
EVIL_ID = "e0e0e0e0-0000-4000-8000-00000000e71e"


def signed_manifest(sim: RepositorySimulator, role: str, key: str, update_id: str) -> Any:
    """An update's manifest JSON as the served index documents of ``key`` in ``role`` hold it."""
    bin_, digest = bin_of_role(role, CatalogLayout()), key_digest(key)
    documents = key_documents(bin_.directory, targets_of(sim.load(role)).targets)
    for (level, number), target in documents.get(digest, {}).items():
        data = sim.bytes_at(target_url_path(target.path, target.hashes["sha256"]))
        for entry in parse_segment(data, SegmentName(digest, level, number), key)[1]:
            if entry.update_id == update_id:
                return copy.deepcopy(entry.manifest)
    raise AssertionError(f"{update_id} is not under {key} in {role}")


def evil_document(
    sim: RepositorySimulator, path: str, key: str, payload_dir: str, **manifest: object
) -> TargetFile:
    """A valid-looking index document of ``key`` at ``path``, served where devices fetch it.

    It holds the sample OS update's signed manifest changed by ``manifest``.
    """
    doc = signed_manifest(sim, OS_BIN, OS_KEY, OS_UPDATE) | {"title": "EVIL", **manifest}
    entry = IndexEntry(str(doc["id"]), doc, payload_dir)
    data = segment_document(key, Segment(0, 99, (entry,)))
    sha = hashlib.sha256(data).hexdigest()
    sim.replace(target_url_path(path, sha), data)
    return TargetFile(len(data), {"sha256": sha}, path)


def found(result: Summary) -> dict[str, tuple[int, str]]:
    """update id -> (revision, role found in)."""
    return {entry[0]: (entry[1], entry[2]) for entry in result[0]}


def service_moves_on(sim: RepositorySimulator, role: str, honest: Metadata[Any]) -> None:
    """The honest content of ``role`` is published again, past the version served last."""
    honest.signed.version = sim.current_version(role)
    sim.commit({role: honest})


# -- a delegated role signing outside its paths ------------------------------------------


STORE_DIR = CatalogLayout().family("store").bin_for_key("contoso.notes").directory


@pytest.mark.parametrize(
    ("signer", "path", "key"),
    [
        # a hardware vendor signs a document in an OS bin's directory
        (VENDOR_BIN, segment_path("os/0f", OS_KEY, 0, 99), OS_KEY),
        # the OS key signs a document in a store bin's directory
        (OS_BIN, segment_path(STORE_DIR, STORE_KEY, 0, 99), STORE_KEY),
    ],
)
def test_delegated_role_signing_outside_its_paths_is_never_used(
    device: Device, sim: RepositorySimulator, signer: str, path: str, key: str
) -> None:
    with mirror_of("memory", sim) as mirror:
        good = sync(device, mirror)
        honest = sim.load(signer)
        md = sim.load(signer)
        payload_dir = path.rpartition("/")[0]
        md.signed.targets[path] = evil_document(sim, path, key, payload_dir, id=EVIL_ID)
        sim.commit({signer: md})  # correctly signed with the role's own key

        try:
            seen = found(sync(device, mirror))
        except IntegrityError:
            seen = {}  # refusing the whole bin is also a correct answer
        reader = device.last_reader
        assert reader is not None
        with translated_errors():  # python-tuf's delegation walk never reaches it
            assert reader.updater.get_targetinfo(path) is None

        service_moves_on(sim, signer, honest)
        assert sync(device, mirror) == good
    # The reader must not offer what no delegation allowed the signer to sign.
    assert EVIL_ID not in seen, f"{signer} signed {path} and the device offered it: {seen}"


def test_vendor_role_cannot_replace_an_os_update_from_inside_its_own_paths(
    device: Device, sim: RepositorySimulator
) -> None:
    """docs/architecture.md, "Trust model": a vendor's key signs its own hardware's drivers."""
    vendor_dir = bin_of_role(VENDOR_BIN, CatalogLayout()).directory
    path = segment_path(vendor_dir, INTEL_KEY, 0, 99)  # inside the vendor's paths, its own key
    with mirror_of("memory", sim) as mirror:
        good = sync(device, mirror)
        honest = sim.load(VENDOR_BIN)
        md = sim.load(VENDOR_BIN)
        # The OS update's manifest (kind "os", same id), as a newer revision.
        md.signed.targets[path] = evil_document(sim, path, INTEL_KEY, vendor_dir, revision=99)
        sim.commit({VENDOR_BIN: md})

        try:
            seen = found(sync(device, mirror))
        except IntegrityError:
            seen = found(good)
        service_moves_on(sim, VENDOR_BIN, honest)
        assert sync(device, mirror) == good
    assert seen[OS_UPDATE] == (1, OS_BIN), f"the OS update now comes from the vendor: {seen}"


NVIDIA_ID = "PCI\\VEN_10DE&DEV_2684"
NVIDIA_DRIVER = "6c7d8e9f-a0b1-4c2d-8e3f-4a5b6c7d8e9f"


def test_vendor_role_cannot_sign_a_driver_for_another_vendors_hardware(
    data_dir: Path, published: list[PublishResult], publisher: Publisher, tmp_path: Path
) -> None:
    """docs/architecture.md, "Trust model": a vendor's key signs its own hardware's drivers only."""
    write_samples(tmp_path / "samples")  # manifests and payloads
    sample = (tmp_path / "samples/driver-display.toml").read_text()
    nvidia = tmp_path / "samples/driver-nvidia.toml"
    nvidia.write_text(
        sample.replace(DRIVER_UPDATE, NVIDIA_DRIVER)
        .replace("PCI\\\\VEN_8086&DEV_46A6", NVIDIA_ID.replace("\\", "\\\\"))
        .replace("PCI\\\\VEN_8086&CC_0300", "PCI\\\\VEN_10DE&CC_0300")
    )
    publisher.publish(load_manifest(nvidia))  # creates vendor.pci-10de, its key and bins
    sim = RepositorySimulator(data_dir)
    both = dataclasses.replace(
        INVENTORY,
        devices=(
            *INVENTORY.devices,
            HardwareDevice(instance_id="PCI\\VEN_10DE&DEV_2684\\1", hardware_ids=(NVIDIA_ID,)),
        ),
    )
    device = dataclasses.replace(new_device(data_dir, tmp_path / "device"), inventory=both)
    nvidia_bin = CatalogLayout().family("vendor.pci-10de").bin_for_key(NVIDIA_ID)
    nvidia_key = f"vendor.pci-10de:{NVIDIA_ID}"
    with mirror_of("memory", sim) as mirror:
        good = sync(device, mirror)
        assert {NVIDIA_DRIVER, DRIVER_UPDATE} <= set(found(good))
        honest, md = sim.load(nvidia_bin.role), sim.load(nvidia_bin.role)
        # Inside its own paths, of its own kind, but for the Intel device next to it.
        path = segment_path(nvidia_bin.directory, nvidia_key, 0, 99)
        rules = signed_manifest(sim, VENDOR_BIN, INTEL_KEY, DRIVER_UPDATE)["applicability"]
        md.signed.targets[path] = evil_document(
            sim,
            path,
            nvidia_key,
            nvidia_bin.directory,
            id=EVIL_ID,
            kind="driver",
            applicability=rules,
        )
        sim.commit({nvidia_bin.role: md})

        try:
            seen = found(sync(device, mirror))
        except IntegrityError:
            seen = {}
        service_moves_on(sim, nvidia_bin.role, honest)
        assert sync(device, mirror) == good
    assert EVIL_ID not in seen, f"vendor.pci-10de offered a driver for Intel hardware: {seen}"


# -- hostile target and role names --------------------------------------------------------


def empty_role(now: datetime) -> Metadata[Targets]:
    """A new, empty delegated role at version 1."""
    return Metadata(Targets(version=1, expires=now + timedelta(days=1)))


def test_hostile_target_and_role_names_never_make_the_device_write_outside_its_dirs(
    device: Device, sim: RepositorySimulator, tmp_path: Path
) -> None:
    escape = f"tidings-escape-{uuid.uuid4().hex}"
    targets = [
        f"os/0f/../../../../../../{escape}",
        f"/tmp/{escape}",
        "os/0f/..",
        f"os/0f/..%2f..%2f{escape}",
        f"os/0f/..\\..\\{escape}",
    ]
    document_path = f"os/0f/../../../{escape}/{key_digest(OS_KEY)}.0.99.json"
    bin_roles = [f"../../{escape}-a", f"{escape}/../../b", ".."]
    vendor_roles = [f"vendor.pci-8086/../../{escape}", f"../{escape}"]
    now = datetime.now(UTC).replace(microsecond=0)
    with mirror_of("memory", sim) as mirror:
        good = sync(device, mirror)
        honest_bin, honest_drivers = sim.load(OS_BIN), sim.load("drivers")

        # A compromised os key (and drivers key) sign it all; the service snapshots it.
        new_roles = {r: empty_role(now) for r in bin_roles + vendor_roles}
        sim.commit(
            new_roles,
            bump=False,
            signers={r: sim.signers(OS_BIN if r in bin_roles else "drivers") for r in new_roles},
        )
        md, drivers = sim.load(OS_BIN), sim.load("drivers")
        for path in targets:
            data = f"payload at {path}".encode()
            sha = hashlib.sha256(data).hexdigest()
            md.signed.targets[path] = TargetFile(len(data), {"sha256": sha}, path)
            # Served where a static server maps the URL python-tuf asks for: downloads succeed.
            sim.replace(urllib.parse.unquote(target_url_path(path, sha)), data)
        md.signed.targets[document_path] = evil_document(
            sim, document_path, OS_KEY, "os/0f", id=EVIL_ID
        )
        delegate_all(md.signed, bin_roles, sim.signers(OS_BIN), ["os/0f/*"])
        delegate_all(drivers.signed, vendor_roles, sim.signers("drivers"), ["drivers/*/*/*"])
        sim.commit({OS_BIN: md, "drivers": drivers})

        try:
            seen = found(sync(device, mirror))
        except IntegrityError:
            seen = {}
        reader = device.last_reader
        assert reader is not None
        for path in [*targets, "os/0f/not-there"]:  # the last walks into the hostile roles
            try:
                with translated_errors():
                    info = reader.updater.get_targetinfo(path)
                    if info is not None:
                        reader.updater.download_target(info)
            except IntegrityError:
                pass  # refusing is fine; writing outside is not

        # The walk did load the hostile roles: python-tuf stores them under quoted names.
        for role in bin_roles:
            assert (device.metadata_dir / f"{urllib.parse.quote(role, '')}.json").is_file()
        # Nothing outside the device's two directories, nor where a naive join would land.
        assert files_outside(tmp_path, [device.home]) == []
        for path in [*targets, document_path, *(f"{r}.json" for r in bin_roles + vendor_roles)]:
            for base in (device.metadata_dir, device.download_dir):
                landing = Path(os.path.normpath(os.path.join(base, path)))
                inside = landing.is_relative_to(base)
                assert inside or not landing.exists(), landing
        assert {p.parent for p in device.metadata_dir.rglob("*") if p.is_file()} <= {
            device.metadata_dir,
            device.metadata_dir / "root_history",
        }
        assert {p.parent for p in device.download_dir.rglob("*")} <= {
            device.download_dir,
            device.download_dir / "index",
        }

        service_moves_on(sim, OS_BIN, honest_bin)
        service_moves_on(sim, "drivers", honest_drivers)
        assert sync(device, mirror) == good
    assert EVIL_ID not in seen, f"a document at {document_path!r} was offered: {seen}"


def delegate_all(parent: Targets, names: list[str], signers: list[Any], paths: list[str]) -> None:
    if parent.delegations is None:
        parent.delegations = Delegations(keys={}, roles={})
    assert parent.delegations.roles is not None
    for name in names:
        parent.delegations.roles[name] = DelegatedRole(name, [], 1, False, paths)
        for signer in signers:
            parent.add_key(signer.public_key, name)


# -- compromise, then key rotation ----------------------------------------------------------


@pytest.mark.parametrize(
    ("stolen", "forged"),
    [
        ("os", OS_BIN),  # a kind key signs its bins
        ("os", "os"),
        ("vendor.pci-8086", VENDOR_BIN),
        ("timestamp", "timestamp"),
        ("root", "root"),
    ],
)
def test_stolen_key_is_refused_after_rotation_and_devices_follow_the_rotation(
    disk_sim: RepositorySimulator,
    publisher: Publisher,
    data_dir: Path,
    tmp_path: Path,
    stolen: str,
    forged: str,
) -> None:
    sim = disk_sim
    device = new_device(data_dir, tmp_path / "device")
    with mirror_of("memory", sim) as mirror:
        good = sync(device, mirror)
        old_keys = sim.signers(stolen)  # the attacker's copy, taken before the rotation
        rotation = rotate_keys(publisher, stolen)
        assert {k.public_key.keyid for k in old_keys} == set(rotation.retired)
        sim.reload()
        assert sync(device, mirror) == good  # a device that trusted the old keys follows
        assert fresh_sync(sim, tmp_path / "fresh") == good
        before = device.files()

        accepted: dict[str, bytes] = {}
        if forged == "timestamp":
            sim.resign_timestamp(old_keys)
        elif forged == "root":
            sim.forge_root(old_keys, root_keys_replaced_by(old_keys))
        else:
            honest, md = sim.load(forged), sim.load(forged)
            if forged == OS_BIN:
                path = segment_path("os/0f", OS_KEY, 0, 99)
                md.signed.targets[path] = evil_document(sim, path, OS_KEY, "os/0f", id=EVIL_ID)
            sim.commit({forged: md}, signers={forged: old_keys})
            accepted = moved(sim, "timestamp", "snapshot")
        rejected(device, mirror, tuf_exceptions.UnsignedMetadataError)
        assert device.files() == {**before, **accepted}

        if accepted:
            service_moves_on(sim, forged, honest)
        else:
            sim.reload()
        assert sync(device, mirror) == good
