"""Refusals of publish, revoke and keys rotate say what was wrong and what to give instead."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import invoke

from tidings.catalog.publisher import PublishResult


def test_revoking_an_already_revoked_update_says_so(
    data_dir: Path, published: list[PublishResult]
) -> None:
    update_id = published[1].update_id
    assert invoke("revoke", data_dir, update_id).code == 0
    again = invoke("revoke", data_dir, update_id)
    assert again.code == 1
    assert again.stderr.splitlines() == [
        f"error: update {update_id} is already revoked (revision 1)"
    ]


def test_an_upper_case_update_id_is_the_same_update(
    data_dir: Path, published: list[PublishResult]
) -> None:
    update_id = published[1].update_id
    done = invoke("revoke", data_dir, update_id.upper())
    assert done.code == 0, done.stderr
    assert done.stdout.startswith(f"revoked {update_id} revision 1 ")


def test_revoking_something_that_is_not_a_uuid_says_it_is_not_an_update_id(
    data_dir: Path, published: list[PublishResult]
) -> None:
    refused = invoke("revoke", data_dir, "contoso-editor")
    assert refused.code == 1
    assert refused.stderr.splitlines() == [
        "error: 'contoso-editor' is not an update id: give its UUID as `tidings updates` lists it"
    ]
    unknown = invoke("revoke", data_dir, "0b6f4a53-5d0c-4f0e-9a51-5d4c1f5a8c11")
    assert unknown.stderr.splitlines() == [
        "error: no update 0b6f4a53-5d0c-4f0e-9a51-5d4c1f5a8c11 in this catalog"
    ]


def test_publishing_one_update_id_twice_names_the_id_and_both_files(
    data_dir: Path, sample_manifests: list[Path], tmp_path: Path
) -> None:
    first = sample_manifests[1]
    update_id = next(
        line.split('"')[1] for line in first.read_text().splitlines() if line.startswith("id = ")
    )
    second = first.with_name("copy.toml")
    second.write_text(first.read_text().replace("\nrevision = 1\n", "\nrevision = 2\n"))
    assert second.read_text() != first.read_text()
    refused = invoke("publish", data_dir, first, second)
    assert refused.code == 1
    assert refused.stderr.splitlines() == [
        f"error: update {update_id} is in two manifests of this publish, {first} and {second}: "
        "publish one revision of an update at a time"
    ]


def test_rotating_an_unknown_role_lists_the_roles_and_maps_a_kind_to_its_role(
    data_dir: Path, published: list[PublishResult]
) -> None:
    refused = invoke("keys", "rotate", data_dir, "app")
    assert refused.code == 1
    assert refused.stderr.splitlines() == [
        "error: no role 'app' in this catalog; its roles are root, timestamp, snapshot, targets, "
        "os, apps, drivers, definitions, store, vendor.pci-8086 (updates of kind 'app' are "
        "signed by the role 'apps')"
    ]
