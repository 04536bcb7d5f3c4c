"""Writing the per-key index documents of one commit into the content store and the bins.

``keyindex.py`` decides which segments change; this module reads published segments from the
content store, writes the changed ones there, links them into the served tree and puts their
length and hash into the bin, which the commit then signs. Nothing here is visible to devices
until the repository commit moves the timestamp (repository.py).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tuf.api.metadata import TargetFile, Targets

from tidings.catalog.content import ContentStore
from tidings.catalog.keyindex import (
    MAX_SEGMENT_BYTES,
    MAX_SEGMENT_UPDATES,
    IndexEntry,
    Segment,
    SegmentFormatError,
    SegmentName,
    SegmentPolicy,
    append_updates,
    key_digest,
    key_documents,
    parse_segment,
    remove_updates,
    segment_document,
    segment_path,
)
from tidings.catalog.layout import Bin
from tidings.catalog.repository import GZIP_LEVEL, Session
from tidings.catalog.staging import write_staged
from tidings.errors import CatalogError
from tidings.fsutil import TooLargeError, read_bounded

GROUP_SYNC_KEYS = 64
"""Above this many changed keys in one commit (a bulk publish), documents are written without
per-file fsyncs and made durable by one ``os.sync`` before the commit can reference them."""


@dataclass
class _KeyChange:
    bin: Bin
    key: str
    added: list[IndexEntry] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)


class IndexEditor:
    """The index changes of one commit, applied to the session's bins by ``flush``."""

    def __init__(
        self, session: Session, content: ContentStore, targets_dir: Path, policy: SegmentPolicy
    ) -> None:
        self._session = session
        self._content = content
        self._targets_dir = targets_dir
        self._policy = policy
        self._changes: dict[tuple[str, str], _KeyChange] = {}
        self._durable = True
        self.documents_written = 0

    def add(self, bin_: Bin, key: str, entry: IndexEntry) -> None:
        """File ``entry`` under ``key`` (a ``key_text``) in ``bin_``."""
        self._change(bin_, key).added.append(entry)

    def remove(self, bin_: Bin, key: str, update_id: str) -> None:
        """Take ``update_id`` out of ``key``'s documents in ``bin_``."""
        self._change(bin_, key).removed.add(update_id)

    def flush(self) -> None:
        """Rewrite the changed segments and the bins' entries for them.

        Raises:
            CatalogError: a published segment is missing from the content store or damaged.
        """
        by_bin: dict[str, list[_KeyChange]] = {}
        for change in self._changes.values():
            by_bin.setdefault(change.bin.role, []).append(change)
        self._durable = len(self._changes) <= GROUP_SYNC_KEYS
        for changes in by_bin.values():
            bin_ = changes[0].bin
            signed = self._session.edit(bin_.role)
            published = key_documents(bin_.directory, signed.targets)
            for change in changes:
                self._apply(bin_, signed, published.get(key_digest(change.key), {}), change)
        if not self._durable:
            os.sync()  # every document durable before the commit's timestamp can name it
        # The served names are staged: the commit renames them and fsyncs their directories.
        self._changes.clear()

    def _change(self, bin_: Bin, key: str) -> _KeyChange:
        return self._changes.setdefault((bin_.role, key), _KeyChange(bin_, key))

    def _apply(
        self,
        bin_: Bin,
        signed: Targets,
        published: dict[tuple[int, int], TargetFile],
        change: _KeyChange,
    ) -> None:
        loaded: dict[tuple[int, int], tuple[IndexEntry, ...]] = {}

        def load(seg: Segment) -> tuple[IndexEntry, ...]:
            at = (seg.level, seg.number)
            if at not in loaded:
                name = SegmentName(key_digest(change.key), seg.level, seg.number)
                loaded[at] = self.read(published[at], name, change.key)
            return loaded[at]

        segments = [Segment(level, number) for level, number in sorted(published)]
        if change.removed:
            segments = remove_updates(segments, change.removed, load)
        segments = append_updates(segments, change.added, self._policy, load)
        kept: set[tuple[int, int]] = set()
        for seg in segments:
            kept.add((seg.level, seg.number))
            if seg.dirty:
                target = self._write(bin_, change.key, seg)
                signed.targets[target.path] = target
        for at, target in published.items():
            if at not in kept:
                del signed.targets[target.path]

    def read(self, target: TargetFile, name: SegmentName, key: str) -> tuple[IndexEntry, ...]:
        """A published segment's entries, from the content store."""
        return read_segment(self._content, target, name, key)[1]

    def _write(self, bin_: Bin, key: str, seg: Segment) -> TargetFile:
        data = segment_document(key, seg)
        if len(data) > MAX_SEGMENT_BYTES or len(seg.updates or ()) > MAX_SEGMENT_UPDATES:
            raise CatalogError(
                f"the index document {seg.level}.{seg.number} of {key} would hold "
                f"{len(data):,} bytes: over what devices accept ({MAX_SEGMENT_BYTES:,})"
            )
        sha = hashlib.sha256(data).hexdigest()
        self._content.add_bytes(data, sha, durable=self._durable)
        path = segment_path(bin_.directory, key, seg.level, seg.number)
        directory, _, name = path.rpartition("/")
        served = self._targets_dir / directory / f"{sha}.{name}"
        staged = self._content.stage_link(sha, served)
        if staged is not None:
            self._session.stage(served, staged)
        # Served to clients that accept gzip (app.py); devices still check the plain bytes.
        # A copy already served is kept: another zlib could compress to other bytes.
        gz_path = served.with_name(f"{served.name}.gz")
        if not _gzip_holds(gz_path, data):
            packed = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
            self._session.stage(gz_path, write_staged(gz_path, packed, durable=self._durable))
        self.documents_written += 1
        return TargetFile(len(data), {"sha256": sha}, path)


def _gzip_holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` is a whole gzip copy of ``data`` (read only when it exists)."""
    try:
        packed = read_bounded(path, MAX_SEGMENT_BYTES)
        return gzip.decompress(packed) == data
    except (OSError, TooLargeError, EOFError, zlib.error):
        return False


def read_segment(
    content: ContentStore, target: TargetFile, name: SegmentName, key: str | None = None
) -> tuple[str, tuple[IndexEntry, ...]]:
    """A published segment's key and entries, from the content store, hash-checked.

    Raises:
        CatalogError: missing, damaged, or not the document its name says.
    """
    sha = target.hashes.get("sha256", "")
    try:
        data = read_bounded(content.path_of(sha), MAX_SEGMENT_BYTES)
        if hashlib.sha256(data).hexdigest() != sha:
            raise SegmentFormatError("its content does not match its hash")
        return parse_segment(data, name, key)
    except (OSError, TooLargeError, SegmentFormatError) as e:
        raise CatalogError(f"index document {target.path} is unreadable: {e}") from e


def bin_documents(
    content: ContentStore, bin_: Bin, signed: Targets
) -> Iterator[tuple[str, tuple[IndexEntry, ...]]]:
    """Every (key, entries) document a bin lists, read from the content store."""
    for digest, segments in key_documents(bin_.directory, signed.targets).items():
        for (level, number), target in sorted(segments.items()):
            yield read_segment(content, target, SegmentName(digest, level, number))
