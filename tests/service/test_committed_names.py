"""The service serves a versioned metadata file only once the committed timestamp reaches it."""

from __future__ import annotations

import json

import pytest

from tidings.service.names import committed_versions, is_committed, parse_metadata_name

COMMITTED = {"snapshot": 7, "targets": 3, "apps.0a": 12}


def _meta(**versions: int) -> bytes:
    meta = {f"{name}.json": {"version": v} for name, v in versions.items()}
    return json.dumps({"signed": {"meta": meta}, "signatures": []}).encode()


@pytest.mark.parametrize(
    ("name", "served"),
    [
        ("7.snapshot.json", True),
        ("6.snapshot.json", True),  # a device mid-scan may still hold snapshot 6
        ("8.snapshot.json", False),  # left by a publish killed before its timestamp
        ("12.apps.0a.json", True),
        ("13.apps.0a.json", False),
        ("1.vendor.pci-10de.json", False),  # a role the committed snapshot does not list
        ("9.root.json", True),  # root versions are committed by being written
        ("timestamp.json", True),
    ],
)
def test_a_versioned_file_a_killed_publish_left_is_not_served(name: str, served: bool) -> None:
    parsed = parse_metadata_name(name)
    assert parsed is not None
    assert is_committed(parsed, COMMITTED) is served


def test_nothing_versioned_is_served_while_the_catalog_is_unreadable() -> None:
    parsed = parse_metadata_name("1.snapshot.json")
    assert parsed is not None
    assert not is_committed(parsed, None)


def test_committed_versions_follow_the_timestamp_to_its_snapshot() -> None:
    snapshots = {7: _meta(targets=3, **{"apps.0a": 12})}
    versions = committed_versions(_meta(snapshot=7), snapshots.__getitem__)
    assert versions == COMMITTED


@pytest.mark.parametrize(
    "timestamp",
    [b"{}", b"[]", b'{"signed": {"meta": {"snapshot.json": {"version": "7"}}}}', _meta()],
)
def test_a_malformed_timestamp_is_refused(timestamp: bytes) -> None:
    with pytest.raises(ValueError):
        committed_versions(timestamp, lambda v: _meta())
