"""A device's verified view of the catalog: python-tuf's Updater, loading only chosen bins.

The Updater does the whole TUF client workflow (root rotation, timestamp, snapshot, rollback
and freeze checks, signatures, delegations). On top of it this module reads the bins a
device's inventory selects (docs/catalog.md) and nothing else, and lists their manifests.

Incremental scans (DESIGN.md §3): python-tuf keeps verified metadata on disk and downloads a
role only when the snapshot names a new version. Within one process the reader also keeps the
parsed entries of every bin it verified, keyed by the bin's SHA-256 *as pinned by the verified
snapshot* and by its delegator's SHA-256, so an unchanged bin is neither re-verified nor
re-parsed: the snapshot's signature still vouches for every byte.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tuf.api import exceptions as tuf_exceptions
from tuf.api.metadata import Targets
from tuf.ngclient import Updater, UpdaterConfig
from tuf.ngclient.fetcher import FetcherInterface

from tidings.catalog.entries import CUSTOM_KEY
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


@dataclass(frozen=True)
class _Raw:
    """One manifest entry of a verified bin, not yet parsed."""

    path: str
    keys: frozenset[str] | None  # signed index keys; None: unknown, always parse
    custom: Any


@dataclass
class _CachedBin:
    pins: tuple[str, ...]  # the bin's and its delegator's version and SHA-256, per snapshot
    expires: datetime  # the bin's own expiry: a frozen bin must fail even from the cache
    raw: tuple[_Raw, ...]
    parsed: dict[str, BinEntry | str] = field(default_factory=dict)  # path -> entry or problem


@dataclass
class BinCache:
    """Bins and families verified by earlier scans in this process, by role name."""

    bins: dict[str, _CachedBin] = field(default_factory=dict)
    families: dict[str, tuple[tuple[str, ...], datetime, Family]] = field(default_factory=dict)


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
        self.bins_fetched: list[str] = []  # roles verified (and downloaded if new) this scan

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
            key_bins, id_bins = (int(counts[0]), int(counts[1]))  # type: ignore[index]
            family = family_of(name, key_bins, id_bins)
        except (TypeError, ValueError, IndexError, KeyError) as e:
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
        self, bin_: Bin, keys: frozenset[str] | None = None
    ) -> tuple[tuple[BinEntry, ...], tuple[str, ...]]:
        """The manifests in ``bin_`` filed under any of ``keys`` (all if None), and problems.

        Entries are parsed only when a device asks for one of their keys, once per process.
        """
        pins = self._pins(bin_.role, bin_.family)
        cached = self.cache.bins.get(bin_.role)
        if cached is None or cached.pins != pins or cached.expires <= self._now():
            self._load_family(bin_.family)
            signed = self.role(bin_.role, bin_.family)  # full verification, expiry included
            self.bins_fetched.append(bin_.role)
            cached = _CachedBin(pins, signed.expires, _raw_entries(signed))
            self.cache.bins[bin_.role] = cached
        entries: list[BinEntry] = []
        warnings: list[str] = []
        for raw in cached.raw:
            if keys is not None and raw.keys is not None and not raw.keys & keys:
                continue
            if raw.path not in cached.parsed:
                cached.parsed[raw.path] = _parse_entry(bin_, raw)
            outcome = cached.parsed[raw.path]
            if isinstance(outcome, str):
                warnings.append(outcome)
            else:
                entries.append(outcome)
        return tuple(entries), tuple(warnings)


def _pin(hashes: dict[str, str] | None, version: int) -> str:
    return f"{version}:{(hashes or {}).get('sha256', '')}"


def _raw_entries(signed: Targets) -> tuple[_Raw, ...]:
    raw = []
    for path, target in signed.targets.items():
        if not path.endswith(".manifest.json"):
            continue
        custom: Any = target.custom.get(CUSTOM_KEY) if isinstance(target.custom, dict) else None
        keys = custom.get("keys") if isinstance(custom, dict) else None
        valid = isinstance(keys, list) and all(isinstance(k, str) for k in keys)
        raw.append(_Raw(path, frozenset(keys) if valid else None, custom))  # type: ignore[arg-type]
    return tuple(raw)


def _parse_entry(bin_: Bin, raw: _Raw) -> BinEntry | str:
    """One manifest of a verified bin, if the bin is entitled to publish it; else a warning.

    python-tuf applies delegation paths only when it resolves a target by name; a scan reads
    whole bins, so the same rules are applied here: an entry must lie directly in the bin's
    directory, describe an update of the bin's kind, and keep its payloads in its own family.
    A compromised vendor key can then never offer, or replace, an OS update.
    """
    prefix = f"{bin_.directory}/"
    kind = family_kind(bin_.family)
    source, custom = f"{bin_.role}/{raw.path}", raw.custom
    try:
        if not raw.path.startswith(prefix) or "/" in raw.path[len(prefix) :]:
            raise ManifestError(source, "path", "outside the bin's delegated directory")
        if not isinstance(custom, dict) or not isinstance(custom.get("payload_dir"), str):
            raise ManifestError(source, "custom", "missing tidings fields")
        manifest = manifest_from_dict(custom.get("manifest"), source=source)
        if manifest.kind is not kind:
            raise ManifestError(
                source, "kind", f"a {kind.value} bin cannot offer {manifest.kind.value}"
            )
        if not _in_family(custom["payload_dir"], bin_):
            raise ManifestError(source, "payload_dir", "outside the bin's family")
        if (foreign := _foreign_hardware(manifest, bin_)) is not None:
            raise ManifestError(source, "applicability.driver", f"{foreign} is another vendor's")
    except ManifestError as e:
        return f"skipped a signed entry: {e}"
    return BinEntry(manifest, custom["payload_dir"], bin_.role)


def _in_family(payload_dir: str, bin_: Bin) -> bool:
    """Whether ``payload_dir`` is a bin directory of ``bin_``'s own family."""
    family_dir = bin_.directory.rsplit("/", 2)[0]
    parts = payload_dir.removeprefix(f"{family_dir}/").split("/")
    return payload_dir.startswith(f"{family_dir}/") and len(parts) == 2 and all(parts)


def _foreign_hardware(manifest: UpdateManifest, bin_: Bin) -> str | None:
    """A hardware ID of ``manifest`` outside its vendor bin's namespace, if any.

    A vendor's key may only sign drivers for its own hardware (DESIGN.md §2); paths alone
    cannot say that, since the IDs live inside the manifest.
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
    """Map python-tuf's exceptions to our tree at this edge (STYLE.md, "Errors").

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
