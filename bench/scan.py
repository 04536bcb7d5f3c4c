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
import contextlib
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

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

from _synthetic import VENDORS, SyntheticCatalog, _hardware_id, bulk_prepared, check, key_histories
from publish import log
from tidings.agent.enroll import enroll
from tidings.catalog.config import CatalogConfig
from tidings.catalog.content import ContentStore
from tidings.catalog.create import InitOptions, create_data_dir
from tidings.catalog.entries import json_document
from tidings.catalog.indexer import bin_documents
from tidings.catalog.layout import BinCounts, CatalogLayout, bin_of_role
from tidings.catalog.publisher import Publisher
from tidings.catalog.repository import GZIP_LEVEL
from tidings.clock import SystemClock
from tidings.manifest import Kind, Version
from tidings.scan.inventory_model import (
    HardwareDevice,
    InstalledProduct,
    Inventory,
    OsInfo,
    StorePackage,
)
from tidings.service.config import ServiceConfig
from tidings.service.server import running_server
from tidings.service.state import ServiceState, default_database_url
from tidings.service.tls import ca_pin, create_ca, issue_server_certificate

SEED = 2026
DEVICE_SEED = 7


INVENTORY_VOCABULARY = 10_000
"""The device's inventory comes from the smallest catalog's vocabulary, which every larger
vocabulary contains (bench/_synthetic.py): the same device at every size."""


def typical_inventory() -> Inventory:
    """A typical desktop: the biggest OS product on x64, popular and tail apps, devices, store."""
    rng = __import__("random").Random(DEVICE_SEED)
    vocabulary = SyntheticCatalog(SEED, Path("unused"), catalog_size=INVENTORY_VOCABULARY)
    product, first_build, _ = vocabulary.typical_os_product()
    apps = list(vocabulary.app_products)
    installed = [*apps[:10], *rng.sample(apps[10:], 15)]
    products = [InstalledProduct(p, Version((rng.randint(1, 30),))) for p in installed]
    products.append(InstalledProduct("tidings-defender", Version((1,))))
    devices = []
    for vendor, bus, vid, _ in rng.sample(list(VENDORS), 12):
        for dev in rng.sample(list(vocabulary.device_pools[vendor]), 2):
            hwid = _hardware_id(rng, bus, vid, dev)
            devices.append(HardwareDevice(f"{hwid}\\{len(devices)}", (hwid,), ()))
    packages = list(vocabulary.store_packages)
    store = [StorePackage(p, Version((1, 0))) for p in rng.sample(packages, 15)]
    return Inventory(
        os=OsInfo(product, Version((10, 0, first_build + 700)), first_build + 700, "x64"),
        products=tuple(products),
        devices=tuple(devices),
        store=tuple(store),
    )


def build_catalog(size: int, data_dir: Path) -> dict[str, Any]:
    """Generate ``size`` updates and publish them in one commit through the real publisher.

    Payload files are not written (bench/_synthetic.py, ``payload_files=False``): the catalog
    metadata and the index documents are exactly what publishing real files would give.
    """
    t0 = time.perf_counter()
    # The bin counts `tidings server init --expected-updates SIZE` chooses.
    layout = CatalogLayout(BinCounts.for_catalog(size))
    options = InitOptions(config=CatalogConfig(layout=layout))
    create_data_dir(data_dir, clock=SystemClock(), options=options, extra=add_tls)
    unused = data_dir.parent / "unused"
    maker = SyntheticCatalog(SEED, unused, catalog_size=size, payload_files=False)
    items = list(maker.generate(size))
    t1 = time.perf_counter()
    histories = key_histories(items)
    prepared = [bulk_prepared(item) for item in items]
    del items
    t2 = time.perf_counter()
    Publisher(data_dir).commit_prepared(prepared)
    t3 = time.perf_counter()
    return {
        "generate_seconds": round(t1 - t0, 1),
        "commit_seconds": round(t3 - t2, 1),
        "key_histories": histories,
    }


def catalog_shape(data_dir: Path) -> dict[str, Any]:
    """Roles, snapshot size and bin sizes of a built catalog."""
    meta = data_dir / "repo" / "metadata"
    timestamp = json.loads((meta / "timestamp.json").read_bytes())
    snap_version = timestamp["signed"]["meta"]["snapshot.json"]["version"]
    snapshot = meta / f"{snap_version}.snapshot.json"
    roles = json.loads(snapshot.read_bytes())["signed"]["meta"]
    layout = CatalogConfig.load(data_dir).layout
    bin_sizes = []
    for name, info in roles.items():
        try:
            bin_of_role(name.removesuffix(".json"), layout)
        except ValueError:
            continue
        bin_sizes.append(info["length"])
    bin_sizes.sort()
    return {
        "roles": len(roles),
        "snapshot_bytes": snapshot.stat().st_size,
        "snapshot_gzip_bytes": (meta / f"{snapshot.name}.gz").stat().st_size,
        "bin_bytes_median": bin_sizes[len(bin_sizes) // 2],
        "bin_bytes_max": bin_sizes[-1],
        "bin_counts": layout.counts.__dict__,
    }


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
    with ServiceState.open(default_database_url(data_dir), clock=clock) as state:
        token = state.create_token("bench", lifetime=timedelta(hours=4), uses=None).token
    enroll(state_dir, server=url, pin=ca_pin(data_dir / "tls"), token=token, clock=clock)
    write_inventory(inventory, state_dir / "inventory.toml")
    return state_dir


class DeviceProcess:
    """One simulated device (bench/_device.py) in its own process, with a long-lived session."""

    def __init__(self, state_dir: Path, profile_to: Path | None = None) -> None:
        script = str(Path(__file__).with_name("_device.py"))
        env = dict(os.environ)
        if profile_to is not None:  # every scan after the cold one
            env["BENCH_DEVICE_PROFILE"] = str(profile_to)
        self._proc = subprocess.Popen(
            [sys.executable, script, str(state_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def scan(self) -> dict[str, Any]:
        """Search once; the device's own statistics."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write("scan\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the device process exited ({self._proc.wait()})")
        row: dict[str, Any] = json.loads(line)
        return row

    def close(self) -> None:
        """Quit and wait for the process."""
        assert self._proc.stdin is not None
        self._proc.stdin.write("quit\n")
        self._proc.stdin.close()
        self._proc.wait(timeout=60)


@contextlib.contextmanager
def service_process(data_dir: Path) -> Iterator[str]:
    """``tidings server run`` in its own process on a free loopback port; its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tidings = Path(sys.executable).with_name("tidings")
    proc = subprocess.Popen(
        [str(tidings), "server", "run", str(data_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"https://127.0.0.1:{port}"
    try:
        with httpx.Client(verify=ssl.create_default_context(cafile=data_dir / "tls/ca.pem")) as c:
            for _ in range(300):  # up to ~30 s
                try:
                    if c.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError(f"the service exited with {proc.returncode}")
                time.sleep(0.1)
            else:
                raise RuntimeError("the service did not become healthy")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def scan_catalog(
    data_dir: Path, work: Path, size: int, runs: int, profile_to: Path | None = None
) -> dict:
    """Cold, no-change and incremental scans of one built catalog.

    The service, the publisher (this process) and each device run in separate processes, as on
    separate machines; a device keeps one session for all its scans, as the agent does.
    """
    inventory = typical_inventory()
    publisher = Publisher(data_dir)
    maker = SyntheticCatalog(SEED + 1, work / "new-payloads", catalog_size=size)
    with service_process(data_dir) as url:
        colds, devices = [], []
        for run in range(runs):
            state = enroll_device(data_dir, url, work / f"device-{run}", inventory)
            devices.append(DeviceProcess(state, profile_to if run == 0 else None))
            colds.append(devices[-1].scan())
        device = devices[0]
        no_change = [device.scan() for _ in range(runs)]
        relevant, elsewhere = [], []
        for _ in range(max(runs, 5)):
            os_update = maker.make(Kind.OS, day=datetime.now(UTC).date(), hot=True)
            check(os_update)
            publisher.publish(os_update)
            relevant.append(device.scan())
            other = maker.make(Kind.STORE, day=datetime.now(UTC).date())
            check(other)
            publisher.publish(other)
            elsewhere.append(device.scan())
        for d in devices:
            d.close()
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
    """A plain TUF repository with every update of ``data_dir`` in one targets role: one entry
    per update whose custom field carries its manifest (our index, without the index)."""
    from tidings.catalog.keys import KeyStore
    from tidings.catalog.repository import Repository

    keys = KeyStore(data_dir / "keys")
    repo = Repository(data_dir, keys=keys, clock=SystemClock())
    layout = CatalogConfig.load(data_dir).layout
    content = ContentStore(data_dir / "content")
    with repo.lock():
        session = repo.open()
        entries: dict[str, TargetFile] = {}
        for meta_name in session.snapshot.signed.meta:
            role = meta_name.removesuffix(".json")
            try:
                bin_ = bin_of_role(role, layout)
            except ValueError:
                continue
            for _key, documents in bin_documents(content, bin_, session.role(role).signed):
                for entry in documents:
                    path = f"updates/{entry.update_id}.manifest.json"
                    document = json_document(entry.manifest)
                    sha = __import__("hashlib").sha256(document).hexdigest()
                    custom = {"custom": {"tidings": {"manifest": entry.manifest}}}
                    entries[path] = TargetFile(len(document), {"sha256": sha}, path, custom)
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


def scan_flat(flat_dir: Path, work: Path, runs: int) -> dict[str, Any]:
    """python-tuf's plain Updater over the flat repository, in a process of its own (as our
    devices are): refresh, load the one targets role, parse and evaluate every manifest."""
    rows = []
    script = str(Path(__file__).with_name("_device.py"))
    with running_server(flat_dir, ServiceConfig(port=0)) as endpoints:
        for run in range(runs):
            client = work / f"flat-client-{run}"
            argv = [
                sys.executable,
                script,
                "--flat",
                str(flat_dir),
                endpoints.base_url,
                str(client),
            ]
            done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=3600)
            rows.append(json.loads(done.stdout))
    return _median(rows)


def run_size(size: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    base = work / f"catalog-{size}"
    data_dir = base / "data"
    log(f"size {size:,}: generating and publishing")
    built = build_catalog(size, data_dir)
    log(f"size {size:,}: built ({built['generate_seconds']} s + {built['commit_seconds']} s)")
    profile_to = args.profile_dir / f"device-{size}.prof" if args.profile_dir else None
    scans = scan_catalog(data_dir, base, size, args.runs, profile_to)
    out: dict[str, Any] = {
        "updates": size,
        **{k: v for k, v in built.items() if k != "key_histories"},
        "catalog": catalog_shape(data_dir),
        "device_inventory": "same device at every size (10k vocabulary), see typical_inventory",
        **scans,
        "key_histories": built["key_histories"],
    }
    if size in args.baseline_sizes:
        log(f"size {size:,}: flat baseline")
        entries = build_flat(data_dir, base / "flat")
        out["flat_baseline"] = scan_flat(base / "flat", base, max(1, args.runs // 2))
        out["flat_baseline"]["targets_entries"] = entries
        out["cold_speedup_vs_flat"] = round(
            out["flat_baseline"]["seconds"] / out["cold"]["seconds"], 1
        )
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--baseline-sizes", default="100000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile-dir", type=Path, help="cProfile the first device here")
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
