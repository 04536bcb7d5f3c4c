"""Pure decisions: which names may be served, how they are cached, the health verdict."""

from __future__ import annotations

import posixpath
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from service_helpers import timestamp_json

from tidings.service.health import MAX_TIMESTAMP_BYTES, health_verdict
from tidings.service.names import (
    IMMUTABLE,
    NO_CACHE,
    MetadataName,
    content_etag,
    parse_metadata_name,
    split_target_path,
)

NOW = datetime(2030, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("timestamp.json", MetadataName("timestamp", None)),
        ("root.json", MetadataName("root", None)),
        ("12.root.json", MetadataName("root", 12)),
        ("3.drivers.vendor-a.json", MetadataName("drivers.vendor-a", 3)),
        ("1.json", MetadataName("1", None)),
    ],
)
def test_metadata_names_parse_into_role_and_version(name: str, expected: MetadataName) -> None:
    assert parse_metadata_name(name) == expected
    assert expected.filename == name


def test_only_versioned_metadata_is_immutable() -> None:
    assert MetadataName("timestamp", None).cache_control == NO_CACHE
    assert MetadataName("snapshot", 4).cache_control == IMMUTABLE


@pytest.mark.parametrize(
    "name", ["../root.json", "a/b.json", "a..json", "1..json", "ROOT.json", "root.json\x00", ""]
)
def test_unsafe_metadata_names_are_refused(name: str) -> None:
    assert parse_metadata_name(name) is None


@given(st.text(max_size=80))
def test_accepted_metadata_names_never_leave_the_directory(name: str) -> None:
    if parse_metadata_name(name) is not None:
        assert "/" not in name and "\\" not in name and ".." not in name
        assert not name.startswith(".")


@given(st.text(alphabet=st.sampled_from("ab./\\\x00%-"), max_size=40))
def test_accepted_target_paths_stay_below_the_root_lexically(path: str) -> None:
    segments = split_target_path(path, max_chars=1024)
    if segments is not None:
        joined = posixpath.normpath(posixpath.join("/root", *segments))
        assert joined.startswith("/root/")
        assert "/".join(segments) == path
        assert all(s and not s.startswith(".") and "\\" not in s for s in segments)
        assert all("\x00" not in s for s in segments)


def test_target_path_length_is_bounded() -> None:
    assert split_target_path("a" * 10, max_chars=10) == ("a" * 10,)
    assert split_target_path("a" * 11, max_chars=10) is None
    assert split_target_path("os/" + "a" * 256, max_chars=1024) is None


def test_content_addressed_names_get_their_digest_as_strong_etag() -> None:
    digest = "ab" * 32
    assert content_etag(f"{digest}.update.cab") == f'"{digest}"'
    assert content_etag("update.cab") is None
    assert content_etag(f"{digest.upper()}.update.cab") is None
    assert content_etag(f"{digest}.") is None


def test_health_verdicts() -> None:
    assert health_verdict(None, NOW) == (
        503,
        {"status": "no-catalog", "timestamp_version": None, "timestamp_expires": None},
    )
    assert health_verdict(timestamp_json(3, "2031-01-01T00:00:00Z"), NOW) == (
        200,
        {"status": "ok", "timestamp_version": 3, "timestamp_expires": "2031-01-01T00:00:00Z"},
    )
    status, body = health_verdict(timestamp_json(3, "2030-06-01T00:00:00Z"), NOW)
    assert (status, body["status"]) == (503, "expired")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b'{"signed": {"version": true, "expires": "2031-01-01T00:00:00Z"}}',
        b'{"signed": {"version": -1, "expires": "2031-01-01T00:00:00Z"}}',
        b'{"signed": {"version": 1, "expires": "tomorrow"}}',
        b'{"signed": {"version": 1}}',
        b" " * (MAX_TIMESTAMP_BYTES + 1),
    ],
)
def test_unreadable_timestamps_are_unhealthy(data: bytes) -> None:
    status, body = health_verdict(data, NOW)
    assert (status, body["status"]) == (503, "catalog-unreadable")
