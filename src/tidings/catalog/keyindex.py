"""Per-key index documents: how a bin points at the updates of each of its keys (pure).

A bin (a TUF role, docs/catalog.md) lists, for every index key it holds, that key's
*segments*: target files ``<bin dir>/<digest>.<level>.<number>.json`` whose length and SHA-256
the bin signs. ``digest`` is the first 32 hex digits of the SHA-256 of the key text
(``apps:contoso-notes``). A segment is a JSON document of whole manifests::

    {"key": "apps:contoso-notes", "level": 0, "segment": 3,
     "updates": [{"manifest": {...}, "payload_dir": "apps/0a"}, ...]}

so a device fetches only the documents of its own keys, each pinned by a signature it already
checked, and an unchanged document (same hash) is never fetched or parsed twice.

Segments form a small log-structured merge tree per key, so that publishing and scanning stay
cheap however long a key's history grows:

* a new update goes into the key's *open* segment: the newest level-0 segment while it holds
  fewer than ``policy.segment_updates`` updates; otherwise a new open segment is started;
* when ``policy.fanout`` sealed segments share a level, they merge into one segment of the next
  level, up to ``policy.top_level`` (4,096 updates by default), whose segments stay as they
  are: a key with n updates has O(fanout x top_level + n / 4,096) segments, each update is
  rewritten at most top_level times, and no document grows past a few megabytes (a merge is
  a download spike for every device holding the key);
* a new revision or a revocation removes the update from whichever segment holds it.

An incremental publish therefore rewrites one small segment (rarely a merge) plus the entries
of its bin, and an incremental scan fetches exactly the segments whose hash changed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

T = TypeVar("T")
DIGEST_CHARS = 32  # hex digits of SHA-256 naming a key's documents (128 bits)
MAX_SEGMENT_BYTES = 48 * 1024**2  # bytes; a device refuses a bin that lists a larger segment
MAX_SEGMENT_UPDATES = 100_000  # updates in one document, as a parser limit
_NAME_RE = re.compile(rf"([0-9a-f]{{{DIGEST_CHARS}}})\.([0-9]{{1,2}})\.([0-9]{{1,9}})\.json")


@dataclass(frozen=True)
class SegmentPolicy:
    """Sizes of the per-key merge tree."""

    segment_updates: int = 64  # updates in a level-0 segment before it is sealed
    fanout: int = 8  # sealed segments of one level that merge into one of the next
    top_level: int = 2  # segments of this level never merge again: 4,096 updates, ~6 MB


@dataclass(frozen=True)
class SegmentName:
    """Which document of which key a target path names."""

    digest: str
    level: int
    number: int


@dataclass(frozen=True)
class IndexEntry:
    """One update in a key's document: its signed manifest and where its payloads are."""

    update_id: str
    manifest: dict[str, Any]  # the manifest as JSON (tidings.manifest.codec)
    payload_dir: str  # the bin directory holding its payload targets (its home bin)

    def to_json(self) -> dict[str, Any]:
        """The entry as it appears in the document."""
        return {"manifest": self.manifest, "payload_dir": self.payload_dir}


@dataclass(frozen=True)
class Segment:
    """One document of a key, as the planner sees it.

    ``updates`` is None while the segment has not been read (it stays as published); a
    segment the planner changed or created is ``dirty`` and must be written.
    """

    level: int
    number: int
    updates: tuple[IndexEntry, ...] | None = None
    dirty: bool = False


Loader = Callable[[Segment], tuple[IndexEntry, ...]]
"""Reads a published segment's updates (from the content store, or the network)."""


class SegmentFormatError(ValueError):
    """A segment document is not what its name and bin promise."""


def key_digest(key: str) -> str:
    """The name part shared by every document of ``key`` (a ``key_text``)."""
    return hashlib.sha256(key.encode()).hexdigest()[:DIGEST_CHARS]


def segment_path(directory: str, key: str, level: int, number: int) -> str:
    """Target path of one document of ``key`` in the bin directory ``directory``."""
    return f"{directory}/{key_digest(key)}.{level}.{number}.json"


def parse_segment_path(path: str, directory: str) -> SegmentName | None:
    """The segment a target path of bin ``directory`` names, or None for any other path."""
    prefix = f"{directory}/"
    if not path.startswith(prefix):
        return None
    match = _NAME_RE.fullmatch(path[len(prefix) :])
    if match is None:
        return None
    return SegmentName(match.group(1), int(match.group(2)), int(match.group(3)))


def key_documents(directory: str, targets: Mapping[str, T]) -> dict[str, dict[tuple[int, int], T]]:
    """A bin's index documents (its targets in bin ``directory``) by key digest, then by
    (level, number); any other target is not an index document and is left out."""
    found: dict[str, dict[tuple[int, int], T]] = {}
    for path, target in targets.items():
        name = parse_segment_path(path, directory)
        if name is not None:
            found.setdefault(name.digest, {})[(name.level, name.number)] = target
    return found


def segment_document(key: str, segment: Segment) -> bytes:
    """The bytes of a segment (deterministic: equal content gives an equal hash)."""
    assert segment.updates is not None
    doc = {
        "key": key,
        "level": segment.level,
        "segment": segment.number,
        "updates": [entry.to_json() for entry in segment.updates],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def parse_segment(
    data: bytes, name: SegmentName, key: str | None = None
) -> tuple[str, tuple[IndexEntry, ...]]:
    """The key and entries of a segment document, checked against the name that led to it.

    Only the document's shape is checked here; each manifest is validated by whoever uses it.

    Raises:
        SegmentFormatError: not JSON, another key's (or not ``key``'s) or another segment's
            document, or malformed.
    """
    if len(data) > MAX_SEGMENT_BYTES:
        raise SegmentFormatError(f"a segment of {len(data)} bytes is over the limit")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise SegmentFormatError(f"not JSON: {e}") from e
    found = doc.get("key") if isinstance(doc, dict) else None
    if not isinstance(found, str) or key_digest(found) != name.digest or key not in (None, found):
        raise SegmentFormatError(f"not a document of key {key or name.digest!r}")
    if doc.get("level") != name.level or doc.get("segment") != name.number:
        raise SegmentFormatError("level or number differs from its name")
    updates = doc.get("updates")
    if not isinstance(updates, list) or len(updates) > MAX_SEGMENT_UPDATES:
        raise SegmentFormatError("no list of updates, or too many")
    entries = []
    for item in updates:
        manifest = item.get("manifest") if isinstance(item, dict) else None
        payload_dir = item.get("payload_dir") if isinstance(item, dict) else None
        update_id = manifest.get("id") if isinstance(manifest, dict) else None
        if not (isinstance(update_id, str) and isinstance(payload_dir, str)):
            raise SegmentFormatError("an update lacks its manifest id or payload_dir")
        entries.append(IndexEntry(update_id, manifest, payload_dir))  # type: ignore[arg-type]
    return found, tuple(entries)


def remove_updates(segments: Sequence[Segment], ids: set[str], load: Loader) -> list[Segment]:
    """``segments`` without the updates ``ids``; emptied segments disappear."""
    out = []
    for seg in segments:
        updates = seg.updates if seg.updates is not None else load(seg)
        kept = tuple(e for e in updates if e.update_id not in ids)
        if len(kept) == len(updates):
            out.append(seg)
        elif kept:
            out.append(replace(seg, updates=kept, dirty=True))
    return out


def append_updates(
    segments: Sequence[Segment], entries: Iterable[IndexEntry], policy: SegmentPolicy, load: Loader
) -> list[Segment]:
    """``segments`` with ``entries`` appended to the open segment (and new ones), then merged."""
    out = list(segments)
    new = list(entries)
    if not new:
        return out
    size = policy.segment_updates
    level0 = [i for i, s in enumerate(out) if s.level == 0]
    if level0:
        i = max(level0, key=lambda j: out[j].number)
        open_seg = out[i]
        updates = open_seg.updates if open_seg.updates is not None else load(open_seg)
        room = size - len(updates)
        if room > 0:
            out[i] = replace(open_seg, updates=updates + tuple(new[:room]), dirty=True)
            new = new[room:]
    number = _next_number(out)
    for start in range(0, len(new), size):
        out.append(Segment(0, number, tuple(new[start : start + size]), dirty=True))
        number += 1
    return merge_sealed(out, policy, load)


def merge_sealed(segments: Sequence[Segment], policy: SegmentPolicy, load: Loader) -> list[Segment]:
    """Merge every ``fanout`` sealed segments of a level into one of the next level."""
    out = list(segments)
    level = 0
    while level < policy.top_level and any(s.level >= level for s in out):
        sealed = sorted(
            (s for s in out if s.level == level and _sealed(s, out, policy, load)),
            key=lambda s: s.number,
        )
        while len(sealed) >= policy.fanout:
            group, sealed = sealed[: policy.fanout], sealed[policy.fanout :]
            merged: list[IndexEntry] = []
            for seg in group:
                merged += seg.updates if seg.updates is not None else load(seg)
            gone = {(s.level, s.number) for s in group}
            out = [s for s in out if (s.level, s.number) not in gone]
            out.append(Segment(level + 1, _next_number(out + group), tuple(merged), dirty=True))
        level += 1
    return out


def _sealed(seg: Segment, all_segments: list[Segment], policy: SegmentPolicy, load: Loader) -> bool:
    """Every segment is sealed except the open one: the newest level-0 one while not full."""
    if seg.level != 0:
        return True
    newest = max(s.number for s in all_segments if s.level == 0)
    if seg.number != newest:
        return True
    updates = seg.updates if seg.updates is not None else load(seg)
    return len(updates) >= policy.segment_updates


def _next_number(segments: Sequence[Segment]) -> int:
    return max((s.number for s in segments), default=-1) + 1
