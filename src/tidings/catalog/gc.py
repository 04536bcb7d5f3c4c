"""Garbage collection: remove what no snapshot of the last N days reaches (docs/catalog.md).

A device that loaded snapshot S keeps fetching what S names (roles, index documents, payloads,
piece maps) for as long as its scan and its downloads take, so everything a *retained*
snapshot reaches stays: the current one, and every one that was still current at some moment
of the keep window (``retained_snapshots``). Removed:

* versioned metadata ``N.<role>.json`` (and its ``.gz``) that no retained snapshot reaches and
  that is older than its role's committed version. Files above it (left by a publish killed
  between its renames and its timestamp) stay: the next version skips their numbers, so a
  name is never reused (repository.py). Root versions are never removed;
* served targets ``<sha256>.<name>`` (and ``.gz`` copies) that no retained index document or
  manifest reaches;
* content store files that nothing retained reaches, once untouched for the whole window
  (a publish stores content before it takes the lock, and refreshes the mtime of what it
  reuses: content.py);
* temporary and staged files of killed publishes: hidden files under ``repo/`` (every writer
  there holds the lock), and content-store temp files untouched for ``temp_grace``.

Deciding (``retained_snapshots``, ``served_targets``, ``removable_metadata``) is pure; ``collect``
does the I/O, under ``publish.lock`` so that no publish or re-signing runs meanwhile.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tidings.catalog.config import require_data_dir
from tidings.catalog.entries import json_document, payload_path, pieces_path
from tidings.catalog.keyindex import MAX_SEGMENT_BYTES
from tidings.catalog.repository import LOCK_FILE, MAX_METADATA_BYTES
from tidings.clock import Clock
from tidings.errors import CatalogError
from tidings.fsutil import TooLargeError, file_lock, read_bounded

_VERSIONED = re.compile(r"(?P<version>[0-9]{1,20})\.(?P<role>.+)\.json(?P<gz>\.gz)?")
_CONTENT_ADDRESSED = re.compile(r"[0-9a-f]{64}\..+")
_SHA256 = re.compile(r"[0-9a-f]{64}")
NEVER_REMOVED = ("root", "timestamp")

Category = str
METADATA: Category = "metadata"
TARGETS: Category = "targets"
CONTENT: Category = "content"
TEMPORARY: Category = "temporary"
CATEGORIES = (METADATA, TARGETS, CONTENT, TEMPORARY)


@dataclass(frozen=True)
class GcPolicy:
    """What garbage collection keeps."""

    keep: timedelta = timedelta(days=7)  # every snapshot current at some moment of this window
    temp_grace: timedelta = timedelta(hours=1)  # content-store temp files younger may be live


@dataclass(frozen=True)
class VersionedFile:
    """A file named ``N.<role>.json`` (or its ``.gz`` copy) in ``repo/metadata``."""

    name: str
    role: str
    version: int


@dataclass
class GcReport:
    """What one collection removed (or, with ``dry_run``, would remove)."""

    dry_run: bool
    retained_snapshots: tuple[int, ...] = ()
    files: dict[Category, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    bytes: dict[Category, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    freed_bytes: int = 0  # bytes of files whose last name went (hard links share bytes)
    paths: list[Path] = field(default_factory=list)


# --------------------------------------------------------------------------- decisions (pure)


def retained_snapshots(
    written: Mapping[int, datetime], current: int, cutoff: datetime
) -> frozenset[int]:
    """The snapshot versions a device may still be using at ``cutoff`` or later.

    Args:
        written: Snapshot version -> when it was written (its commit).
        current: The committed snapshot version.
        cutoff: The start of the keep window.

    A snapshot stops being current when the next one is written; it is retained if that
    happened within the window. Versions above ``current`` were never committed.
    """
    versions = sorted(v for v in written if v <= current)
    kept = {current}
    for older, newer in itertools.pairwise(versions):
        if written[newer] >= cutoff:
            kept.add(older)
    return frozenset(kept)


def version_ranges(versions: Iterable[int]) -> str:
    """Versions as runs, for people: ``1-4``, ``2, 5-7``."""
    runs: list[list[int]] = []
    for v in sorted(set(versions)):
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def parse_versioned(name: str) -> VersionedFile | None:
    """``N.<role>.json`` or ``N.<role>.json.gz``, else None."""
    match = _VERSIONED.fullmatch(name)
    if match is None:
        return None
    return VersionedFile(name, match["role"], int(match["version"]))


def removable_metadata(
    files: Iterable[VersionedFile],
    reachable: set[tuple[str, int]],
    committed: Mapping[str, int],
) -> list[VersionedFile]:
    """The versioned files no retained snapshot reaches and no future version could reuse."""
    return [
        f
        for f in files
        if f.role not in NEVER_REMOVED
        and (f.role, f.version) not in reachable
        and f.version < committed.get(f.role, 0)
    ]


def served_targets(targets: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """(served path, sha256) of each (target path -> sha256): ``<dir>/<sha256>.<name>``."""
    for path, sha in targets.items():
        directory, _, name = path.rpartition("/")
        yield f"{directory}/{sha}.{name}", sha


def manifest_targets(doc: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(served path, sha256) of each payload and piece map of one index document's updates,
    plus ("", sha256) of each manifest document (stored, not served)."""
    for update in doc.get("updates", ()):
        manifest, payload_dir = update["manifest"], update["payload_dir"]
        update_id = manifest["id"]
        yield "", hashlib.sha256(json_document(manifest)).hexdigest()
        for payload in manifest.get("payloads", ()):
            name = payload["name"]
            yield from served_targets(
                {
                    payload_path(payload_dir, update_id, name): payload["sha256"],
                    pieces_path(payload_dir, update_id, name): payload["piece_map_sha256"],
                }
            )


# --------------------------------------------------------------------------- the collection


@dataclass
class _Reach:
    roles: set[tuple[str, int]] = field(default_factory=set)
    served: set[str] = field(default_factory=set)  # paths below repo/targets
    content: set[str] = field(default_factory=set)  # sha256 of content-store files
    documents: set[str] = field(default_factory=set)  # index documents already read


def collect(
    data_dir: Path,
    *,
    clock: Clock,
    policy: GcPolicy | None = None,
    dry_run: bool = False,
    on_lock_wait: Callable[[Path], None] | None = None,
) -> GcReport:
    """Remove what no retained snapshot reaches (see the module docstring); report it.

    ``on_lock_wait`` is called with the lock's path if a publish holds it (file_lock).

    Raises:
        ConfigError: not a data directory.
        CatalogError: the committed metadata is missing or unreadable.
    """
    policy = policy or GcPolicy()
    metadata = data_dir / "repo" / "metadata"
    require_data_dir(data_dir)
    if not (metadata / "timestamp.json").is_file():
        raise CatalogError(f"{data_dir} holds no catalog: {metadata} has no timestamp.json")
    now = clock.now()
    report = GcReport(dry_run)
    with file_lock(data_dir / LOCK_FILE, on_wait=on_lock_wait):
        current = _meta(metadata / "timestamp.json")["snapshot"]
        committed = _meta(metadata / f"{current}.snapshot.json") | {"snapshot": current}
        files = [f for name in _names(metadata) if (f := parse_versioned(name))]
        written = {
            f.version: _mtime(metadata / f.name)
            for f in files
            if f.role == "snapshot" and not f.name.endswith(".gz")
        }
        retained = retained_snapshots(written, current, now - policy.keep)
        report.retained_snapshots = tuple(sorted(retained))
        reach = _reach(data_dir, retained)
        doomed: list[tuple[Category, Path]] = []
        for f in removable_metadata(files, reach.roles, committed):
            doomed.append((METADATA, metadata / f.name))
        doomed += _unreached_targets(data_dir / "repo" / "targets", reach.served)
        # Never younger than temp_grace: a publish may have just stored it, lock not yet taken.
        content_cutoff = now - max(policy.keep, policy.temp_grace)
        doomed += _unreached_content(data_dir / "content", reach.content, content_cutoff)
        doomed += _temporary(data_dir, now - policy.temp_grace)
        _remove(doomed, report)
    return report


def _reach(data_dir: Path, snapshots: Iterable[int]) -> _Reach:
    metadata = data_dir / "repo" / "metadata"
    reach = _Reach()
    for version in snapshots:
        path = metadata / f"{version}.snapshot.json"
        if not path.exists():
            continue  # an older snapshot a previous collection with a shorter window removed
        # The retained snapshot itself: a device holding it still fetches it, and its file's
        # mtime is how the next collection knows it was current within the window.
        reach.roles.add(("snapshot", version))
        for role, role_version in _meta(path).items():
            if (role, role_version) in reach.roles:
                continue
            reach.roles.add((role, role_version))
            role_path = metadata / f"{role_version}.{role}.json"
            if role_path.exists():
                _reach_role(data_dir, _signed(role_path).get("targets", {}), reach)
    return reach


def _reach_role(data_dir: Path, targets: Mapping[str, Any], reach: _Reach) -> None:
    shas = {path: str(t.get("hashes", {}).get("sha256", "")) for path, t in targets.items()}
    for served, sha in served_targets(shas):
        reach.served.add(served)
        reach.content.add(sha)
        if served.endswith(".json") and sha not in reach.documents:
            reach.documents.add(sha)
            doc = _document(data_dir, sha, served)
            try:
                for served_file, file_sha in manifest_targets(doc):
                    if served_file:
                        reach.served.add(served_file)
                    reach.content.add(file_sha)
            except (KeyError, TypeError, AttributeError) as e:
                raise CatalogError(f"index document {served} is damaged: {e}") from e


def _document(data_dir: Path, sha: str, served: str) -> Mapping[str, Any]:
    """An index document, from the content store or (the same inode) its served name."""
    for path in (
        data_dir / "content" / "sha256" / sha[:2] / sha,
        data_dir / "repo/targets" / served,
    ):
        try:
            doc = json.loads(read_bounded(path, MAX_SEGMENT_BYTES))
        except FileNotFoundError:
            continue
        except (OSError, TooLargeError, ValueError) as e:
            raise CatalogError(f"cannot read index document {path}: {e}") from e
        return doc if isinstance(doc, dict) else {}
    return {}  # gone from both: no device can read it, so it protects nothing


def _unreached_targets(targets: Path, served: set[str]) -> Iterator[tuple[Category, Path]]:
    for directory, _, names in os.walk(targets):
        for name in names:
            path = Path(directory) / name
            relative = path.relative_to(targets).as_posix()
            if name.startswith("."):
                continue  # a temporary file: _temporary decides
            if not _CONTENT_ADDRESSED.fullmatch(name):
                continue  # not ours to judge
            if relative in served or (name.endswith(".gz") and relative[:-3] in served):
                continue
            yield TARGETS, path


def _unreached_content(
    content: Path, reached: set[str], cutoff: datetime
) -> Iterator[tuple[Category, Path]]:
    for path in sorted((content / "sha256").glob("*/*")):
        # A younger file may have been stored by a publish now waiting for the lock.
        if _SHA256.fullmatch(path.name) and path.name not in reached and _mtime(path) < cutoff:
            yield CONTENT, path


def _temporary(data_dir: Path, cutoff: datetime) -> Iterator[tuple[Category, Path]]:
    for top in ("repo/metadata", "repo/targets"):
        for directory, _, names in os.walk(data_dir / top):
            for name in names:
                if name.startswith("."):  # staged or half-written; every writer holds the lock
                    yield TEMPORARY, Path(directory) / name
    tmp = data_dir / "content" / "tmp"
    if tmp.is_dir():
        for path in sorted(tmp.iterdir()):
            if path.is_file() and _mtime(path) < cutoff:
                yield TEMPORARY, path


def _remove(doomed: list[tuple[Category, Path]], report: GcReport) -> None:
    links: dict[int, list[int]] = {}  # inode -> [names removed, its link count, its size]
    for category, path in doomed:
        try:
            st = path.lstat()
            if not report.dry_run:
                path.unlink()
        except FileNotFoundError:
            continue
        report.files[category] += 1
        report.bytes[category] += st.st_size
        report.paths.append(path)
        seen = links.setdefault(st.st_ino, [0, st.st_nlink, st.st_size])
        seen[0] += 1
    report.freed_bytes = sum(size for removed, nlink, size in links.values() if removed >= nlink)


def _meta(path: Path) -> dict[str, int]:
    """Role (file name without ``.json``) -> version, from a timestamp or snapshot."""
    meta = _signed(path).get("meta")
    if not isinstance(meta, dict):
        raise CatalogError(f"{path} lists no roles")
    try:
        return {name.removesuffix(".json"): int(info["version"]) for name, info in meta.items()}
    except (KeyError, TypeError, ValueError) as e:
        raise CatalogError(f"{path} is damaged: {e}") from e


def _signed(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(read_bounded(path, MAX_METADATA_BYTES))
        signed = doc["signed"]
    except (OSError, TooLargeError, ValueError, KeyError, TypeError) as e:
        raise CatalogError(f"cannot read {path}: {e}") from e
    if not isinstance(signed, dict):
        raise CatalogError(f"{path} is damaged")
    return signed


def _names(directory: Path) -> list[str]:
    with os.scandir(directory) as entries:
        return [e.name for e in entries if e.is_file(follow_symlinks=False)]


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)
