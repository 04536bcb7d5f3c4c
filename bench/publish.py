"""Publishing at catalog scale: build a synthetic catalog, then publish single updates into it.

Issue goal: with 100,000 updates in the catalog, one incremental publish (the real
``Publisher.publish`` path: hash and store the payload, then one commit under the lock) takes
under 1 s and changes under 1% of the catalog (docs/architecture.md, "Scale principles": the cost of
a change follows what changed, not what the catalog holds). "The catalog" is what devices download
from: the signed metadata *and* the per-key index documents the bins list (docs/catalog.md, "The
index"), so the goal is judged on ``changed_index_fraction``; the metadata-only fraction is reported
next to it.

Two catalogs are built the same way from the same generator (bench/_synthetic.py, fixed seed):
the big one (``--updates``, default 100,000) and the in-run baseline (``--baseline-updates``,
default 1,000), each from the vocabulary of its own size (``catalog_size``). The probe updates
are then published into both, alternating big/baseline so that machine noise hits both alike;
the ratio of the medians shows whether the incremental cost follows the catalog's size. Each
catalog's probes come from the same probe seed and the same kinds, drawn from that catalog's
vocabulary so they land on its keys. Two probe sets, one update of each kind in each:

* ``typical``: drawn from the catalog's own distribution (the issue's goals are judged on their
  median);
* ``hot_key``: filed under the busiest key of each kind (the most popular OS product and
  architecture, app product, driver vendor, definitions product, store package): where the
  next real update most likely lands, and where the keys' documents are longest.

"Changed bytes" of a publish are measured on disk: the files in ``repo/metadata/`` that are
new or replaced after it (``changed_bytes``), plus the index documents it wrote into the served
directories of the bins the update is filed in (``document_bytes``); payloads and piece maps are
not counted (a device fetches those only to install). "Catalog bytes" are those of the current
catalog: every role file the snapshot lists (by its signed length), the snapshot, the timestamp
and the current root (``catalog_metadata_bytes``), plus every index document the bins list (by
its signed length: ``catalog_index_bytes``). The gzip copies the service sends are counted
apart, each against its own total.

Prints one JSON document on stdout; progress goes to stderr. From the repository root:

    .venv/bin/python bench/publish.py            # 100k updates (4-7 minutes on 2 cores)
    .venv/bin/python bench/publish.py --quick    # 10k updates, a smoke run
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import gc
import json
import os
import platform
import pstats
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tuf

from _synthetic import KIND_WEIGHTS, MIX_DESCRIPTION, SyntheticCatalog, check
from tidings.catalog.config import CatalogConfig
from tidings.catalog.create import create_data_dir
from tidings.catalog.index import filing, index_keys
from tidings.catalog.keyindex import SegmentPolicy, key_documents
from tidings.catalog.layout import bin_of_role
from tidings.catalog.publisher import Prepared, Publisher
from tidings.catalog.repository import Session
from tidings.clock import SystemClock
from tidings.manifest import AuthoredManifest, Kind

SEED = 2026
PROBE_SEED = 4242
PROBE_KINDS = (Kind.OS, Kind.APP, Kind.DRIVER, Kind.DEFINITIONS, Kind.STORE)
MERGE_KIND = Kind.OS  # the busiest keys, with the largest manifests
GOAL_SECONDS = 1.0
GOAL_FRACTION = 0.01
PREPARE_CHUNK = 250  # updates per task handed to a prepare worker
# A served index document (or its gzip copy): ``<sha256>.<key digest>.<level>.<number>.json``.
# Payloads and piece maps in the same directories are ``<sha256>.<uuid>.payload|pieces.<name>``.
DOCUMENT_RE = re.compile(r"^[0-9a-f]{64}\.[0-9a-f]{32}\.([0-9]{1,2})\.[0-9]{1,9}\.json(\.gz)?$")
_START = time.perf_counter()


def log(message: str) -> None:
    """Progress on stderr, with the time since start."""
    print(f"[{time.perf_counter() - _START:7.1f}s] {message}", file=sys.stderr, flush=True)


@contextmanager
def gc_timer(out: dict[str, float], key: str) -> Iterator[None]:
    """Add the time spent in the cyclic garbage collector during the block to ``out[key]``."""
    started = [0.0]

    def callback(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            out[key] = out.get(key, 0.0) + time.perf_counter() - started[0]

    gc.callbacks.append(callback)
    try:
        yield
    finally:
        gc.callbacks.remove(callback)


# --- building a catalog -----------------------------------------------------------------------


@dataclass
class Catalog:
    """One built catalog and what it cost."""

    name: str
    data_dir: Path
    updates: int
    phases: dict[str, float] = field(default_factory=dict)
    bytes_written: int = 0  # metadata bytes the bulk commits wrote


def generate(count: int, seed: int, payload_dir: Path) -> tuple[list[AuthoredManifest], dict]:
    """``count`` validated synthetic updates (payload files written), and the time it took.

    The vocabulary is that of a catalog of ``count`` updates (``catalog_size``).
    """
    t0 = time.perf_counter()
    items = list(SyntheticCatalog(seed, payload_dir, catalog_size=count).generate(count))
    t1 = time.perf_counter()
    for item in items:
        check(item)
    t2 = time.perf_counter()
    return items, {"generate_seconds": t1 - t0, "validate_seconds": t2 - t1}


def describe_mix(items: Sequence[AuthoredManifest]) -> dict[str, Any]:
    """What the synthetic catalog holds: kinds, index keys and how they spread."""
    kinds = collections.Counter(a.manifest.kind.value for a in items)
    entries: collections.Counter[str] = collections.Counter()
    keys: dict[str, set[str]] = collections.defaultdict(set)
    for a in items:
        for k in index_keys(a.manifest):
            family = "vendor.*" if k.family.startswith("vendor.") else k.family
            entries[family] += 1
            keys[family].add(k.key)
    vendor_roles = {
        k.family for a in items for k in index_keys(a.manifest) if k.family.startswith("vendor.")
    }
    return {
        "description": MIX_DESCRIPTION,
        "target_weights": {k.value: w for k, w in KIND_WEIGHTS.items()},
        "kinds": dict(sorted(kinds.items())),
        "payload_files": sum(len(a.payload_sources) for a in items),
        "index_entries_by_family": dict(sorted(entries.items())),
        "distinct_index_keys_by_family": {f: len(v) for f, v in sorted(keys.items())},
        "driver_vendor_roles": len(vendor_roles),
        "superseding_updates": sum(1 for a in items if a.manifest.supersedes),
    }


def build(
    name: str,
    items: Sequence[AuthoredManifest],
    data_dir: Path,
    *,
    workers: int,
    threads: int,
    batch: int,
    profile: cProfile.Profile | None = None,
) -> Catalog:
    """Create a data directory and publish ``items`` into it: prepare all, then commit."""
    catalog = Catalog(name, data_dir, len(items))
    phases = catalog.phases
    with gc_timer(phases, "gc_seconds"):
        t0 = time.perf_counter()
        create_data_dir(data_dir, clock=SystemClock())
        publisher = Publisher(data_dir)
        t1 = time.perf_counter()
        if profile:
            profile.enable()
        prepared = prepare_all(publisher, items, workers=workers, threads=threads, label=name)
        t2 = time.perf_counter()
        step = batch or len(prepared)
        for start in range(0, len(prepared), step):
            chunk = prepared[start : start + step]
            publisher.commit_prepared(chunk)
            log(f"{name}: committed {start + len(chunk):,}/{len(prepared):,}")
        t3 = time.perf_counter()
        if profile:
            profile.disable()
    phases.update(init_seconds=t1 - t0, prepare_seconds=t2 - t1, commit_seconds=t3 - t2)
    catalog.bytes_written = publisher.repo.bytes_written
    return catalog


def prepare_all(
    publisher: Publisher,
    items: Sequence[AuthoredManifest],
    *,
    workers: int,
    threads: int,
    label: str,
) -> list[Prepared]:
    """``Publisher.prepare`` every item, results in order.

    ``prepare`` needs no lock (the content store is content-addressed and safe for concurrent
    writers) and its cost is mostly fsync latency plus Python per file, so the bench overlaps
    it: ``workers`` processes (each with its own ``Publisher``) of ``threads`` threads each.
    ``workers=threads=1`` is the plain serial loop of ``publish_many`` (use it to profile).
    """
    out: list[Prepared] = []
    step = max(len(items) // 10, 1)
    chunks = [items[i : i + PREPARE_CHUNK] for i in range(0, len(items), PREPARE_CHUNK)]
    pool = None
    if workers <= 1:
        _init_worker(publisher.data_dir, threads)
        results: Iterable[list[Prepared]] = map(_prepare_chunk, chunks)
    else:
        pool = ProcessPoolExecutor(
            workers, initializer=_init_worker, initargs=(publisher.data_dir, threads)
        )
        results = pool.map(_prepare_chunk, chunks)
    try:
        for chunk in results:
            before = len(out) // step
            out.extend(chunk)
            if len(out) // step != before:
                log(f"{label}: prepared {len(out):,}/{len(items):,}")
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return out


_worker: tuple[Publisher, int] | None = None  # this process's publisher and thread count


def _init_worker(data_dir: Path, threads: int) -> None:
    global _worker
    _worker = (Publisher(data_dir), threads)


def _prepare_chunk(items: Sequence[AuthoredManifest]) -> list[Prepared]:
    assert _worker is not None
    publisher, threads = _worker
    if threads <= 1:
        return [publisher.prepare(item) for item in items]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(publisher.prepare, items))


# --- measuring the catalog and one publish ----------------------------------------------------


@dataclass(frozen=True)
class Document:
    """One index document a bin lists."""

    bin: str  # the bin's role
    digest: str  # its key's digest
    level: int
    length: int  # bytes, as the bin signs it
    gzip_bytes: int  # its gzip copy on disk; 0 if the copy is missing


def catalog_stats(data_dir: Path) -> dict[str, Any]:
    """Size of the current catalog, from the signed snapshot and the bins it lists.

    Metadata: every role the snapshot lists, the snapshot, the timestamp and the root. Index:
    that plus every index document the bins list, by its signed length.
    """
    publisher = Publisher(data_dir)
    repo = publisher.repo
    with repo.lock():
        session = repo.open()
        bin_roles = _bin_roles(session, publisher)
        documents = list(_documents(session, publisher, bin_roles))
    meta = session.snapshot.signed.meta
    snapshot_bytes = session.timestamp.signed.snapshot_meta.length
    top = sum((repo.metadata_dir / n).stat().st_size for n in ("timestamp.json", "root.json"))
    bins = sorted(meta[f"{role}.json"].length for role in bin_roles)
    versioned = [f"{m.version}.{name}" for name, m in meta.items()]
    versioned.append(f"{session.timestamp.signed.snapshot_meta.version}.snapshot.json")
    metadata_bytes = sum(m.length for m in meta.values()) + snapshot_bytes + top
    # The gzip copies the service sends to clients that accept them (where the writer makes
    # them): what a device actually downloads.
    metadata_gzip = sum(_size(repo.metadata_dir / f"{name}.gz") for name in versioned)
    document_bytes = sum(d.length for d in documents)
    document_gzip = sum(d.gzip_bytes for d in documents)
    return {
        "catalog_metadata_bytes": metadata_bytes,
        "catalog_metadata_gzip_bytes": metadata_gzip,
        "catalog_index_bytes": metadata_bytes + document_bytes,
        "catalog_index_gzip_bytes": metadata_gzip + document_gzip,
        "roles": len(meta),
        "snapshot_bytes": snapshot_bytes,
        "bins": {
            "count": len(bins),
            "largest_bytes": bins[-1] if bins else 0,
            "p90_bytes": _quantile(bins, 0.9),
            "median_bytes": _quantile(bins, 0.5),
        },
        "index_documents": _describe_documents(documents),
        "role_bytes": {name.removesuffix(".json"): m.length for name, m in meta.items()},
    }


def _bin_roles(session: Session, publisher: Publisher) -> list[str]:
    """The roles of the snapshot that are bins."""
    roles = []
    for name in session.snapshot.signed.meta:
        role = name.removesuffix(".json")
        try:
            bin_of_role(role, publisher.layout)
        except ValueError:
            continue
        roles.append(role)
    return roles


def _documents(session: Session, publisher: Publisher, bin_roles: list[str]) -> Iterator[Document]:
    """Every index document the bins list, with the size of its served gzip copy."""
    targets_dir = publisher.repo.targets_dir
    for role in bin_roles:
        bin_ = bin_of_role(role, publisher.layout)
        for digest, segments in key_documents(
            bin_.directory, session.role(role).signed.targets
        ).items():
            for (level, _), target in segments.items():
                directory, _, name = target.path.rpartition("/")
                gz = targets_dir / directory / f"{target.hashes['sha256']}.{name}.gz"
                yield Document(role, digest, level, target.length, _size(gz))


def _describe_documents(documents: Sequence[Document]) -> dict[str, Any]:
    """Count, bytes and size spread of the index documents, overall and per merge level."""
    by_level: dict[int, list[int]] = collections.defaultdict(list)
    for d in documents:
        by_level[d.level].append(d.length)
    lengths = sorted(d.length for d in documents)
    return {
        "count": len(documents),
        "keys": len({(d.bin, d.digest) for d in documents}),
        "bytes": sum(lengths),
        "gzip_bytes": sum(d.gzip_bytes for d in documents),
        "gzip_copies_missing": sum(1 for d in documents if not d.gzip_bytes),
        "largest_bytes": lengths[-1] if lengths else 0,
        "p90_bytes": _quantile(lengths, 0.9),
        "median_bytes": _quantile(lengths, 0.5),
        # A merge into level L+1 writes one document about the size of a level-L+1 one.
        "by_level": {
            str(level): {
                "count": len(sizes),
                "bytes": sum(sizes),
                "median_bytes": _quantile(sorted(sizes), 0.5),
                "largest_bytes": max(sizes),
            }
            for level, sizes in sorted(by_level.items())
        },
    }


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _quantile(values: Sequence[int], q: float) -> int:
    return values[min(int(q * len(values)), len(values) - 1)] if values else 0


def _listing(directory: Path) -> dict[str, tuple[int, int, int]]:
    """``name -> (size, mtime, inode)`` of every file in ``directory`` (none if it is absent)."""
    out = {}
    try:
        with os.scandir(directory) as it:
            for entry in it:
                if entry.is_file():
                    st = entry.stat()
                    out[entry.name] = (st.st_size, st.st_mtime_ns, st.st_ino)
    except FileNotFoundError:
        pass
    return out


def _changed(
    before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]]
) -> dict[str, int]:
    """``name -> size`` of the files of ``after`` that are new or replaced since ``before``."""
    return {n: v[0] for n, v in after.items() if before.get(n) != v}


def publish_probe(
    data_dir: Path, item: AuthoredManifest, profile: cProfile.Profile | None = None
) -> dict[str, Any]:
    """Publish one new update with a fresh ``Publisher`` (as the CLI does) and measure it.

    Fractions are against the catalog's totals after the publish.
    """
    measured = measure_publish(data_dir, item, profile)
    return {**measured, **fractions(measured, catalog_stats(data_dir))}


def measure_publish(
    data_dir: Path, item: AuthoredManifest, profile: cProfile.Profile | None = None
) -> dict[str, Any]:
    """Publish one new update with a fresh ``Publisher``: its time and the bytes it wrote.

    Metadata: the files of ``repo/metadata/`` it created or replaced. Documents: the index
    documents it wrote into the served directories of the update's bins.
    """
    metadata_dir = data_dir / "repo" / "metadata"
    targets_dir = data_dir / "repo" / "targets"
    # Where the publish writes the documents of the update's keys: its bins' directories.
    layout = CatalogConfig.load(data_dir).layout
    served = [targets_dir / b.directory for b in filing(item.manifest, layout)]
    before = _listing(metadata_dir)
    served_before = [_listing(d) for d in served]
    t0 = time.perf_counter()
    publisher = Publisher(data_dir)
    t1 = time.perf_counter()
    if profile:
        profile.enable()
    result = publisher.publish(item)
    if profile:
        profile.disable()
    t2 = time.perf_counter()
    changed = _changed(before, _listing(metadata_dir))
    documents = [
        (match, size)
        for d, was in zip(served, served_before, strict=True)
        for name, size in _changed(was, _listing(d)).items()
        if (match := DOCUMENT_RE.match(name))
    ]
    # JSON files and their gzip copies are counted apart, each against its own catalog total.
    changed_bytes = sum(size for n, size in changed.items() if not n.endswith(".gz"))
    changed_gzip = sum(size for n, size in changed.items() if n.endswith(".gz"))
    plain = [(int(m.group(1)), size) for m, size in documents if not m.group(2)]
    document_bytes = sum(size for _, size in plain)
    document_gzip = sum(size for m, size in documents if m.group(2))
    return {
        "kind": item.manifest.kind.value,
        "keys": list(result.keys),
        "seconds": t2 - t1,
        "publisher_init_seconds": t1 - t0,
        "bins": list(result.bins),
        "files_changed": len(changed),
        "changed_bytes": changed_bytes,
        "bytes_written": publisher.repo.bytes_written,
        "changed_gzip_bytes": changed_gzip,
        "documents_written": len(plain),
        "document_levels": sorted(level for level, _ in plain),
        "document_bytes": document_bytes,
        "largest_document_bytes": max((size for _, size in plain), default=0),
        "document_gzip_bytes": document_gzip,
        "changed_index_bytes": changed_bytes + document_bytes,
        "changed_index_gzip_bytes": changed_gzip + document_gzip,
    }


def fractions(measured: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
    """A measured publish's bytes as fractions of the catalog (``catalog_stats``)."""
    metadata, metadata_gzip = stats["catalog_metadata_bytes"], stats["catalog_metadata_gzip_bytes"]
    index, index_gzip = stats["catalog_index_bytes"], stats["catalog_index_gzip_bytes"]
    return {
        "bin_bytes": [stats["role_bytes"].get(b, 0) for b in measured["bins"]],
        "catalog_metadata_bytes": metadata,
        "changed_fraction": measured["changed_bytes"] / metadata,
        "changed_gzip_fraction": (
            measured["changed_gzip_bytes"] / metadata_gzip if metadata_gzip else None
        ),
        "catalog_index_bytes": index,
        "changed_index_fraction": measured["changed_index_bytes"] / index,
        "changed_index_gzip_fraction": (
            measured["changed_index_gzip_bytes"] / index_gzip if index_gzip else None
        ),
    }


def probe_items(
    count: int, payload_dir: Path, *, hot: bool, catalog_size: int
) -> list[AuthoredManifest]:
    """The new updates published incrementally into a catalog of ``catalog_size`` updates.

    One of each kind in turn, from the same seed for every catalog but that catalog's
    vocabulary, so they land on its keys; ``hot`` ones go to the busiest key of their kind.
    """
    maker = SyntheticCatalog(PROBE_SEED + hot, payload_dir, catalog_size=catalog_size)
    items = [maker.make(PROBE_KINDS[i % len(PROBE_KINDS)], hot=hot) for i in range(count)]
    for item in items:
        check(item)
    return items


def merge_probe(
    data_dir: Path, payload_dir: Path, *, catalog_size: int, limit: int
) -> dict[str, Any]:
    """Publish updates to the busiest OS key until one of them merges that key's documents.

    A key's documents merge on one publish in ``segment_updates x fanout`` to it (512 with the
    defaults: into a level-1 document; one in 4,096 into level 2), so the typical and hot-key
    probes rarely see one. This measures what that publish costs. It runs last, on the big
    catalog only; the others' fractions are against the catalog after the merge.
    """
    maker = SyntheticCatalog(PROBE_SEED + 2, payload_dir, catalog_size=catalog_size)
    policy = SegmentPolicy()
    out: dict[str, Any] = {
        "kind": MERGE_KIND.value,
        "level1_merge_every_publishes_to_a_key": policy.segment_updates * policy.fanout,
        "limit": limit,
    }
    others: list[dict[str, Any]] = []
    for n in range(1, limit + 1):
        item = maker.make(MERGE_KIND, hot=True)
        check(item)
        gc.collect()
        measured = measure_publish(data_dir, item)
        if not any(measured["document_levels"]):
            others.append(measured)
            continue
        stats = catalog_stats(data_dir)
        merge = {**measured, **fractions(measured, stats)}
        log(
            f"merge after {n} publishes to {merge['keys'][0]}: {merge['seconds'] * 1000:.0f} ms, "
            f"{merge['documents_written']} documents of {merge['document_bytes']:,} bytes, "
            f"{merge['changed_index_fraction']:.3%} of the index"
        )
        return {
            **out,
            "publishes_until_merge": n,
            "merge": {k: _rounded(v) for k, v in merge.items()},
            "other_publishes": _summarize_light(others, stats),
        }
    log(f"no merge in {limit} publishes to the busiest {MERGE_KIND.value} key")
    stats = catalog_stats(data_dir)
    return {
        **out,
        "publishes_until_merge": None,
        "other_publishes": _summarize_light(others, stats),
    }


def _summarize_light(measured: list[dict[str, Any]], stats: dict[str, Any]) -> dict[str, Any]:
    """Spread of publishes measured without the catalog's totals, against ``stats``."""
    if not measured:
        return {}
    seconds = [m["seconds"] for m in measured]
    index = [m["changed_index_bytes"] for m in measured]
    return {
        "count": len(measured),
        "seconds_median": round(statistics.median(seconds), 4),
        "seconds_max": round(max(seconds), 4),
        "changed_index_bytes_median": statistics.median(index),
        "changed_index_bytes_max": max(index),
        "changed_index_fraction_median": round(
            statistics.median(index) / stats["catalog_index_bytes"], 6
        ),
        "changed_index_fraction_max": round(max(index) / stats["catalog_index_bytes"], 6),
    }


def summarize(catalog: Catalog, stats: dict[str, Any]) -> dict[str, Any]:
    """The JSON block of one built catalog."""
    phases = catalog.phases
    build_seconds = phases["init_seconds"] + phases["prepare_seconds"] + phases["commit_seconds"]
    return {
        "updates": catalog.updates,
        "build_seconds": round(build_seconds, 2),
        "build_updates_per_second": round(catalog.updates / build_seconds, 1),
        "build_phases": {k: round(v, 2) for k, v in phases.items()},
        "build_metadata_bytes_written": catalog.bytes_written,
        "catalog_metadata_bytes": stats["catalog_metadata_bytes"],
        "catalog_metadata_gzip_bytes": stats["catalog_metadata_gzip_bytes"],
        "catalog_index_bytes": stats["catalog_index_bytes"],
        "catalog_index_gzip_bytes": stats["catalog_index_gzip_bytes"],
        "roles": stats["roles"],
        "snapshot_bytes": stats["snapshot_bytes"],
        "bins": stats["bins"],
        "index_documents": stats["index_documents"],
    }


def summarize_probes(probes: list[dict]) -> dict[str, Any]:
    """Medians and spread of a set of incremental publishes."""
    if not probes:
        return {}
    seconds = [p["seconds"] for p in probes]
    changed = [p["changed_bytes"] for p in probes]
    fractions = [p["changed_fraction"] for p in probes]
    index_changed = [p["changed_index_bytes"] for p in probes]
    index_fractions = [p["changed_index_fraction"] for p in probes]
    index_gzip = [p["changed_index_gzip_fraction"] for p in probes]
    return {
        "incremental_publish_seconds_median": round(statistics.median(seconds), 4),
        "incremental_publish_seconds_max": round(max(seconds), 4),
        "incremental_publish_seconds_all": [round(s, 4) for s in seconds],
        # Metadata only: roles, snapshot, timestamp.
        "incremental_changed_bytes_median": statistics.median(changed),
        "incremental_changed_bytes_all": changed,
        "incremental_changed_fraction_median": round(statistics.median(fractions), 6),
        "incremental_changed_fraction_max": round(max(fractions), 6),
        "incremental_changed_gzip_fraction_median": _median_or_none(
            [p["changed_gzip_fraction"] for p in probes]
        ),
        # Metadata and the index documents written: what devices download (the goal's figure).
        "incremental_documents_written_all": [p["documents_written"] for p in probes],
        "incremental_changed_index_bytes_median": statistics.median(index_changed),
        "incremental_changed_index_bytes_all": index_changed,
        "incremental_changed_index_fraction_median": round(statistics.median(index_fractions), 6),
        "incremental_changed_index_fraction_max": round(max(index_fractions), 6),
        "incremental_changed_index_gzip_fraction_median": _median_or_none(index_gzip),
        "incremental_changed_index_gzip_fraction_max": _max_or_none(index_gzip),
        "probes": [{k: _rounded(v) for k, v in p.items()} for p in probes],
    }


def _median_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 6) if present else None


def _max_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(max(present), 6) if present else None


def _rounded(value: object) -> object:
    return round(value, 6) if isinstance(value, float) else value


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


# --- the run ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--updates", type=int, default=100_000, help="size of the big catalog (updates)")
    add("--quick", action="store_true", help="smoke run: --updates 10000")
    add("--baseline-updates", type=int, default=1_000, help="size of the in-run baseline")
    add("--probes", type=int, default=5, help="typical incremental publishes (kinds cycle)")
    add("--hot-probes", type=int, default=5, help="publishes to the busiest key of each kind")
    add(
        "--merge-probes",
        type=int,
        default=600,
        help="at most this many publishes to the busiest OS key, until one merges (0: none)",
    )
    add("--seed", type=int, default=SEED, help="seed of the synthetic catalog")
    add("--workers", type=int, default=4, help="processes that prepare payloads in the build")
    add("--threads", type=int, default=8, help="threads per prepare process (overlap fsyncs)")
    add("--batch", type=int, default=0, help="updates per bulk commit (0: one commit)")
    add("--work-dir", type=Path, help="where to build (default: a new temp dir, removed)")
    add("--keep", action="store_true", help="keep the work dir")
    add(
        "--profile-build",
        type=Path,
        help="cProfile the big build into this file (forces --workers 1 --threads 1)",
    )
    add("--profile-probes", type=Path, help="cProfile the big catalog's probes into this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.updates = 10_000
    if args.profile_build:
        args.workers = args.threads = 1
    return args


def catalog_sizes(args: argparse.Namespace) -> dict[str, int]:
    """The catalogs of the run and their sizes (updates), baseline first."""
    return {"baseline": args.baseline_updates, "catalog": args.updates}


def make_probes(
    args: argparse.Namespace, work: Path
) -> list[tuple[str, dict[str, AuthoredManifest]]]:
    """Every probe: its set and, for each catalog, the update to publish into it.

    Each catalog's probes are drawn from its own vocabulary (``probe_items``), so a hot-key
    probe lands on that catalog's busiest key.
    """
    probes: list[tuple[str, dict[str, AuthoredManifest]]] = []
    for label, count, hot in (("typical", args.probes, False), ("hot_key", args.hot_probes, True)):
        per_catalog = {
            name: probe_items(count, work / f"{name}-{label}", hot=hot, catalog_size=size)
            for name, size in catalog_sizes(args).items()
        }
        probes += [(label, {n: items[i] for n, items in per_catalog.items()}) for i in range(count)]
    return probes


def build_both(args: argparse.Namespace, work: Path) -> tuple[dict[str, Catalog], dict[str, Any]]:
    """Generate and build the baseline and the big catalog; returns them and the big mix."""
    catalogs: dict[str, Catalog] = {}
    mix: dict[str, Any] = {}
    for name, count in catalog_sizes(args).items():
        log(f"{name}: generating {count:,} synthetic updates")
        items, gen = generate(count, args.seed, work / f"{name}-payloads")
        log(
            f"{name}: generated in {gen['generate_seconds']:.1f}s, "
            f"validated in {gen['validate_seconds']:.1f}s"
        )
        if name == "catalog":
            mix = describe_mix(items)
        profile = cProfile.Profile() if args.profile_build and name == "catalog" else None
        catalog = build(
            name, items, work / f"{name}-data",
            workers=args.workers, threads=args.threads, batch=args.batch, profile=profile,
        )  # fmt: skip
        catalog.phases = {**gen, **catalog.phases}
        if profile:
            _report_profile(profile, args.profile_build)
        log(
            f"{name}: built {count:,} updates: {catalog.phases['prepare_seconds']:.1f}s "
            f"prepare + {catalog.phases['commit_seconds']:.1f}s commit"
        )
        catalogs[name] = catalog
        del items
    return catalogs, mix


def _report_profile(profile: cProfile.Profile, path: Path) -> None:
    profile.dump_stats(path)
    stats = pstats.Stats(profile, stream=sys.stderr)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)
    log(f"profile written to {path}")


def run_probes(
    probes: Sequence[tuple[str, dict[str, AuthoredManifest]]],
    catalogs: dict[str, Catalog],
    profile: cProfile.Profile | None,
) -> dict[str, dict[str, list[dict]]]:
    """Publish every probe into every catalog, alternating catalogs so noise hits both alike.

    Returns ``results[catalog name][probe set] -> measurements``.
    """
    results: dict[str, dict[str, list[dict]]] = {
        name: collections.defaultdict(list) for name in catalogs
    }
    for i, (label, items) in enumerate(probes):
        for name, catalog in catalogs.items():
            gc.collect()  # the bench's own garbage must not be collected inside a measurement
            prof = profile if name == "catalog" else None
            results[name][label].append(publish_probe(catalog.data_dir, items[name], prof))
        big, base = results["catalog"][label][-1], results["baseline"][label][-1]
        log(
            f"probe {i + 1}/{len(probes)} ({label} {big['kind']}): "
            f"{big['seconds'] * 1000:.0f} ms, metadata {big['changed_bytes']:,} bytes "
            f"({big['changed_fraction']:.3%}) in bins of {sum(big['bin_bytes']):,} bytes, "
            f"+ {big['documents_written']} documents of {big['document_bytes']:,} bytes: "
            f"{big['changed_index_fraction']:.3%} of the index; "
            f"baseline {base['seconds'] * 1000:.0f} ms, {base['changed_index_fraction']:.3%}"
        )
    return results


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    probes = make_probes(args, work)
    catalogs, mix = build_both(args, work)
    stats = {name: catalog_stats(c.data_dir) for name, c in catalogs.items()}
    profile = cProfile.Profile() if args.profile_probes else None
    results = run_probes(probes, catalogs, profile)
    if profile:
        _report_profile(profile, args.profile_probes)
    merge = None
    if args.merge_probes:
        log(f"publishing to the busiest {MERGE_KIND.value} key until its documents merge")
        merge = merge_probe(
            catalogs["catalog"].data_dir,
            work / "merge-payloads",
            catalog_size=args.updates,
            limit=args.merge_probes,
        )
    out = {
        **summarize(catalogs["catalog"], stats["catalog"]),
        **summarize_probes(results["catalog"]["typical"]),
    }
    base = {
        **summarize(catalogs["baseline"], stats["baseline"]),
        **summarize_probes(results["baseline"]["typical"]),
    }
    hot = summarize_probes(results["catalog"]["hot_key"])
    base_hot = summarize_probes(results["baseline"]["hot_key"])
    every = [*results["catalog"]["typical"], *results["catalog"]["hot_key"]]
    return {
        "benchmark": "publish",
        "seed": args.seed,
        "mix": mix,
        **out,
        "hot_key": hot,
        "hot_key_merge": merge,
        "prepare_workers": args.workers,
        "prepare_threads": args.threads,
        "commit_batch": args.batch or args.updates,
        "peak_rss_mb": {
            "bench": _peak_rss_mb(resource.RUSAGE_SELF),
            "prepare_workers": _peak_rss_mb(resource.RUSAGE_CHILDREN),
        },
        "goals": goals(out, every, merge),
        "baseline": {**base, "hot_key": base_hot},
        "ratios_vs_baseline": {
            "catalog_updates": _ratio(out["updates"], base["updates"]),
            "catalog_metadata_bytes": _ratio(
                out["catalog_metadata_bytes"], base["catalog_metadata_bytes"]
            ),
            "catalog_index_bytes": _ratio(out["catalog_index_bytes"], base["catalog_index_bytes"]),
            "incremental_publish_seconds_median": _ratio(
                out["incremental_publish_seconds_median"],
                base["incremental_publish_seconds_median"],
            ),
            "incremental_changed_bytes_median": _ratio(
                out["incremental_changed_bytes_median"], base["incremental_changed_bytes_median"]
            ),
            "incremental_changed_index_bytes_median": _ratio(
                out["incremental_changed_index_bytes_median"],
                base["incremental_changed_index_bytes_median"],
            ),
            "hot_key_publish_seconds_median": _ratio(
                hot.get("incremental_publish_seconds_median", 0),
                base_hot.get("incremental_publish_seconds_median", 0),
            ),
            "build_seconds_per_update": _ratio(
                out["build_seconds"] / out["updates"], base["build_seconds"] / base["updates"]
            ),
        },
        "environment": {
            "python": platform.python_version(),
            "tuf": tuf.__version__,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },  # main() adds the git commit
    }


def goals(
    out: dict[str, Any], every: Sequence[dict[str, Any]], merge: dict[str, Any] | None
) -> dict[str, Any]:
    """The issue's goals on the big catalog (``out``; ``every``: all its probes, hot included).

    "Changed under 1%" is judged on the index-inclusive fraction, since metadata and index
    documents are what devices download; the metadata-only fraction is reported beside it, and
    so is the rare publish that merges a hot key's documents (``merge_probe``), not judged.
    """
    merged = (merge or {}).get("merge") or {}
    return {
        "changed_fraction_judged": "changed_index_fraction",
        "changed_fraction_meaning": (
            "metadata files changed + index documents written (plain JSON) over the catalog's "
            "metadata + every index document its bins list: what devices download"
        ),
        "incremental_under_1s": out["incremental_publish_seconds_median"] < GOAL_SECONDS,
        "changed_under_1pct": out["incremental_changed_index_fraction_median"] < GOAL_FRACTION,
        "every_probe_under_1s": all(p["seconds"] < GOAL_SECONDS for p in every),
        "every_probe_changed_under_1pct": all(
            p["changed_index_fraction"] < GOAL_FRACTION for p in every
        ),
        "changed_index_fraction_median": out["incremental_changed_index_fraction_median"],
        "changed_index_fraction_max_any_probe": _max_or_none(
            [p["changed_index_fraction"] for p in every]
        ),
        "hot_key_merge_changed_index_fraction": merged.get("changed_index_fraction"),
        "metadata_only": {
            "changed_fraction_median": out["incremental_changed_fraction_median"],
            "changed_fraction_max_any_probe": _max_or_none([p["changed_fraction"] for p in every]),
            "changed_under_1pct": out["incremental_changed_fraction_median"] < GOAL_FRACTION,
            "every_probe_changed_under_1pct": all(
                p["changed_fraction"] < GOAL_FRACTION for p in every
            ),
        },
    }


def _source_revision() -> dict[str, object]:
    """The commit checked out, and whether src/ has uncommitted changes (others edit it live)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return {}
    return {"git_commit": head, "src_uncommitted_changes": bool(dirty)}


def _peak_rss_mb(who: int) -> int:
    return resource.getrusage(who).ru_maxrss // 1024  # Linux reports KiB


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="tidings-bench-publish-"))
    work.mkdir(parents=True, exist_ok=True)
    # The code measured is what this process imported at start; others may commit meanwhile.
    at_start = _source_revision()
    try:
        result = run(args, work)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            log(f"removing {work}")
            shutil.rmtree(work, ignore_errors=True)
    result["environment"].update(at_start)
    at_end = _source_revision()
    if at_end != at_start:
        result["environment"]["at_end"] = at_end
    result["total_seconds"] = round(time.perf_counter() - _START, 1)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
