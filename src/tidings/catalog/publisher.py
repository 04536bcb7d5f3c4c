"""Publishing: put update revisions into the catalog, revoke them, keep online roles fresh.

Payloads are hashed and stored before the publish lock is taken (content-addressed, so
concurrent publishers cannot collide); the metadata change itself is one repository commit
under the lock (see repository.py for the atomicity argument).
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from tidings.catalog.config import CatalogConfig
from tidings.catalog.content import ContentStore
from tidings.catalog.create import add_bins
from tidings.catalog.delegation import delegate
from tidings.catalog.entries import (
    StagedPayload,
    json_document,
    manifest_document,
    payload_path,
    pieces_path,
)
from tidings.catalog.index import filing, parse_key_text
from tidings.catalog.indexer import IndexEditor, bin_documents
from tidings.catalog.keyindex import IndexEntry, SegmentPolicy
from tidings.catalog.keys import KeyStore
from tidings.catalog.layout import Bin, bin_of_role
from tidings.catalog.lookup import Located, Lookup
from tidings.catalog.repository import Repository, Session
from tidings.clock import Clock, SystemClock
from tidings.errors import CatalogError
from tidings.manifest import AuthoredManifest, PayloadFile, UpdateManifest, manifest_to_dict

Progress = Callable[[int, int], None]  # (bytes hashed, bytes to hash) of the payloads


@dataclass(frozen=True)
class Prepared:
    """An update revision whose files are in the content store, ready to be committed."""

    manifest: UpdateManifest
    document: bytes  # the manifest target's bytes
    document_sha256: str
    payloads: tuple[StagedPayload, ...]


@dataclass(frozen=True)
class PublishResult:
    """What one publish did to one update."""

    update_id: str
    revision: int
    bins: tuple[str, ...]  # the first is the update's home
    keys: tuple[str, ...]  # index keys (``family:key``) it is filed under
    previous_revision: int | None
    unchanged: bool = False  # the same revision with the same content was already published


class Publisher:
    """Publishing operations on one data directory."""

    def __init__(
        self,
        data_dir: Path,
        *,
        clock: Clock | None = None,
        segments: SegmentPolicy | None = None,
        on_lock_wait: Callable[[Path], None] | None = None,
    ) -> None:
        """``on_lock_wait`` is called with the lock's path when another publish, gc or
        re-signing holds it (so a command can say why it waits)."""
        self.data_dir = data_dir
        self.segments = segments or SegmentPolicy()
        self.config = CatalogConfig.load(data_dir)
        self.layout = self.config.layout
        self.keys = KeyStore(data_dir / "keys")
        self.repo = Repository(
            data_dir,
            keys=self.keys,
            clock=clock or SystemClock(),
            expiry=self.config.expiry,
            on_lock_wait=on_lock_wait,
        )
        self.content = ContentStore(data_dir / "content")

    def prepare(
        self, authored: AuthoredManifest, *, on_bytes: Callable[[int], None] | None = None
    ) -> Prepared:
        """Hash and store the payloads and the manifest document (no lock needed).

        ``on_bytes`` is called with each chunk's size as payload bytes are hashed.

        Raises:
            PayloadError: a payload is unreadable or not what the manifest says.
        """
        staged: list[StagedPayload] = []
        for src in authored.payload_sources:
            stored = self.content.add_file(
                src.path,
                piece_size=src.piece_size,
                expected_sha256=src.sha256,
                expected_size=src.size,
                on_bytes=on_bytes,
            )
            assert stored.piece_map is not None
            map_bytes = stored.piece_map.to_bytes()
            map_sha = hashlib.sha256(map_bytes).hexdigest()
            self.content.add_bytes(map_bytes, map_sha)
            staged.append(
                StagedPayload(
                    src.name, stored.sha256, stored.size, src.piece_size, map_sha, len(map_bytes)
                )
            )
        payload_files = tuple(
            PayloadFile(
                name=p.name,
                size=p.size,
                sha256=p.sha256,
                piece_size=p.piece_size,
                piece_map_sha256=p.piece_map_sha256,
                piece_map_size=p.piece_map_size,
            )
            for p in staged
        )
        manifest = replace(authored.manifest, payloads=payload_files)
        document = manifest_document(manifest)
        doc_sha = hashlib.sha256(document).hexdigest()
        self.content.add_bytes(document, doc_sha)
        return Prepared(manifest, document, doc_sha, tuple(staged))

    def publish(self, authored: AuthoredManifest) -> PublishResult:
        """Publish one update revision (new update, new revision, or superseding update)."""
        return self.publish_many([authored])[0]

    def publish_many(
        self, items: Sequence[AuthoredManifest], *, progress: Progress | None = None
    ) -> list[PublishResult]:
        """Publish several update revisions in one atomic commit.

        ``progress`` is called as payloads are hashed with (bytes hashed, bytes to hash):
        large payloads dominate the wait, so bytes rather than manifests measure it.

        Raises:
            CatalogError: a revision is not newer than the published one, or an id repeats.
            PayloadError: a payload is unreadable or not what its manifest says.
        """
        check_distinct_ids(items)  # before any payload is hashed
        total = _payload_bytes(items)
        done = 0

        def hashed(size: int) -> None:
            nonlocal done
            done += size
            if progress:
                progress(done, max(total, done))

        prepared = [self.prepare(item, on_bytes=hashed) for item in items]
        return self.commit_prepared(prepared)

    def commit_prepared(self, prepared: Sequence[Prepared]) -> list[PublishResult]:
        """Commit already prepared update revisions in one atomic change."""
        ids = [p.manifest.id for p in prepared]
        if len(set(ids)) != len(ids):
            raise CatalogError("the same update id appears twice in one publish")
        with self.repo.lock():
            session = self.repo.open()
            lookup = self._lookup(session)
            try:
                index = self._index(session)
                results, rows = [], []
                for p in prepared:
                    result, row = self._apply(session, index, lookup.get(p.manifest.id), p)
                    results.append(result)
                    if row is not None:
                        rows.append(row)
                index.flush()
                if session.changed:
                    self.repo.commit(session)
                    lookup.record(rows, session.snapshot.signed.version, session.signed_expiry)
                return results
            finally:
                session.discard_staged()
                lookup.close()

    def revoke(self, update_id: str) -> Located:
        """Withdraw an update: devices are no longer offered it (expire/revoke).

        ``update_id`` is a UUID in any case or spelling ``uuid.UUID`` reads.

        Raises:
            CatalogError: not a UUID, no such update, or already revoked.
        """
        update_id = normalized_update_id(update_id)
        with self.repo.lock():
            session = self.repo.open()
            lookup = self._lookup(session)
            try:
                located = lookup.get(update_id)
                if located is None:
                    raise CatalogError(f"no update {update_id} in this catalog")
                if located.state != "published":
                    raise CatalogError(
                        f"update {update_id} is already revoked (revision {located.revision})"
                    )
                index = self._index(session)
                self._unfile(index, located)
                index.flush()
                self.repo.commit(session)
                revoked = replace(located, state="revoked")
                lookup.record([revoked], session.snapshot.signed.version, session.signed_expiry)
                return revoked
            finally:
                session.discard_staged()
                lookup.close()

    def updates(self) -> list[Located]:
        """Every update the catalog knows, published or revoked."""
        with self.repo.lock():
            session = self.repo.open()
            lookup = self._lookup(session)
            try:
                return list(lookup.all())
            finally:
                lookup.close()

    def refresh_online(self, *, margin: float = 0.5) -> list[str]:
        """Re-sign every role once less than ``margin`` of its validity is left.

        Timestamp and snapshot use the service's online keys. Other roles (the short-lived
        definitions bins above all) are re-signed when their key is in this data directory,
        as in the embedded setup; with offline keys they are reported instead, and their
        publisher re-signs them. Returns what was re-signed and what could not be.
        """
        now = self.repo.clock.now()
        expiry = self.config.expiry
        with self.repo.lock():
            session = self.repo.open()
            lookup = self._lookup(session)
            try:
                done, offline = [], []
                for role, expires in sorted(lookup.role_expiry().items()):
                    if not _due(expires - now, expiry.for_role(role), margin):
                        continue
                    if self.keys.has(role):
                        session.edit(role)
                        done.append(role)
                    else:
                        offline.append(f"{role} (key offline: expires {expires.isoformat()})")
                snap_due = _due(session.snapshot.signed.expires - now, expiry.snapshot, margin)
                ts_due = _due(session.timestamp.signed.expires - now, expiry.timestamp, margin)
                if session.changed:
                    self.repo.commit(session)
                    lookup.record([], session.snapshot.signed.version, session.signed_expiry)
                    return [*done, "snapshot", "timestamp", *offline]
                if snap_due or ts_due:
                    self.repo.refresh_timestamp(session, with_snapshot=snap_due)
                    lookup.record([], session.snapshot.signed.version)
                    done += ["snapshot", "timestamp"] if snap_due else ["timestamp"]
                return done + offline
            finally:
                lookup.close()

    def _apply(
        self, session: Session, index: IndexEditor, prev: Located | None, p: Prepared
    ) -> tuple[PublishResult, Located | None]:
        m = p.manifest
        if prev is not None:
            same = prev.revision == m.revision and prev.manifest_sha256 == p.document_sha256
            if same and prev.state == "published":
                result = PublishResult(m.id, m.revision, prev.bins, prev.keys, prev.revision, True)
                return result, None
            if prev.revision >= m.revision:
                raise CatalogError(
                    f"update {m.id} revision {prev.revision} is already published: "
                    f"give this one revision {prev.revision + 1} or higher"
                )
            if prev.state == "published":
                self._unfile(index, prev)
        filed = filing(m, self.layout)
        bins = list(filed)
        if not bins:
            raise CatalogError(f"update {m.id}: its applicability gives no index key")
        vendors = {b.family for b in bins if b.family.startswith("vendor.")}
        if len(vendors) > 1:  # devices accept a vendor's drivers only for its own hardware
            names = ", ".join(sorted(v.removeprefix("vendor.") for v in vendors))
            raise CatalogError(
                f"driver {m.id} names hardware of several vendors ({names}): publish one per vendor"
            )
        self._ensure_bins(session, bins)
        home = bins[0].directory
        entry = IndexEntry(m.id, manifest_to_dict(m), home)
        for bin_, keys in filed.items():
            for key in keys:
                index.add(bin_, key, entry)
        for staged in p.payloads:
            self._link(session, payload_path(home, m.id, staged.name), staged.sha256)
            self._link(session, pieces_path(home, m.id, staged.name), staged.piece_map_sha256)
        row = Located(
            m.id,
            m.revision,
            m.kind.value,
            m.title,
            tuple(b.role for b in bins),
            tuple(k for keys in filed.values() for k in keys),
            p.document_sha256,
            "published",
        )
        previous = prev.revision if prev else None
        return PublishResult(m.id, m.revision, row.bins, row.keys, previous), row

    def _index(self, session: Session) -> IndexEditor:
        return IndexEditor(session, self.content, self.repo.targets_dir, self.segments)

    def _link(self, session: Session, target_path: str, sha256: str) -> None:
        directory, _, name = target_path.rpartition("/")
        served = self.repo.targets_dir / directory / f"{sha256}.{name}"
        staged = self.content.stage_link(sha256, served)
        if staged is not None:  # served from the commit on (repository.py)
            session.stage(served, staged)

    def _ensure_bins(self, session: Session, bins: list[Bin]) -> None:
        for family in dict.fromkeys(b.family for b in bins):
            if session.has_role(family):
                continue
            if not self.keys.has(family):
                self.keys.generate(family)
            drivers = session.edit("drivers")
            delegate(
                drivers,
                family,
                self.keys.public_keys(family),
                self.layout.vendor_paths(family.split(".", 1)[1]),
            )
            family_md = session.add_role(family)
            add_bins(session, family_md, family, self.keys, self.layout)

    def _unfile(self, index: IndexEditor, located: Located) -> None:
        """Take a published update out of every key document that lists it."""
        for text in located.keys:
            key = parse_key_text(text)
            index.remove(self.layout.family(key.family).bin_for_key(key.key), text, located.id)

    def _scan_catalog(self, session: Session) -> list[Located]:
        """Rebuild the lookup table from the signed metadata (after a crash or on first use)."""
        found: dict[str, Located] = {}
        for meta_name in session.snapshot.signed.meta:
            role = meta_name.removesuffix(".json")
            try:
                bin_ = bin_of_role(role, self.layout)
            except ValueError:
                continue  # only bins hold entries
            for key, entries in bin_documents(self.content, bin_, session.role(role).signed):
                for entry in entries:
                    found[entry.update_id] = _with_key(found.get(entry.update_id), entry, bin_, key)
        return list(found.values())

    def _lookup(self, session: Session) -> Lookup:
        lookup = Lookup(self.data_dir / "catalog.db")
        version = session.snapshot.signed.version
        if lookup.snapshot_version() != version:
            role_expiry = {
                name.removesuffix(".json"): session.role(name.removesuffix(".json")).signed.expires
                for name in session.snapshot.signed.meta
            }
            lookup.replace_all(self._scan_catalog(session), version, role_expiry)
        return lookup


def _with_key(seen: Located | None, entry: IndexEntry, bin_: Bin, key: str) -> Located:
    """The lookup row of ``entry`` once also found under ``key`` in ``bin_``."""
    doc = entry.manifest
    bins = seen.bins if seen else ()
    if bin_.role not in bins:
        home = entry.payload_dir == bin_.directory
        bins = (bin_.role, *bins) if home else (*bins, bin_.role)
    document = json_document(doc)
    return Located(
        entry.update_id,
        int(doc.get("revision", 0)),
        str(doc.get("kind", "")),
        str(doc.get("title", "")),
        bins,
        (*(seen.keys if seen else ()), key),
        hashlib.sha256(document).hexdigest(),
        "published",
    )


def normalized_update_id(text: str) -> str:
    """``text`` as the canonical lowercase UUID manifests use.

    Raises:
        CatalogError: ``text`` is not a UUID.
    """
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        raise CatalogError(
            f"{text!r} is not an update id: give its UUID as `tidings updates` lists it"
        ) from None


def check_distinct_ids(
    items: Sequence[AuthoredManifest], names: Sequence[str] | None = None
) -> None:
    """One revision per update in a publish; else name the id and both manifests.

    ``names`` are how to call the manifests (the paths a user gave); by default their file names.

    Raises:
        CatalogError: two manifests carry the same update id.
    """
    seen: dict[str, str] = {}
    for item, name in zip(items, names or [i.source for i in items], strict=True):
        update_id = item.manifest.id
        if update_id in seen:
            raise CatalogError(
                f"update {update_id} is in two manifests of this publish, {seen[update_id]} and "
                f"{name}: publish one revision of an update at a time"
            )
        seen[update_id] = name


def _due(left: timedelta, period: timedelta, margin: float) -> bool:
    return left < period * margin


def _payload_bytes(items: Sequence[AuthoredManifest]) -> int:
    """The bytes ``items`` will hash, as the file system reports them now (for progress only)."""
    total = 0
    for item in items:
        for src in item.payload_sources:
            with contextlib.suppress(OSError):  # prepare() names an unreadable payload
                total += src.path.stat().st_size
    return total
