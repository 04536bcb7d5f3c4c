"""Which request names the service may serve, and how they may be cached. Pure: no I/O.

A versioned metadata file is served only once the committed timestamp reaches it
(``is_committed``): a published name never changes its bytes, and a cache never keeps one
that a killed publish left (docs/catalog.md).

Invariants: a metadata name never contains a path separator or ``..``; a target path is a
sequence of plain segments (none empty, ``.``, ``..``, hidden, or holding ``\\``, NUL or
control characters), so joining it under ``repo/targets`` cannot climb out lexically. Symlink
escapes are the I/O layer's job (it resolves and re-checks, see ``app.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# TUF consistent snapshots (docs/architecture.md, "Scale principles"): "N.<role>.json" is immutable
# once written; "timestamp.json" and an unversioned "root.json" change in place.
_METADATA_NAME = re.compile(
    r"(?:(?P<version>[0-9]{1,20})\.)?(?P<role>[a-z0-9][a-z0-9._-]{0,190})\.json"
)
# Content-addressed payloads are stored as "<sha256hex>.<filename>" (TUF target hash prefix).
_CONTENT_ADDRESSED = re.compile(r"(?P<digest>[0-9a-f]{64})\.[^/]+")

SnapshotReader = Callable[[int], bytes]  # snapshot version -> bytes of that snapshot

IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
MAX_SEGMENT_CHARS = 255  # characters; the usual file-name limit


@dataclass(frozen=True)
class MetadataName:
    """A valid metadata file name, e.g. ``3.snapshot.json`` or ``timestamp.json``."""

    role: str
    version: int | None

    @property
    def filename(self) -> str:
        """The file name under ``repo/metadata``."""
        prefix = "" if self.version is None else f"{self.version}."
        return f"{prefix}{self.role}.json"

    @property
    def cache_control(self) -> str:
        """Versioned files never change; unversioned ones must be revalidated every time."""
        return NO_CACHE if self.version is None else IMMUTABLE


def parse_metadata_name(name: str) -> MetadataName | None:
    """Return the parsed name, or None if ``name`` is not a servable metadata file name."""
    match = _METADATA_NAME.fullmatch(name)
    if match is None or ".." in name:
        return None
    version = match.group("version")
    return MetadataName(role=match.group("role"), version=None if version is None else int(version))


SNAPSHOT = "snapshot"


def is_committed(name: MetadataName, committed: Mapping[str, int] | None) -> bool:
    """Whether the committed catalog reaches ``name``, so it may be served (and cached).

    ``committed`` maps ``snapshot`` and every role the current snapshot lists to their
    versions (``committed_versions``); None when the catalog cannot be read. A versioned file
    above its role's committed version (or of a role not yet listed) is what a killed publish
    left: never served, so no cache keeps it. Root versions are committed by being written
    (clients walk them one by one), unversioned names are always current.
    """
    if name.version is None or name.role == "root":
        return True
    if committed is None:
        return False
    return name.version <= committed.get(name.role, 0)


def committed_versions(timestamp_json: bytes, read_snapshot: SnapshotReader) -> dict[str, int]:
    """``snapshot`` and each role of the snapshot ``timestamp_json`` names, to their version.

    Args:
        timestamp_json: The bytes of ``timestamp.json``.
        read_snapshot: Returns the bytes of ``<version>.snapshot.json``.

    Raises:
        ValueError: either file is not the metadata it should be.
    """
    snap_version = _meta_versions(timestamp_json).get(SNAPSHOT)
    if snap_version is None:
        raise ValueError("timestamp.json names no snapshot")
    versions = _meta_versions(read_snapshot(snap_version))
    versions[SNAPSHOT] = snap_version
    return versions


def _meta_versions(data: bytes) -> dict[str, int]:
    doc = json.loads(data)
    signed = doc.get("signed") if isinstance(doc, dict) else None
    meta = signed.get("meta") if isinstance(signed, dict) else None
    if not isinstance(meta, dict):
        raise ValueError("no meta")
    versions = {}
    for file_name, info in meta.items():
        version = info.get("version") if isinstance(info, dict) else None
        if not isinstance(file_name, str) or type(version) is not int:
            raise ValueError(f"bad meta entry {file_name!r}")
        versions[file_name.removesuffix(".json")] = version
    return versions


def split_target_path(path: str, *, max_chars: int) -> tuple[str, ...] | None:
    """Split a request path below ``/targets/`` into safe segments, or return None.

    Args:
        path: The percent-decoded path after ``/targets/``.
        max_chars: Upper bound on ``len(path)``.
    """
    if not path or len(path) > max_chars:
        return None
    segments = tuple(path.split("/"))
    if all(_is_plain_segment(s) for s in segments):
        return segments
    return None


def content_etag(filename: str) -> str | None:
    """The strong ETag of a content-addressed file name (the quoted SHA-256), else None."""
    match = _CONTENT_ADDRESSED.fullmatch(filename)
    return None if match is None else f'"{match.group("digest")}"'


def _is_plain_segment(segment: str) -> bool:
    return (
        0 < len(segment) <= MAX_SEGMENT_CHARS
        and not segment.startswith(".")  # also rejects "." and ".."
        and "\\" not in segment
        and all(ch >= " " and ch != "\x7f" for ch in segment)  # NUL and control characters
    )
