"""Which request names the service may serve, and how they may be cached. Pure: no I/O.

Invariants: a metadata name never contains a path separator or ``..``; a target path is a
sequence of plain segments (none empty, ``.``, ``..``, hidden, or holding ``\\``, NUL or
control characters), so joining it under ``repo/targets`` cannot climb out lexically. Symlink
escapes are the I/O layer's job (it resolves and re-checks, see ``app.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# TUF consistent snapshots (docs/architecture.md, "Scale principles"): "N.<role>.json" is immutable
# once written; "timestamp.json" and an unversioned "root.json" change in place.
_METADATA_NAME = re.compile(
    r"(?:(?P<version>[0-9]{1,20})\.)?(?P<role>[a-z0-9][a-z0-9._-]{0,190})\.json"
)
# Content-addressed payloads are stored as "<sha256hex>.<filename>" (TUF target hash prefix).
_CONTENT_ADDRESSED = re.compile(r"(?P<digest>[0-9a-f]{64})\.[^/]+")

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
