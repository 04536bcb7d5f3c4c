"""Publishing: what a device sees after publish, new revisions, revoke, supersede, bad input."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from tuf.api.exceptions import RepositoryError
from tuf.ngclient import Updater

from tidings.catalog.entries import payload_target, piece_map_target
from tidings.catalog.index import parse_key_text
from tidings.catalog.layout import bin_of_role
from tidings.catalog.piecemap import PieceMap
from tidings.catalog.publisher import Publisher, PublishResult
from tidings.clock import FixedClock
from tidings.errors import CatalogError, ManifestError, PayloadError
from tidings.manifest import load_manifest, manifest_from_dict
from tufclient import file_updater, indexed_manifests


def offered(updater: Updater, publisher: Publisher, result: PublishResult) -> dict[str, int]:
    """Bin role -> the revision of ``result``'s update its key documents offer there."""
    found = {}
    for text in result.keys:
        key = parse_key_text(text)
        bin_ = publisher.layout.family(key.family).bin_for_key(key.key)
        manifest = indexed_manifests(updater, bin_, text).get(result.update_id)
        if manifest is not None:
            found[bin_.role] = manifest["revision"]
    return found


def tree_state(data_dir: Path) -> dict[str, bytes]:
    """Every file of the served tree and the content store, with its bytes."""
    state = {}
    for top in ("repo", "content/sha256"):
        for path in sorted((data_dir / top).rglob("*")):
            if path.is_file():
                state[str(path.relative_to(data_dir))] = path.read_bytes()
    return state


def rewrite(path: Path, old: str, new: str) -> Path:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return path


def test_every_published_update_verifies_and_downloads_with_python_tuf(
    data_dir: Path, publisher: Publisher, published: list[PublishResult], tmp_path: Path
) -> None:
    updater = file_updater(data_dir, tmp_path / "client")
    updater.refresh()
    for result in published:
        home = bin_of_role(result.bins[0], publisher.layout)
        signed = indexed_manifests(updater, home, result.keys[0])[result.update_id]
        manifest = manifest_from_dict(signed, source="signed")
        assert manifest.id == result.update_id
        for payload in manifest.payloads:
            # The signed manifest pins each payload and piece map: python-tuf checks both.
            data = Path(
                updater.download_target(payload_target(home.directory, manifest.id, payload))
            ).read_bytes()
            assert hashlib.sha256(data).hexdigest() == payload.sha256
            map_bytes = Path(
                updater.download_target(piece_map_target(home.directory, manifest.id, payload))
            ).read_bytes()
            assert hashlib.sha256(map_bytes).hexdigest() == payload.piece_map_sha256
            piece_map = PieceMap.from_bytes(map_bytes)
            assert piece_map.length == len(data) == payload.size


def test_update_is_indexed_under_every_key_its_applicability_names(
    data_dir: Path, publisher: Publisher, published: list[PublishResult], tmp_path: Path
) -> None:
    os_update = published[0]
    assert len(os_update.keys) == 2  # x64 and arm64 are two index keys
    updater = file_updater(data_dir, tmp_path / "client")
    updater.refresh()
    assert set(offered(updater, publisher, os_update)) == set(os_update.bins)


def test_new_revision_replaces_the_old_one_everywhere(
    data_dir: Path,
    publisher: Publisher,
    published: list[PublishResult],
    sample_manifests: list[Path],
    tmp_path: Path,
) -> None:
    path = rewrite(sample_manifests[0], "revision = 1", "revision = 2")
    rewrite(path, 'architectures = ["x64", "arm64"]', 'architectures = ["x64"]')
    result = publisher.publish(load_manifest(path))
    assert (result.revision, result.previous_revision) == (2, 1)
    updater = file_updater(data_dir, tmp_path / "client")
    updater.refresh()
    # The arm64 key no longer offers revision 1; the x64 key offers revision 2.
    assert list(offered(updater, publisher, published[0]).values()) == [2]


def test_republishing_the_same_revision_changes_nothing(
    data_dir: Path,
    publisher: Publisher,
    published: list[PublishResult],
    sample_manifests: list[Path],
) -> None:
    before = (data_dir / "repo/metadata/timestamp.json").read_bytes()
    result = publisher.publish(load_manifest(sample_manifests[1]))
    assert result.unchanged
    assert (data_dir / "repo/metadata/timestamp.json").read_bytes() == before


def test_same_revision_with_other_content_is_refused(
    publisher: Publisher, published: list[PublishResult], sample_manifests: list[Path]
) -> None:
    path = rewrite(sample_manifests[1], "Contoso Editor 2.4.1", "Contoso Editor 2.4.1 (fixed)")
    with pytest.raises(
        CatalogError, match="revision 1 is already published: give this one revision 2"
    ):
        publisher.publish(load_manifest(path))


def test_older_revision_cannot_roll_back_a_published_update(
    publisher: Publisher, published: list[PublishResult], sample_manifests: list[Path]
) -> None:
    path = rewrite(sample_manifests[1], "revision = 1", "revision = 3")
    publisher.publish(load_manifest(path))
    rewrite(path, "revision = 3", "revision = 2")
    with pytest.raises(CatalogError, match="revision 3 is already published"):
        publisher.publish(load_manifest(path))


def test_revoked_update_is_no_longer_offered(
    data_dir: Path, publisher: Publisher, published: list[PublishResult], tmp_path: Path
) -> None:
    app = published[1]
    revoked = publisher.revoke(app.update_id)
    assert revoked.state == "revoked"
    updater = file_updater(data_dir, tmp_path / "client")
    updater.refresh()
    assert offered(updater, publisher, app) == {}
    with pytest.raises(
        CatalogError, match=f"update {app.update_id} is already revoked \\(revision 1\\)"
    ):
        publisher.revoke(app.update_id)
    states = {u.id: u.state for u in publisher.updates()}
    assert states[app.update_id] == "revoked"


def test_superseding_update_names_the_one_it_replaces(
    data_dir: Path,
    publisher: Publisher,
    published: list[PublishResult],
    sample_manifests: list[Path],
    tmp_path: Path,
) -> None:
    old_id = published[1].update_id
    path = rewrite(sample_manifests[1], old_id, "9d9d9d9d-1111-4222-8333-444455556666")
    rewrite(path, "products = [", f'supersedes = ["{old_id}"]\nproducts = [')
    result = publisher.publish(load_manifest(path))
    updater = file_updater(data_dir, tmp_path / "client")
    updater.refresh()
    home = bin_of_role(result.bins[0], publisher.layout)
    signed = indexed_manifests(updater, home, result.keys[0])[result.update_id]
    assert signed["supersedes"] == [old_id]


def test_bad_manifest_is_rejected_by_the_cli_and_nothing_changes(
    data_dir: Path, published: list[PublishResult], sample_manifests: list[Path]
) -> None:
    from typer.testing import CliRunner

    from tidings.cli.main import registered_app

    path = rewrite(sample_manifests[0], "min_build = 22000", 'min_build = "abc"')
    before = tree_state(data_dir)
    result = CliRunner().invoke(registered_app(), ["publish", str(data_dir), str(path)])
    assert result.exit_code == 1
    assert (
        'os-cumulative.toml: applicability.os.min_build: expected an integer, got "abc"'
        in result.output
    )
    assert "Traceback" not in result.output
    assert tree_state(data_dir) == before


def test_payload_that_does_not_match_its_declared_hash_is_rejected_and_nothing_changes(
    data_dir: Path,
    publisher: Publisher,
    published: list[PublishResult],
    sample_manifests: list[Path],
) -> None:
    path = rewrite(sample_manifests[1], "revision = 1", "revision = 2")
    rewrite(
        path,
        'path = "payloads/contoso-editor-2.4.1.pkg"',
        'path = "payloads/contoso-editor-2.4.1.pkg"\nsha256 = "' + "0" * 64 + '"',
    )
    before = tree_state(data_dir)
    with pytest.raises(PayloadError, match=r"sha256 is .* the manifest says 0000"):
        publisher.publish(load_manifest(path))
    assert tree_state(data_dir) == before


def test_payload_missing_on_disk_is_a_clear_manifest_error(
    publisher: Publisher, sample_manifests: list[Path]
) -> None:
    os.unlink(sample_manifests[1].parent / "payloads/contoso-editor-2.4.1.pkg")
    with pytest.raises(ManifestError, match=r"app-editor.toml: payload\[0\].path: "):
        load_manifest(sample_manifests[1])


def test_online_roles_are_resigned_only_when_close_to_expiry(
    data_dir: Path, publisher: Publisher, published: list[PublishResult], clock: FixedClock
) -> None:
    assert publisher.refresh_online() == []
    clock.advance(13 * 3600)  # more than half of the timestamp's one-day life
    assert publisher.refresh_online() == ["timestamp"]
    clock.advance(4 * 86400)  # more than half of the snapshot's week
    assert publisher.refresh_online() == ["snapshot", "timestamp"]


def test_client_refuses_a_rolled_back_timestamp(
    data_dir: Path,
    publisher: Publisher,
    published: list[PublishResult],
    sample_manifests: list[Path],
    tmp_path: Path,
) -> None:
    old = (data_dir / "repo/metadata/timestamp.json").read_bytes()
    publisher.publish(load_manifest(rewrite(sample_manifests[1], "revision = 1", "revision = 2")))
    updater = file_updater(data_dir, tmp_path / "client")
    updater.refresh()
    (data_dir / "repo/metadata/timestamp.json").write_bytes(old)  # an attacker replays v(n-1)
    with pytest.raises(RepositoryError):
        file_updater(data_dir, tmp_path / "client").refresh()


def test_publish_into_a_directory_without_a_catalog_says_what_to_do(tmp_path: Path) -> None:
    from tidings.errors import ConfigError

    with pytest.raises(ConfigError, match=r"no catalog.json\): give the directory `tidings server"):
        Publisher(tmp_path, clock=FixedClock(__import__("datetime").datetime.now()))


@pytest.mark.parametrize(
    ("bins", "message"),
    [
        ('{"os": [16, 8]}', "is malformed"),  # format 2 needs one count per family
        ('{"os": true}', "is malformed"),
    ],
)
def test_a_damaged_or_older_catalog_config_is_refused_with_what_to_do(
    data_dir: Path, bins: str, message: str
) -> None:
    from tidings.errors import ConfigError

    path = data_dir / "catalog.json"
    doc = json.loads(path.read_text())
    path.write_text(json.dumps(doc | {"bins": json.loads(bins)}))
    with pytest.raises(ConfigError, match=message):
        Publisher(data_dir)
    path.write_text(json.dumps(doc | {"format": 1}))  # written by an earlier Tidings
    with pytest.raises(ConfigError, match="create a new data directory"):
        Publisher(data_dir)


def test_driver_naming_several_vendors_hardware_is_refused(
    publisher: Publisher, published: list[PublishResult], sample_manifests: list[Path]
) -> None:
    path = rewrite(
        sample_manifests[2],
        'compatible_ids = ["PCI\\\\VEN_8086&CC_0300"]',
        'compatible_ids = ["PCI\\\\VEN_10DE&CC_0300"]',
    )
    path = rewrite(path, "revision = 1", "revision = 2")
    with pytest.raises(CatalogError, match=r"hardware of several vendors \(pci-10de, pci-8086\)"):
        publisher.publish(load_manifest(path))
