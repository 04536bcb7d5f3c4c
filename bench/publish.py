"""Publishing at catalog scale: build a synthetic catalog, then publish single updates into it.

Issue goal: with 100,000 updates in the catalog, one incremental publish (the real
``Publisher.publish`` path: hash and store the payload, then one commit under the lock) takes
under 1 s and changes under 1% of the catalog's metadata bytes (DESIGN.md §3: the cost of a
change follows what changed, not what the catalog holds).

Two catalogs are built the same way from the same generator (bench/_synthetic.py, fixed seed):
the big one (``--updates``, default 100,000) and the in-run baseline (``--baseline-updates``,
default 1,000). The same probe updates are then published into both, alternating big/baseline
so that machine noise hits both alike; the ratio of the medians shows whether the incremental
cost follows the catalog's size. Two probe sets, one update of each kind in each:

* ``typical``: drawn from the catalog's own distribution (the issue's goals are judged on their
  median);
* ``hot_key``: filed under the busiest key of each kind (the most popular OS product and
  architecture, app product, driver vendor, definitions product, store package): where the
  next real update most likely lands, and where the bins are largest.

"Changed bytes" of a publish are measured on disk: the total size of the files in
``repo/metadata/`` that are new or replaced after it. "Catalog bytes" are those of the current
catalog: every role file the snapshot lists (by its signed length), the snapshot, the
timestamp and the current root.

Prints one JSON document on stdout; progress goes to stderr. From the repository root:

    .venv/bin/python bench/publish.py            # 100k updates (5-10 minutes on 2 cores)
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
from tidings.catalog.create import create_data_dir
from tidings.catalog.index import index_keys
from tidings.catalog.publisher import Prepared, Publisher
from tidings.clock import SystemClock
from tidings.manifest import AuthoredManifest, Kind

SEED = 2026
PROBE_SEED = 4242
PROBE_KINDS = (Kind.OS, Kind.APP, Kind.DRIVER, Kind.DEFINITIONS, Kind.STORE)
GOAL_SECONDS = 1.0
GOAL_FRACTION = 0.01
PREPARE_CHUNK = 250  # updates per task handed to a prepare worker
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
    """``count`` validated synthetic updates (payload files written), and the time it took."""
    t0 = time.perf_counter()
    items = list(SyntheticCatalog(seed, payload_dir).generate(count))
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


def catalog_stats(data_dir: Path) -> dict[str, Any]:
    """Size of the current catalog's metadata and of its roles, from the signed snapshot."""
    repo = Publisher(data_dir).repo
    with repo.lock():
        session = repo.open()
    meta = session.snapshot.signed.meta
    snapshot_bytes = session.timestamp.signed.snapshot_meta.length
    top = sum((repo.metadata_dir / n).stat().st_size for n in ("timestamp.json", "root.json"))
    bins = sorted(m.length for name, m in meta.items() if name.count(".") >= 3)
    versioned = [f"{m.version}.{name}" for name, m in meta.items()]
    versioned.append(f"{session.timestamp.signed.snapshot_meta.version}.snapshot.json")
    return {
        "catalog_metadata_bytes": sum(m.length for m in meta.values()) + snapshot_bytes + top,
        # The gzip copies the service sends to clients that accept them (where the writer
        # makes them): what a device actually downloads.
        "catalog_metadata_gzip_bytes": sum(
            _size(repo.metadata_dir / f"{name}.gz") for name in versioned
        ),
        "roles": len(meta),
        "snapshot_bytes": snapshot_bytes,
        "bins": {
            "count": len(bins),
            "largest_bytes": bins[-1] if bins else 0,
            "p90_bytes": _quantile(bins, 0.9),
            "median_bytes": _quantile(bins, 0.5),
        },
        "role_bytes": {name.removesuffix(".json"): m.length for name, m in meta.items()},
    }


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _quantile(values: Sequence[int], q: float) -> int:
    return values[min(int(q * len(values)), len(values) - 1)] if values else 0


def _listing(directory: Path) -> dict[str, tuple[int, int, int]]:
    """``name -> (size, mtime, inode)`` of every file in ``directory``."""
    out = {}
    with os.scandir(directory) as it:
        for entry in it:
            if entry.is_file():
                st = entry.stat()
                out[entry.name] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return out


def publish_probe(
    data_dir: Path, item: AuthoredManifest, profile: cProfile.Profile | None = None
) -> dict[str, Any]:
    """Publish one new update with a fresh ``Publisher`` (as the CLI does) and measure it."""
    metadata_dir = data_dir / "repo" / "metadata"
    before = _listing(metadata_dir)
    t0 = time.perf_counter()
    publisher = Publisher(data_dir)
    t1 = time.perf_counter()
    if profile:
        profile.enable()
    result = publisher.publish(item)
    if profile:
        profile.disable()
    t2 = time.perf_counter()
    after = _listing(metadata_dir)
    changed = {n: v[0] for n, v in after.items() if before.get(n) != v}
    stats = catalog_stats(data_dir)
    # JSON metadata and its gzip copies are counted apart, each against its own catalog total.
    changed_bytes = sum(size for n, size in changed.items() if not n.endswith(".gz"))
    changed_gzip = sum(size for n, size in changed.items() if n.endswith(".gz"))
    gzip_total = stats["catalog_metadata_gzip_bytes"]
    return {
        "kind": item.manifest.kind.value,
        "seconds": t2 - t1,
        "publisher_init_seconds": t1 - t0,
        "bins": list(result.bins),
        "bin_bytes": [stats["role_bytes"].get(b, 0) for b in result.bins],
        "files_changed": len(changed),
        "changed_bytes": changed_bytes,
        "bytes_written": publisher.repo.bytes_written,
        "catalog_metadata_bytes": stats["catalog_metadata_bytes"],
        "changed_fraction": changed_bytes / stats["catalog_metadata_bytes"],
        "changed_gzip_bytes": changed_gzip,
        "changed_gzip_fraction": changed_gzip / gzip_total if gzip_total else None,
    }


def probe_items(count: int, payload_dir: Path, *, hot: bool) -> list[AuthoredManifest]:
    """The new updates published incrementally: the same ones into every catalog.

    One of each kind in turn; ``hot`` ones go to the busiest key of their kind.
    """
    maker = SyntheticCatalog(PROBE_SEED + hot, payload_dir)
    items = [maker.make(PROBE_KINDS[i % len(PROBE_KINDS)], hot=hot) for i in range(count)]
    for item in items:
        check(item)
    return items


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
        "roles": stats["roles"],
        "snapshot_bytes": stats["snapshot_bytes"],
        "bins": stats["bins"],
    }


def summarize_probes(probes: list[dict]) -> dict[str, Any]:
    """Medians and spread of a set of incremental publishes."""
    if not probes:
        return {}
    seconds = [p["seconds"] for p in probes]
    changed = [p["changed_bytes"] for p in probes]
    fractions = [p["changed_fraction"] for p in probes]
    return {
        "incremental_publish_seconds_median": round(statistics.median(seconds), 4),
        "incremental_publish_seconds_max": round(max(seconds), 4),
        "incremental_publish_seconds_all": [round(s, 4) for s in seconds],
        "incremental_changed_bytes_median": statistics.median(changed),
        "incremental_changed_bytes_all": changed,
        "incremental_changed_fraction_median": round(statistics.median(fractions), 6),
        "incremental_changed_fraction_max": round(max(fractions), 6),
        "incremental_changed_gzip_fraction_median": _median_or_none(
            [p["changed_gzip_fraction"] for p in probes]
        ),
        "probes": [{k: _rounded(v) for k, v in p.items()} for p in probes],
    }


def _median_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 6) if present else None


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


def build_both(args: argparse.Namespace, work: Path) -> tuple[dict[str, Catalog], dict[str, Any]]:
    """Generate and build the baseline and the big catalog; returns them and the big mix."""
    catalogs: dict[str, Catalog] = {}
    mix: dict[str, Any] = {}
    for name, count in (("baseline", args.baseline_updates), ("catalog", args.updates)):
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
    probes: Sequence[tuple[str, AuthoredManifest]],
    catalogs: dict[str, Catalog],
    profile: cProfile.Profile | None,
) -> dict[str, dict[str, list[dict]]]:
    """Publish every probe into every catalog, alternating catalogs so noise hits both alike.

    Returns ``results[catalog name][probe set] -> measurements``.
    """
    results: dict[str, dict[str, list[dict]]] = {
        name: collections.defaultdict(list) for name in catalogs
    }
    for i, (label, item) in enumerate(probes):
        for name, catalog in catalogs.items():
            gc.collect()  # the bench's own garbage must not be collected inside a measurement
            prof = profile if name == "catalog" else None
            results[name][label].append(publish_probe(catalog.data_dir, item, prof))
        big, base = results["catalog"][label][-1], results["baseline"][label][-1]
        log(
            f"probe {i + 1}/{len(probes)} ({label} {item.manifest.kind.value}): "
            f"{big['seconds'] * 1000:.0f} ms, {big['changed_bytes']:,} bytes changed "
            f"({big['changed_fraction']:.3%}) in bins of {sum(big['bin_bytes']):,} bytes; "
            f"baseline {base['seconds'] * 1000:.0f} ms"
        )
    return results


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    probes = [("typical", p) for p in probe_items(args.probes, work / "probes", hot=False)]
    probes += [("hot_key", p) for p in probe_items(args.hot_probes, work / "hot", hot=True)]
    catalogs, mix = build_both(args, work)
    stats = {name: catalog_stats(c.data_dir) for name, c in catalogs.items()}
    profile = cProfile.Profile() if args.profile_probes else None
    results = run_probes(probes, catalogs, profile)
    if profile:
        _report_profile(profile, args.profile_probes)
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
        "prepare_workers": args.workers,
        "prepare_threads": args.threads,
        "commit_batch": args.batch or args.updates,
        "peak_rss_mb": {
            "bench": _peak_rss_mb(resource.RUSAGE_SELF),
            "prepare_workers": _peak_rss_mb(resource.RUSAGE_CHILDREN),
        },
        "goals": {
            "incremental_under_1s": out["incremental_publish_seconds_median"] < GOAL_SECONDS,
            "changed_under_1pct": out["incremental_changed_fraction_median"] < GOAL_FRACTION,
            "every_probe_under_1s": all(p["seconds"] < GOAL_SECONDS for p in every),
            "every_probe_changed_under_1pct": all(
                p["changed_fraction"] < GOAL_FRACTION for p in every
            ),
        },
        "baseline": {**base, "hot_key": base_hot},
        "ratios_vs_baseline": {
            "catalog_updates": _ratio(out["updates"], base["updates"]),
            "catalog_metadata_bytes": _ratio(
                out["catalog_metadata_bytes"], base["catalog_metadata_bytes"]
            ),
            "incremental_publish_seconds_median": _ratio(
                out["incremental_publish_seconds_median"],
                base["incremental_publish_seconds_median"],
            ),
            "incremental_changed_bytes_median": _ratio(
                out["incremental_changed_bytes_median"], base["incremental_changed_bytes_median"]
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
            **_source_revision(),
        },
    }


def _source_revision() -> dict[str, object]:
    """The commit measured, and whether src/ had uncommitted changes (others edit it live)."""
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
    try:
        result = run(args, work)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            log(f"removing {work}")
            shutil.rmtree(work, ignore_errors=True)
    result["total_seconds"] = round(time.perf_counter() - _START, 1)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
