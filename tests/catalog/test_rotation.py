"""Key rotation: devices keep trusting the catalog; the old keys stop being able to sign."""

from __future__ import annotations

from pathlib import Path

import pytest
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata, Root
from typer.testing import CliRunner

from tidings.catalog.create import InitOptions, create_data_dir
from tidings.catalog.layout import bin_of_role
from tidings.catalog.publisher import Publisher, PublishResult
from tidings.catalog.rotation import rotate_keys
from tidings.cli.main import registered_app
from tidings.clock import FixedClock
from tidings.errors import CatalogError, KeyStoreError
from tufclient import file_updater, indexed_manifests


def all_updates_visible(
    data_dir: Path, publisher: Publisher, published: list[PublishResult], client: Path
) -> None:
    updater = file_updater(data_dir, client)
    updater.refresh()
    for r in published:
        home = bin_of_role(r.bins[0], publisher.layout)
        assert r.update_id in indexed_manifests(updater, home, r.keys[0])


@pytest.mark.parametrize(
    "role", ["root", "timestamp", "snapshot", "targets", "os", "drivers", "vendor.pci-8086"]
)
def test_device_trusting_the_old_keys_follows_a_rotation(
    data_dir: Path,
    publisher: Publisher,
    published: list[PublishResult],
    tmp_path: Path,
    role: str,
) -> None:
    client = tmp_path / "device"
    all_updates_visible(data_dir, publisher, published, client)  # trusts the old keys
    rotation = rotate_keys(publisher, role)
    assert set(rotation.retired).isdisjoint(rotation.added)
    for keyid in rotation.retired:
        assert (data_dir / "keys/retired" / role / f"{keyid}.pem").exists()
        assert not (data_dir / "keys" / role / f"{keyid}.pem").exists()
    all_updates_visible(data_dir, publisher, published, client)  # same device, after rotation
    all_updates_visible(data_dir, publisher, published, tmp_path / "new-device")


def test_new_root_is_signed_by_old_and_new_root_keys(
    data_dir: Path, publisher: Publisher, published: list[PublishResult]
) -> None:
    old = Metadata[Root].from_file(str(data_dir / "repo/metadata/1.root.json"))
    rotation = rotate_keys(publisher, "root")
    new = Metadata[Root].from_file(str(data_dir / "repo/metadata/2.root.json"))
    assert set(new.signatures) == set(rotation.retired) | set(rotation.added)
    old.verify_delegate("root", new)  # what a device holding root v1 checks
    new.verify_delegate("root", new)


def test_metadata_signed_with_a_retired_key_is_refused(
    data_dir: Path, publisher: Publisher, published: list[PublishResult], tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.signer import CryptoSigner

    rotation = rotate_keys(publisher, "timestamp")
    retired = data_dir / "keys/retired/timestamp" / f"{rotation.retired[0]}.pem"
    old_signer = CryptoSigner(load_pem_private_key(retired.read_bytes(), None))
    ts_path = data_dir / "repo/metadata/timestamp.json"
    forged = Metadata.from_bytes(ts_path.read_bytes())
    forged.signed.version += 1
    forged.signatures.clear()
    forged.sign(old_signer)
    ts_path.write_bytes(forged.to_bytes())
    updater = file_updater(data_dir, tmp_path / "device")
    with pytest.raises(UnsignedMetadataError):
        updater.refresh()


def test_bins_cannot_be_rotated_on_their_own(publisher: Publisher) -> None:
    with pytest.raises(CatalogError, match="signed with its family's key"):
        rotate_keys(publisher, "os.00")
    with pytest.raises(CatalogError, match="no role"):
        rotate_keys(publisher, "vendor.usb-9999")


def test_two_of_three_root_rotation_keeps_the_threshold(tmp_path: Path, clock: FixedClock) -> None:
    data_dir = tmp_path / "data"
    create_data_dir(data_dir, clock=clock, options=InitOptions(root_threshold=2, root_keys=3))
    root = Metadata[Root].from_file(str(data_dir / "repo/metadata/1.root.json"))
    assert root.signed.roles["root"].threshold == 2
    assert len(root.signed.roles["root"].keyids) == 3
    rotation = rotate_keys(Publisher(data_dir, clock=clock), "root")
    assert len(rotation.added) == 3
    new = Metadata[Root].from_file(str(data_dir / "repo/metadata/2.root.json"))
    assert new.signed.roles["root"].threshold == 2
    root.verify_delegate("root", new)
    new.verify_delegate("root", new)


def files_under(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("role", ["timestamp", "root"])
def test_root_signed_below_threshold_is_never_written_and_devices_keep_updating(
    tmp_path: Path, clock: FixedClock, role: str
) -> None:
    """2-of-3 root with two keys offline (docs/operations.md): a root change must wait for them.

    Client workflow 5.3.4: a root version signed by one key would stop every device for good.
    """
    data_dir = tmp_path / "data"
    create_data_dir(data_dir, clock=clock, options=InitOptions(root_threshold=2, root_keys=3))
    device = file_updater(data_dir, tmp_path / "device")
    device.refresh()
    vault = tmp_path / "offline"
    vault.mkdir()
    offline = sorted((data_dir / "keys/root").glob("*.pem"))[:2]
    for key in offline:
        key.rename(vault / key.name)
    before = files_under(data_dir / "repo"), files_under(data_dir / "keys")

    refused = CliRunner().invoke(registered_app(), ["keys", "rotate", str(data_dir), role])

    assert refused.exit_code == 1
    assert (
        f"rotating {role} needs a new root signed by 2 root keys; 1 of them is in "
        f"{data_dir / 'keys/root'}: bring the offline root keys back"
    ) in " ".join(refused.output.split())
    assert (files_under(data_dir / "repo"), files_under(data_dir / "keys")) == before
    file_updater(data_dir, tmp_path / "device").refresh()  # still on root 1, still updating

    # One key comes back: two of three present.
    (vault / offline[0].name).rename(offline[0])
    done = CliRunner().invoke(registered_app(), ["keys", "rotate", str(data_dir), role])
    assert done.exit_code == 0, done.output
    assert (data_dir / "repo/metadata/2.root.json").exists()
    updater = file_updater(data_dir, tmp_path / "device")
    updater.refresh()  # python-tuf's client walks root 1 -> 2
    trusted = Metadata[Root].from_file(str(tmp_path / "device/metadata/root.json"))
    assert trusted.signed.version == 2
    file_updater(data_dir, tmp_path / "new-device").refresh()


def test_a_root_change_is_checked_against_the_trusted_and_the_new_root_at_commit(
    tmp_path: Path, clock: FixedClock
) -> None:
    data_dir = tmp_path / "data"
    create_data_dir(data_dir, clock=clock, options=InitOptions(root_threshold=2, root_keys=3))
    publisher = Publisher(data_dir, clock=clock)
    with publisher.repo.lock():
        session = publisher.repo.open()
        session.edit_root().roles["root"].threshold = 3  # the new root asks for all three
        (sorted((data_dir / "keys/root").glob("*.pem"))[0]).unlink()
        before = files_under(data_dir / "repo")
        with pytest.raises(KeyStoreError, match="needs a new root signed by 3 root keys; 2 of"):
            publisher.repo.commit(session)
    assert files_under(data_dir / "repo") == before
