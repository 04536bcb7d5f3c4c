"""A device's verified view of the catalog: python-tuf's Updater, loading only chosen bins.

The Updater does the whole TUF client workflow (root rotation, timestamp, snapshot, rollback
and freeze checks, signatures, delegations). On top of it this module reads the bins a
device's inventory selects (docs/catalog.md) and, from each, the index documents of the
device's own keys (catalog/keyindex.py): python-tuf downloads each as a target, checking the
length and SHA-256 the verified bin signs, and keeps it on disk.

Incremental scans (docs/architecture.md, "Scale principles"): python-tuf keeps verified metadata on
disk and downloads a role only when the snapshot names a new version, and a document only when its
hash is new. Within one process the reader also keeps every bin it verified, keyed by the bin's
SHA-256 *as pinned by the verified snapshot* and by its delegator's SHA-256, and every document it
parsed, by its SHA-256, so unchanged ones are neither re-verified nor re-parsed: the snapshot's
signature still vouches for every byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tuf.api import exceptions as tuf_exceptions
from tuf.api.metadata import TargetFile, Targets
from tuf.ngclient import Updater, UpdaterConfig
from tuf.ngclient.fetcher import FetcherInterface

from tidings.canonical import use_fast_canonical_json
from tidings.catalog.keyindex import (
    MAX_SEGMENT_BYTES,
    IndexEntry,
    SegmentFormatError,
    SegmentName,
    key_digest,
    key_documents,
    parse_segment,
)
from tidings.catalog.layout import (
    BINS_FIELD,
    VENDOR_PREFIX,
    Bin,
    Family,
    family_kind,
    family_of,
    hardware_namespace,
    normalize_hardware_id,
)
from tidings.errors import DeadlineError, IntegrityError, ManifestError, TransportError
from tidings.manifest import UpdateManifest, manifest_from_dict

logger = logging.getLogger(__name__)

MAX_ROOT_BYTES = 512_000  # bytes
MAX_TIMESTAMP_BYTES = 16_384  # bytes
MAX_SNAPSHOT_BYTES = 8_000_000  # bytes; the snapshot lists every role
MAX_TARGETS_BYTES = 32_000_000  # bytes; a bin's size is pinned by the snapshot anyway


@dataclass(frozen=True)
class BinEntry:
    """One manifest found in a bin, with where its payloads are."""

    manifest: UpdateManifest
    payload_dir: str  # directory of the payload targets (the update's home bin)
    role: str  # the bin it was found in


@dataclass
class _CachedBin:
    pins: tuple[str, ...]  # the bin's and its delegator's version and SHA-256, per snapshot
    expires: datetime  # the bin's own expiry: a frozen bin must fail even from the cache
    segments: dict[str, dict[tuple[int, int], TargetFile]]  # by key digest, (level, number)


@dataclass
class BinCache:
    """Bins, families and documents verified by earlier scans in this process."""

    bins: dict[str, _CachedBin] = field(default_factory=dict)  # by role name
    families: dict[str, tuple[tuple[str, ...], datetime, Family]] = field(default_factory=dict)
    documents: dict[tuple[str, str, str], tuple[BinEntry | str, ...]] = field(default_factory=dict)
    """(bin role, target path, SHA-256) -> the document's parsed entries, or a problem each."""


def updater_config() -> UpdaterConfig:
    """Size caps for every metadata file a device accepts."""
    return UpdaterConfig(
        root_max_length=MAX_ROOT_BYTES,
        timestamp_max_length=MAX_TIMESTAMP_BYTES,
        snapshot_max_length=MAX_SNAPSHOT_BYTES,
        targets_max_length=MAX_TARGETS_BYTES,
        app_user_agent="tidings-agent/0.1",
    )


class CatalogReader:
    """One scan's verified catalog. Create one per scan: TUF refreshes once per Updater."""

    def __init__(
        self,
        *,
        metadata_dir: Path,
        metadata_url: str,
        targets_url: str,
        download_dir: Path,
        fetcher: FetcherInterface,
        bootstrap: bytes | None = None,
        cache: BinCache | None = None,
    ) -> None:
        use_fast_canonical_json()  # same bytes as python-tuf's encoder, verified ~20x faster
        metadata_dir.mkdir(parents=True, exist_ok=True)
        download_dir.mkdir(parents=True, exist_ok=True)
        self.updater = Updater(
            str(metadata_dir),
            metadata_url,
            str(download_dir),
            targets_url,
            fetcher=fetcher,
            config=updater_config(),
            bootstrap=bootstrap,
        )
        self.cache = cache if cache is not None else BinCache()
        self.download_dir = download_dir
        self.bins_fetched: list[str] = []  # roles verified (and downloaded if new) this scan
        self.documents_fetched: list[str] = []  # index documents downloaded this scan
        self._documents_used: set[tuple[str, str, str]] = set()  # (bin, path, sha256) read

    def refresh(self) -> None:
        """Run the TUF client workflow up to the snapshot.

        Raises:
            IntegrityError: bad signature, rollback, freeze, mix-and-match, oversized...
            TransportError: the service could not be reached or answered with an error.
        """
        with translated_errors():
            self.updater.refresh()

    def role(self, name: str, parent: str) -> Targets:
        """A targets role, verified through its delegator (already loaded)."""
        with translated_errors():
            # python-tuf has no public "load this delegated role": _load_targets is the
            # exact step of its delegation walk (local copy if the snapshot allows, else fetch).
            return self.updater._load_targets(name, parent)

    def top_targets(self) -> Targets:
        """The top-level targets role."""
        return self.role("targets", "root")

    def family(self, name: str, parent: str) -> Family:
        """A kind or vendor role and its bin counts, as signed in its metadata.

        Like bins, a family verified earlier in this process is reused while the verified
        snapshot pins the same bytes for it and its delegators and it has not expired.

        Raises:
            IntegrityError: the role carries no valid bin counts.
        """
        pins = self._pins(name, parent, "targets")
        cached = self.cache.families.get(name)
        if cached is not None and cached[0] == pins and cached[1] > self._now():
            return cached[2]
        signed = self.role(name, parent)
        counts = signed.unrecognized_fields.get(BINS_FIELD)
        try:
            if not isinstance(counts, int) or isinstance(counts, bool):
                raise TypeError("not a whole number")
            family = family_of(name, counts)
        except (TypeError, ValueError) as e:
            raise IntegrityError(f"role {name} has no valid {BINS_FIELD}: {counts!r}") from e
        self.cache.families[name] = (pins, signed.expires, family)
        return family

    def _pins(self, *roles: str) -> tuple[str, ...]:
        """Version and SHA-256 of each role, as the verified snapshot gives them."""
        meta = self.updater._trusted_set.snapshot.meta
        found = [meta.get(f"{role}.json") for role in roles]
        if None in found:
            raise IntegrityError(f"one of {', '.join(roles)} is not in the snapshot")
        return tuple(_pin(m.hashes, m.version) for m in found if m is not None)

    def _now(self) -> datetime:
        return self.updater._trusted_set.reference_time

    def _load_family(self, family: str) -> None:
        """Make python-tuf hold ``family`` and its delegators, to verify a bin through them."""
        self.top_targets()
        if family.startswith(VENDOR_PREFIX):
            self.role("drivers", "targets")
            self.role(family, "drivers")
        else:
            self.role(family, "targets")

    def delegated_roles(self, signed: Targets) -> list[str]:
        """Names of the roles ``signed`` delegates to."""
        if signed.delegations is None or signed.delegations.roles is None:
            return []
        return list(signed.delegations.roles)

    def bin_entries(
        self, bin_: Bin, keys: list[str]
    ) -> tuple[tuple[BinEntry, ...], tuple[str, ...]]:
        """The manifests ``bin_`` indexes under any of ``keys`` (``key_text``), and problems.

        Raises:
            IntegrityError: the bin, or a document it lists, failed verification.
            TransportError: a download failed.
        """
        pins = self._pins(bin_.role, bin_.family)
        cached = self.cache.bins.get(bin_.role)
        if cached is None or cached.pins != pins or cached.expires <= self._now():
            self._load_family(bin_.family)
            signed = self.role(bin_.role, bin_.family)  # full verification, expiry included
            self.bins_fetched.append(bin_.role)
            cached = _CachedBin(pins, signed.expires, key_documents(bin_.directory, signed.targets))
            self.cache.bins[bin_.role] = cached
        entries: list[BinEntry] = []
        warnings: list[str] = []
        for key in keys:
            digest = key_digest(key)
            for (level, number), target in sorted(cached.segments.get(digest, {}).items()):
                name = SegmentName(digest, level, number)
                for outcome in self._document(bin_, key, name, target):
                    if isinstance(outcome, str):
                        warnings.append(outcome)
                    else:
                        entries.append(outcome)
        return tuple(entries), tuple(warnings)

    def _document(
        self, bin_: Bin, key: str, name: SegmentName, target: TargetFile
    ) -> tuple[BinEntry | str, ...]:
        """One index document's entries: from this process's cache, the disk, or the network.

        Whatever the source, the bytes parsed are the bytes checked against the length and
        SHA-256 the verified bin signs; a download lands under a temporary name and replaces
        the local copy whole, so concurrent scans of one device never see half a document.
        """
        sha = target.hashes.get("sha256", "")
        used = (bin_.role, target.path, sha)
        self._documents_used.add(used)
        cached = self.cache.documents.get(used)
        if cached is not None:
            return cached
        if target.length > MAX_SEGMENT_BYTES or not sha:
            raise IntegrityError(f"{bin_.role} lists an index document over the size limit")
        index = self.download_dir / "index"
        local = index / target.path.rpartition("/")[2]
        data = _signed_bytes(local, target)
        if data is None:
            index.mkdir(parents=True, exist_ok=True)
            part = index / f".{local.name}.{os.getpid()}.{threading.get_ident()}.part"
            try:
                with translated_errors():
                    self.updater.download_target(target, str(part))  # length, hash checked
                data = _signed_bytes(part, target)
                if data is None:
                    raise IntegrityError(f"index document {target.path} changed on disk")
                os.replace(part, local)
            finally:
                part.unlink(missing_ok=True)
            self.documents_fetched.append(target.path)
        try:
            _key, raw = parse_segment(data, name, key)
        except SegmentFormatError as e:
            raise IntegrityError(f"index document {target.path} of {bin_.role}: {e}") from e
        parsed = tuple(_parse_entry(bin_, target.path, entry) for entry in raw)
        self.cache.documents[used] = parsed
        return parsed

    def forget_unused(self) -> None:
        """Drop the documents this scan did not read, from memory and from the disk.

        Call after a complete scan: a long-lived agent then holds only its current documents,
        and the ones merged away or replaced since do not pile up in ``downloads/index``.
        """
        used = self._documents_used
        self.cache.documents = {k: v for k, v in self.cache.documents.items() if k in used}
        names = {path.rpartition("/")[2] for _role, path, _sha in used}
        index = self.download_dir / "index"
        if index.is_dir():
            for path in index.iterdir():
                if path.name not in names and not path.name.startswith("."):  # not downloads
                    path.unlink(missing_ok=True)


def _signed_bytes(path: Path, target: TargetFile) -> bytes | None:
    """The file's bytes if they are exactly the ones ``target`` signs, else None."""
    try:
        with path.open("rb") as f:
            data = f.read(target.length + 1)
    except FileNotFoundError:
        return None
    if len(data) != target.length:
        return None
    if hashlib.sha256(data).hexdigest() != target.hashes.get("sha256"):
        return None
    return data


def _pin(hashes: dict[str, str] | None, version: int) -> str:
    return f"{version}:{(hashes or {}).get('sha256', '')}"


def _parse_entry(bin_: Bin, document: str, entry: IndexEntry) -> BinEntry | str:
    """One manifest of a verified index document, if its bin may publish it; else a warning.

    python-tuf applies delegation paths only when it resolves a target by name; a scan reads
    whole documents, so the same rules are applied here: an entry must describe an update of
    the bin's kind and keep its payloads in its own family (documents lie directly in the bin's
    directory by construction: ``key_documents``). A compromised vendor key can then never
    offer, or replace, an OS update.
    """
    kind = family_kind(bin_.family)
    source = f"{document}#{entry.update_id}"
    try:
        manifest = manifest_from_dict(entry.manifest, source=source)
        if manifest.kind is not kind:
            raise ManifestError(
                source, "kind", f"a {kind.value} bin cannot offer {manifest.kind.value}"
            )
        if not _in_family(entry.payload_dir, bin_):
            raise ManifestError(source, "payload_dir", "outside the bin's family")
        if (foreign := _foreign_hardware(manifest, bin_)) is not None:
            raise ManifestError(source, "applicability.driver", f"{foreign} is another vendor's")
    except ManifestError as e:
        return f"skipped a signed entry: {e}"
    return BinEntry(manifest, entry.payload_dir, bin_.role)


def _in_family(payload_dir: str, bin_: Bin) -> bool:
    """Whether ``payload_dir`` is a bin directory of ``bin_``'s own family."""
    family_dir = bin_.directory.rsplit("/", 1)[0]
    rest = payload_dir.removeprefix(f"{family_dir}/")
    return payload_dir.startswith(f"{family_dir}/") and bool(rest) and "/" not in rest


def _foreign_hardware(manifest: UpdateManifest, bin_: Bin) -> str | None:
    """A hardware ID of ``manifest`` outside its vendor bin's namespace, if any.

    A vendor's key may only sign drivers for its own hardware (docs/architecture.md, "Trust model");
    paths alone cannot say that, since the IDs live inside the manifest.
    """
    rule = manifest.applicability.driver
    if rule is None or not bin_.family.startswith(VENDOR_PREFIX):
        return None
    namespace = bin_.family.removeprefix(VENDOR_PREFIX)
    for hwid in (*rule.hardware_ids, *rule.compatible_ids):
        if hardware_namespace(normalize_hardware_id(hwid)) != namespace:
            return hwid
    return None


@contextlib.contextmanager
def translated_errors() -> Iterator[None]:
    """Map python-tuf's exceptions to ours at this edge (docs/architecture.md, "The error tree").

    A download that failed is a transport error (retry later); anything the TUF workflow
    rejects, including a response longer than its signed length, is an integrity error.
    """
    try:
        yield
    except tuf_exceptions.SlowRetrievalError as e:
        raise DeadlineError(str(e)) from e
    except tuf_exceptions.DownloadLengthMismatchError as e:
        raise IntegrityError(f"catalog verification failed: {e}") from e
    except tuf_exceptions.DownloadError as e:
        raise TransportError(str(e)) from e
    except tuf_exceptions.RepositoryError as e:
        raise IntegrityError(f"catalog verification failed: {e}") from e
