"""The TUF repository on disk: load the committed state, change roles, commit atomically.

Layout (docs/catalog.md): ``repo/metadata/`` holds ``N.root.json`` (plus ``root.json``, the
newest), ``N.<role>.json`` for snapshot and every targets role, and ``timestamp.json``.

Atomicity invariant (docs/architecture.md, "Scale principles"): versioned files are immutable
once referenced, and the only file ever replaced in place is ``timestamp.json``. A commit writes
and fsyncs every new versioned file first and replaces ``timestamp.json`` last, so a reader at
any moment sees the old complete catalog or the new one, and kill -9 at any point leaves the old
catalog valid. Writers are serialized by ``publish.lock``.

A published name never changes its bytes (caches and CDNs keep versioned files for a year):

* every new file of a commit (versioned metadata, index documents and payload links, their gzip
  copies) is written under a hidden staged name (staging.py) and renamed into place
  only at the commit, just before ``timestamp.json`` is replaced; a publish killed before that
  leaves only hidden files, which nothing serves (gc.py removes them);
* a version number is never reused: a role's (or the snapshot's) next version skips any
  ``N.<role>.json`` already on disk, which only a publish killed between those renames and the
  timestamp can leave; the service does not serve such a file (``service/committed.py``), and
  the commit that skips it removes it once the timestamp has moved past it.
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Role,
    Root,
    Snapshot,
    Targets,
    Timestamp,
)
from tuf.api.serialization import DeserializationError
from tuf.api.serialization.json import JSONSerializer

from tidings.canonical import canonical_bytes
from tidings.catalog.keys import KeyStore
from tidings.catalog.staging import write_staged
from tidings.clock import Clock
from tidings.errors import CatalogError, KeyStoreError, RollbackError
from tidings.fsutil import TooLargeError, atomic_write, file_lock, fsync_dir, read_bounded

SERIALIZER = JSONSerializer(compact=True)
MAX_METADATA_BYTES = 64 * 1024**2  # bytes; the writer refuses to read anything larger
LOCK_FILE = "publish.lock"  # in the data directory: publishers, re-signing and gc take turns
GROUP_SYNC_DIRECTORIES = 64  # above this many directories renamed into, one os.sync
GZIP_LEVEL = 6  # metadata is JSON: ~4x smaller on the wire for a few ms per commit


@dataclass(frozen=True)
class ExpiryPolicy:
    """How long each role's signature stays valid."""

    root: timedelta = timedelta(days=365)
    targets: timedelta = timedelta(days=365)  # targets, kind, vendor and bin roles
    definitions: timedelta = timedelta(days=14)  # definitions and its bins: short, frequent
    snapshot: timedelta = timedelta(days=7)
    timestamp: timedelta = timedelta(days=1)

    def for_role(self, role: str) -> timedelta:
        """The validity period of ``role``."""
        if role in ("root", "snapshot", "timestamp"):
            period: timedelta = getattr(self, role)
            return period
        if role == "definitions" or role.startswith("definitions."):
            return self.definitions
        return self.targets


@dataclass
class _Loaded:
    md: Metadata[Targets]
    dirty: bool = False
    new: bool = False  # created in this session: written as version 1, not bumped


@dataclass
class Session:
    """The committed catalog as loaded under the publish lock, plus pending changes."""

    repo: Repository
    root: Metadata[Root]
    snapshot: Metadata[Snapshot]
    timestamp: Metadata[Timestamp]
    initial: bool = False  # a brand-new catalog: root, snapshot and timestamp are version 1
    trusted_root: Role | None = None  # the root role as committed (None for a new catalog)
    signed_expiry: dict[str, datetime] = field(default_factory=dict)  # roles written, by commit
    _roles: dict[str, _Loaded] = field(default_factory=dict)
    _root_dirty: bool = False
    _staged: dict[Path, Path] = field(default_factory=dict)  # final name -> staged name
    _skipped: list[Path] = field(default_factory=list)  # versioned names a killed commit left

    def stage(self, final: Path, staged: Path) -> None:
        """Rename ``staged`` over ``final`` when this session commits (see module docstring)."""
        self._staged[final] = staged

    def discard_staged(self) -> None:
        """Remove what was staged but not committed (the publish failed or changed nothing)."""
        for staged in self._staged.values():
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()
        self._staged.clear()

    def role(self, name: str) -> Metadata[Targets]:
        """A targets role as committed (or as changed so far in this session).

        Raises:
            CatalogError: the role is not in the snapshot or its file is damaged.
        """
        if name not in self._roles:
            meta = self.snapshot.signed.meta.get(f"{name}.json")
            if meta is None:
                raise CatalogError(f"role {name!r} is not in the catalog")
            path = self.repo.metadata_dir / f"{meta.version}.{name}.json"
            self._roles[name] = _Loaded(self.repo.read_metadata(path, Targets))
        return self._roles[name].md

    def has_role(self, name: str) -> bool:
        """Whether ``name`` is in the catalog (committed or added in this session)."""
        return name in self._roles or f"{name}.json" in self.snapshot.signed.meta

    def edit(self, name: str) -> Targets:
        """The signed part of a role, marked to be re-signed on commit."""
        md = self.role(name)
        self._roles[name].dirty = True
        return md.signed

    def add_role(self, name: str) -> Targets:
        """A new, empty targets role, to be written as version 1 on commit."""
        if self.has_role(name):
            raise CatalogError(f"role {name!r} already exists")
        md = Metadata(Targets(version=1, expires=self.repo.clock.now()))
        self._roles[name] = _Loaded(md, dirty=True, new=True)
        return md.signed

    def edit_root(self) -> Root:
        """The signed root, to be written as a new root version on commit."""
        self._root_dirty = True
        return self.root.signed

    @property
    def changed(self) -> bool:
        """Whether anything would be committed."""
        return self._root_dirty or any(r.dirty for r in self._roles.values())

    def dirty_roles(self) -> list[str]:
        """Names of the targets roles changed in this session."""
        return [name for name, r in self._roles.items() if r.dirty]


class Repository:
    """The TUF repository of one data directory."""

    def __init__(
        self,
        data_dir: Path,
        *,
        keys: KeyStore,
        clock: Clock,
        expiry: ExpiryPolicy | None = None,
        on_lock_wait: Callable[[Path], None] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.on_lock_wait = on_lock_wait  # called with the lock's path if another writer has it
        self.metadata_dir = data_dir / "repo" / "metadata"
        self.targets_dir = data_dir / "repo" / "targets"
        self.keys = keys
        self.clock = clock
        self.expiry = expiry or ExpiryPolicy()
        self.bytes_written = 0  # metadata bytes written by commits of this object

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialize writers across processes (publishers and the service's re-signer)."""
        with file_lock(self.data_dir / LOCK_FILE, on_wait=self.on_lock_wait):
            yield

    def require_root_quorum(
        self, trusted: Role | None, new: Role, *, doing: str = "this change"
    ) -> None:
        """Refuse unless the root keys present can sign a new root that devices accept.

        Client workflow 5.3.4: a new root must carry a threshold of signatures from the keys of
        the trusted root *and* from those of the new root. A root signed by fewer would be
        written, and every device would stop at it for good: they must walk through each root
        version in turn, so adding keys later cannot repair it.

        Raises:
            KeyStoreError: too few of either set of root keys are in ``keys/root``.
        """
        present: set[str] = set()
        if self.keys.has("root"):
            present = {k.keyid for k in self.keys.public_keys("root")}
        for role in (trusted, new):
            if role is None:
                continue
            have = len(present & set(role.keyids))
            if have < role.threshold:
                verb = "is" if have == 1 else "are"
                raise KeyStoreError(
                    f"{doing} needs a new root signed by {role.threshold} root keys; {have} of "
                    f"them {verb} in {self.keys.root / 'root'}: bring the offline root keys back "
                    "(see docs/operations.md) and run again"
                )

    def read_metadata(self, path: Path, kind: type[Any]) -> Metadata[Any]:
        """Load one of our own metadata files, bounded and type-checked.

        Raises:
            CatalogError: missing, too large, or not metadata of the expected type.
        """
        try:
            data = read_bounded(path, MAX_METADATA_BYTES)
        except FileNotFoundError as e:
            raise CatalogError(f"{path} is missing: is this a Tidings data directory?") from e
        except (OSError, TooLargeError) as e:
            raise CatalogError(f"cannot read {path}: {e}") from e
        try:
            md: Metadata[Any] = Metadata.from_bytes(data)
        except DeserializationError as e:
            raise CatalogError(f"{path} is damaged: {e}") from e
        if not isinstance(md.signed, kind):
            raise CatalogError(f"{path} is not {kind.type} metadata")
        return md

    def open(self) -> Session:
        """Load the committed state; call with the lock held.

        Raises:
            CatalogError: the data directory holds no catalog, or a file is damaged.
        """
        root = self.read_metadata(self.metadata_dir / "root.json", Root)
        timestamp = self.read_metadata(self.metadata_dir / "timestamp.json", Timestamp)
        snap_version = timestamp.signed.snapshot_meta.version
        snapshot = self.read_metadata(self.metadata_dir / f"{snap_version}.snapshot.json", Snapshot)
        trusted = copy.deepcopy(root.signed.roles["root"])
        return Session(self, root, snapshot, timestamp, trusted_root=trusted)

    def commit(self, session: Session) -> None:
        """Sign and write every changed role, a new snapshot and, last, the timestamp.

        Raises:
            KeyStoreError: a needed signing key is missing, or too few root keys are present to
                sign a new root version (nothing is written then).
            RollbackError: the state on disk moved on under us (a writer without the lock).
        """
        now = self.clock.now()
        if session._root_dirty:
            root = session.root
            self.require_root_quorum(session.trusted_root, root.signed.roles["root"])
            data = self._sign("root", root, now, bump=not session.initial)
            atomic_write(self.metadata_dir / f"{root.signed.version}.root.json", data)
            atomic_write(self.metadata_dir / "root.json", data)
            session._root_dirty = False
        snapshot = session.snapshot.signed
        for name in session.dirty_roles():
            loaded = session._roles[name]
            data = self._sign(name, loaded.md, now, bump=not loaded.new, skip=session._skipped)
            version = loaded.md.signed.version
            self._write_versioned(session, f"{version}.{name}.json", data)
            snapshot.meta[f"{name}.json"] = _meta_file(version, data)
            loaded.dirty = loaded.new = False
            session.signed_expiry[name] = loaded.md.signed.expires
        self._write_snapshot_and_timestamp(session, now)

    def _write_versioned(self, session: Session, name: str, data: bytes) -> None:
        """Stage one immutable metadata file and its gzip copy (served to clients that accept
        it); the commit renames them into place just before the timestamp moves."""
        path = self.metadata_dir / name
        packed = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
        session.stage(path, write_staged(path, data))
        gz_path = path.with_name(f"{name}.gz")
        session.stage(gz_path, write_staged(gz_path, packed))

    def _publish_staged(self, session: Session) -> None:
        """Rename every staged file into place and make the renames durable."""
        directories = {self.metadata_dir}
        for final, staged in session._staged.items():
            os.replace(staged, final)
            directories.add(final.parent)
        session._staged.clear()
        if len(directories) > GROUP_SYNC_DIRECTORIES:
            os.sync()  # a bulk publish touches hundreds of bin directories: one sync for all
            return
        for directory in directories:
            fsync_dir(directory)

    def refresh_timestamp(self, session: Session, *, with_snapshot: bool = False) -> None:
        """Re-sign the online roles before they expire (the service does this on a schedule)."""
        self._write_snapshot_and_timestamp(session, self.clock.now(), snapshot=with_snapshot)

    def _write_snapshot_and_timestamp(
        self, session: Session, now: datetime, *, snapshot: bool = True
    ) -> None:
        if snapshot:
            snap_md = session.snapshot
            data = self._sign(
                "snapshot", snap_md, now, bump=not session.initial, skip=session._skipped
            )
            self._write_versioned(session, f"{snap_md.signed.version}.snapshot.json", data)
            session.timestamp.signed.snapshot_meta = _meta_file(snap_md.signed.version, data)
        # Every file the new timestamp leads to must be in place and durable before it is.
        self._publish_staged(session)
        ts_md = session.timestamp
        data = self._sign("timestamp", ts_md, now, bump=not session.initial)
        session.initial = False
        ts_path = self.metadata_dir / "timestamp.json"
        if ts_path.exists():
            on_disk = self.read_metadata(ts_path, Timestamp)
            if on_disk.signed.version >= ts_md.signed.version:
                raise RollbackError("timestamp.json changed under the publish lock")
        atomic_write(ts_path, data)
        # Committed past them: no later version can take those numbers, and nothing lists them.
        for skipped in session._skipped:
            for path in (skipped, skipped.with_name(f"{skipped.name}.gz")):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        session._skipped.clear()

    def _sign(
        self,
        name: str,
        md: Metadata[Any],
        now: datetime,
        *,
        bump: bool = True,
        skip: list[Path] | None = None,
    ) -> bytes:
        """Sign ``md`` (a new version if ``bump``). With ``skip``, a versioned file: a version
        whose name a killed commit left on disk is skipped, never reused, and listed there."""
        if bump:
            md.signed.version += 1
        while skip is not None:
            taken = self.metadata_dir / f"{md.signed.version}.{name}.json"
            if not (taken.exists() or taken.with_name(f"{taken.name}.gz").exists()):
                break
            skip.append(taken)
            md.signed.version += 1
        md.signed.expires = _whole_seconds(now + self.expiry.for_role(name))
        md.signatures.clear()
        payload = canonical_bytes(md.signed.to_dict())
        # Root is signed by every root key present: during a rotation, old and new alike.
        for signer in self.keys.signers(name):
            signature = signer.sign(payload)
            md.signatures[signature.keyid] = signature
        data = md.to_bytes(SERIALIZER)
        self.bytes_written += len(data)
        return data


def _meta_file(version: int, data: bytes) -> MetaFile:
    # Lengths and hashes on every entry: the client then needs no generous default caps.
    return MetaFile(version, len(data), {"sha256": hashlib.sha256(data).hexdigest()})


def _whole_seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)
