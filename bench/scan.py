"""Device scans at catalog scale: cold, no-change and incremental, against a flat baseline.

Issue goals (at 100,000 updates unless noted): the incremental scan after one publish under
100 ms and under 100 KB; the cold scan time within 2x from 10k to 1M updates (a scan's cost
follows the device's inventory, not the catalog); at least 10x faster than python-tuf's plain
``Updater`` over the same updates in one flat targets role (the baseline, measured in the same
run over the same HTTPS service).

For each size: build the synthetic catalog (bench/_synthetic.py, the publish benchmark's
generator and builder), start the real service on loopback, enroll a device with a typical
inventory (one OS product on x64, 25 installed apps, 3 definitions products... see
``typical_inventory``), then measure through the real WUA-style API (``UpdateSession``):

* ``cold``: a fresh state directory's first search;
* ``no_change``: the same session searching again;
* ``incremental_relevant``: after one new OS cumulative update for the device's product;
* ``incremental_elsewhere``: after one update the device does not need.

Bytes are on the wire (metadata travels gzip-compressed). The baseline builds a flat TUF
repository (root, timestamp, snapshot, one targets role holding every update's manifest entry,
as our bins do) with python-tuf's Metadata API, serves it from the same service, and times
``Updater.refresh()`` plus loading the targets role and parsing and evaluating every manifest:
what a device must do when the catalog is not indexed.

    .venv/bin/python bench/scan.py                    # 10k and 100k
    .venv/bin/python bench/scan.py --sizes 10000      # a smoke run
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer
from tuf.ngclient import Updater

from _synthetic import OS_PRODUCTS, SyntheticCatalog, _hardware_id, check
from publish import build, generate, log
from tidings.agent.enroll import enroll
from tidings.catalog.entries import CUSTOM_KEY
from tidings.catalog.publisher import Publisher
from tidings.catalog.repository import GZIP_LEVEL
from tidings.clock import SystemClock
from tidings.manifest import Kind, Version, manifest_from_dict
from tidings.scan.applicability import evaluate
from tidings.scan.inventory_model import (
    HardwareDevice,
    InstalledProduct,
    Inventory,
    OsInfo,
    StorePackage,
)
from tidings.scan.session import UpdateSession
from tidings.service.config import ServiceConfig
from tidings.service.server import running_server
from tidings.service.state import ServiceState, default_database_url
from tidings.service.tls import ca_pin, create_ca, issue_server_certificate
from tidings.trust.catalog_reader import updater_config
from tidings.trust.fetcher import HttpxFetcher

SEED = 2026
DEVICE_SEED = 7


def typical_inventory(vocabulary: SyntheticCatalog) -> Inventory:
    """A typical desktop: the biggest OS product on x64, popular and tail apps, devices, store."""
    rng = __import__("random").Random(DEVICE_SEED)
    product, _, first_build, _ = OS_PRODUCTS[1]
    apps = vocabulary.app_products
    installed = [*apps[:10], *rng.sample(apps[10:], 15)]
    products = [InstalledProduct(p, Version((rng.randint(1, 30),))) for p in installed]
    products.append(InstalledProduct("tidings-defender", Version((1,))))
    devices = []
    for vendor, bus, vid, _ in rng.sample(list(__import__("_synthetic").VENDORS), 12):
        for dev in rng.sample(vocabulary.device_pools[vendor], 2):
            hwid = _hardware_id(rng, bus, vid, dev)
            devices.append(HardwareDevice(f"{hwid}\\{len(devices)}", (hwid,), ()))
    store = [StorePackage(p, Version((1, 0))) for p in rng.sample(vocabulary.store_packages, 15)]
    return Inventory(
        os=OsInfo(product, Version((10, 0, first_build + 700)), first_build + 700, "x64"),
        products=tuple(products),
        devices=tuple(devices),
        store=tuple(store),
    )


def write_inventory(inventory: Inventory, path: Path) -> None:
    """The inventory as the ``inventory.toml`` a simulated device carries."""
    assert inventory.os is not None
    lines = [
        "[os]",
        f'product = "{inventory.os.product}"',
        f'version = "{inventory.os.version}"',
        f"build = {inventory.os.build}",
        f'architecture = "{inventory.os.architecture}"',
    ]
    for p in inventory.products:
        lines += ["[[products]]", f'product = "{p.product}"', f'version = "{p.version}"']
    for d in inventory.devices:
        esc = [h.replace("\\", "\\\\") for h in d.hardware_ids]
        lines += [
            "[[devices]]",
            f'instance_id = "{d.instance_id.replace(chr(92), chr(92) * 2)}"',
            "hardware_ids = [" + ", ".join(f'"{h}"' for h in esc) + "]",
        ]
    for s in inventory.store:
        lines += ["[[store]]", f'package = "{s.package}"', f'version = "{s.version}"']
    path.write_text("\n".join(lines) + "\n")


def add_tls(data_dir: Path) -> None:
    clock = SystemClock()
    create_ca(data_dir / "tls", clock=clock)
    issue_server_certificate(data_dir / "tls", clock=clock)


def enroll_device(data_dir: Path, url: str, state_dir: Path, inventory: Inventory) -> Path:
    clock = SystemClock()
    state = ServiceState.open(default_database_url(data_dir), clock=clock)
    try:
        token = state.create_token("bench", lifetime=timedelta(hours=4), uses=None).token
    finally:
        state.close()
    enroll(state_dir, server=url, pin=ca_pin(data_dir / "tls"), token=token, clock=clock)
    write_inventory(inventory, state_dir / "inventory.toml")
    return state_dir


def measure(session: UpdateSession) -> dict[str, Any]:
    result = session.create_searcher().search()
    s = result.stats
    return {
        "seconds": round(s.seconds, 4),
        "bytes": s.bytes_received,
        "bins_selected": s.bins_selected,
        "bins_verified": s.bins_verified,
        "updates_found": len(result.updates),
    }


def scan_catalog(data_dir: Path, work: Path, vocabulary: SyntheticCatalog, runs: int) -> dict:
    """Cold, no-change and incremental scans of one built catalog."""
    inventory = typical_inventory(vocabulary)
    publisher = Publisher(data_dir)
    maker = SyntheticCatalog(SEED + 1, work / "new-payloads")
    with running_server(data_dir, ServiceConfig(port=0)) as endpoints:
        colds, sessions = [], []
        for run in range(runs):
            state = enroll_device(data_dir, endpoints.base_url, work / f"device-{run}", inventory)
            session = UpdateSession(state)
            sessions.append(session)
            colds.append(measure(session))
        session = sessions[0]
        no_change = [measure(session) for _ in range(runs)]
        relevant, elsewhere = [], []
        for _ in range(runs):
            os_update = maker.make(Kind.OS, day=datetime.now(UTC).date(), hot=True)
            check(os_update)
            publisher.publish(os_update)
            relevant.append(measure(session))
            other = maker.make(Kind.STORE, day=datetime.now(UTC).date())
            check(other)
            publisher.publish(other)
            elsewhere.append(measure(session))
        for s in sessions:
            s.close()
    return {
        "cold": _median(colds),
        "no_change": _median(no_change),
        "incremental_relevant": _median(relevant),
        "incremental_elsewhere": _median(elsewhere),
        "runs": runs,
    }


def _median(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    out["seconds_all"] = [r["seconds"] for r in rows]
    return out


# --- the flat baseline ---------------------------------------------------------------------


def build_flat(data_dir: Path, flat_dir: Path) -> int:
    """A plain TUF repository with every manifest entry of ``data_dir`` in one targets role."""
    from tidings.catalog.keys import KeyStore
    from tidings.catalog.repository import Repository

    keys = KeyStore(data_dir / "keys")
    repo = Repository(data_dir, keys=keys, clock=SystemClock())
    with repo.lock():
        session = repo.open()
        entries: dict[str, TargetFile] = {}
        for meta_name in session.snapshot.signed.meta:
            role = meta_name.removesuffix(".json")
            if role.count(".") >= 2:
                for path, target in session.role(role).signed.targets.items():
                    if path.endswith(".manifest.json"):
                        entries[path] = target
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
    signer = keys.signers("targets")[0]
    online = keys.signers("timestamp")[0]
    root = Root(expires=expires, consistent_snapshot=True)
    for role in ("root", "timestamp", "snapshot", "targets"):
        root.add_key((signer if role in ("root", "targets") else online).public_key, role)
    ser = JSONSerializer(compact=True)
    meta = flat_dir / "repo" / "metadata"
    meta.mkdir(parents=True)
    shutil.copytree(data_dir / "tls", flat_dir / "tls")

    def write(name: str, md: Metadata[Any], key: Any) -> bytes:
        md.sign(key)
        data = md.to_bytes(ser)
        (meta / name).write_bytes(data)
        (meta / f"{name}.gz").write_bytes(__import__("gzip").compress(data, GZIP_LEVEL, mtime=0))
        return data

    write("1.root.json", Metadata(root), signer)
    targets = write("1.targets.json", Metadata(Targets(expires=expires, targets=entries)), signer)
    snap = Snapshot(expires=expires, meta={"targets.json": _mf(1, targets)})
    snapshot = write("1.snapshot.json", Metadata(snap), online)
    ts = Timestamp(expires=expires, snapshot_meta=_mf(1, snapshot))
    write("timestamp.json", Metadata(ts), online)
    return len(entries)


def _mf(version: int, data: bytes) -> MetaFile:
    import hashlib

    return MetaFile(version, len(data), {"sha256": hashlib.sha256(data).hexdigest()})


def scan_flat(flat_dir: Path, work: Path, inventory: Inventory, runs: int) -> dict[str, Any]:
    """python-tuf's Updater over the flat repository: refresh, load all, parse, evaluate."""
    rows = []
    with running_server(flat_dir, ServiceConfig(port=0)) as endpoints:
        for run in range(runs):
            client = work / f"flat-client-{run}"
            (client / "metadata").mkdir(parents=True)
            fetcher = HttpxFetcher(ca_file=flat_dir / "tls/ca.pem")
            t0 = time.perf_counter()
            updater = Updater(
                str(client / "metadata"),
                f"{endpoints.base_url}/metadata/",
                str(client),
                f"{endpoints.base_url}/targets/",
                fetcher=fetcher,
                config=updater_config(),
                bootstrap=(flat_dir / "repo/metadata/1.root.json").read_bytes(),
            )
            updater.refresh()
            updater.get_targetinfo("none")  # loads the one targets role
            targets = updater._trusted_set.targets
            manifests = [
                manifest_from_dict(t.custom[CUSTOM_KEY]["manifest"], source=p)
                for p, t in targets.targets.items()
            ]
            found = evaluate(manifests, inventory)
            rows.append(
                {
                    "seconds": round(time.perf_counter() - t0, 4),
                    "bytes": fetcher.bytes_received,
                    "updates_found": len(found.updates),
                }
            )
            fetcher.close()
    return _median(rows)


def run_size(size: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    log(f"size {size:,}: generating")
    base = work / f"catalog-{size}"
    items, phases = generate(size, SEED, base / "payloads")
    data_dir = base / "data"
    log(f"size {size:,}: building")
    catalog = build(f"{size}", items, data_dir, workers=args.workers, threads=args.threads, batch=0)
    add_tls(data_dir)
    del items
    vocabulary = SyntheticCatalog(SEED, base / "unused")
    log(f"size {size:,}: scanning")
    scans = scan_catalog(data_dir, base, vocabulary, args.runs)
    out: dict[str, Any] = {
        "updates": size,
        "build_seconds": round(sum(catalog.phases.values()), 1),
        "generate_seconds": round(phases["generate_seconds"], 1),
        **scans,
    }
    if size in args.baseline_sizes:
        log(f"size {size:,}: flat baseline")
        entries = build_flat(data_dir, base / "flat")
        out["flat_baseline"] = scan_flat(
            base / "flat", base, typical_inventory(vocabulary), max(1, args.runs // 2)
        )
        out["flat_baseline"]["targets_entries"] = entries
        out["cold_speedup_vs_flat"] = round(
            out["flat_baseline"]["seconds"] / out["cold"]["seconds"], 1
        )
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--baseline-sizes", default="100000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--work-dir", type=Path)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    args.baseline_sizes = {int(s) for s in args.baseline_sizes.split(",") if s}
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="tidings-bench-scan-"))
    results = [run_size(size, args, work) for size in sizes]
    report: dict[str, Any] = {"benchmark": "scan", "seed": SEED, "sizes": results}
    by_size = {r["updates"]: r for r in results}
    if len(results) > 1:
        small, big = by_size[min(by_size)], by_size[max(by_size)]
        report["cold_time_ratio_largest_vs_smallest"] = round(
            big["cold"]["seconds"] / small["cold"]["seconds"], 2
        )
    if 100_000 in by_size:
        r = by_size[100_000]
        report["goals_at_100k"] = {
            "incremental_under_100ms": r["incremental_relevant"]["seconds"] < 0.1,
            "incremental_under_100kb": r["incremental_relevant"]["bytes"] < 100_000,
            "cold_10x_faster_than_flat": r.get("cold_speedup_vs_flat", 0) >= 10,
        }
    json.dump(report, sys.stdout, indent=2)
    print()
    if not args.keep and not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
