"""A simulated device for the scan benchmark: one long-lived ``UpdateSession`` in its own process.

A real device is another machine: its scans must not share a process (memory, the garbage
collector, the GIL) with the update service or the publisher. The benchmark starts this script
per device and drives it over stdin/stdout, one JSON line per command::

    python bench/_device.py STATE_DIR        # then write "scan" or "quit" lines

Each ``scan`` answers with the search's statistics; ``quit`` closes the session.

``python bench/_device.py --flat FLAT_DIR URL CLIENT_DIR`` is the baseline device instead:
python-tuf's plain ``Updater`` (no Tidings code on its trust path) over the flat repository,
then parsing and evaluating every manifest, timed; one JSON line.
"""

from __future__ import annotations

import cProfile
import json
import os
import sys
import time
from pathlib import Path

from tidings.scan.session import UpdateSession


def flat_scan(flat_dir: Path, url: str, client: Path) -> dict[str, object]:
    """The baseline: what a device must do when the catalog is one flat targets role."""
    from tuf.ngclient import Updater

    from scan import typical_inventory  # bench/ is this script's directory
    from tidings.manifest import manifest_from_dict
    from tidings.scan.applicability import evaluate
    from tidings.trust.catalog_reader import updater_config
    from tidings.trust.fetcher import HttpxFetcher

    inventory = typical_inventory()
    (client / "metadata").mkdir(parents=True)
    fetcher = HttpxFetcher(ca_file=flat_dir / "tls/ca.pem")
    t0 = time.perf_counter()
    updater = Updater(
        str(client / "metadata"),
        f"{url}/metadata/",
        str(client),
        f"{url}/targets/",
        fetcher=fetcher,
        config=updater_config(),
        bootstrap=(flat_dir / "repo/metadata/1.root.json").read_bytes(),
    )
    updater.refresh()
    updater.get_targetinfo("none")  # loads the one targets role
    targets = updater._trusted_set.targets
    manifests = [
        manifest_from_dict(t.custom["tidings"]["manifest"], source=p)
        for p, t in targets.targets.items()
    ]
    found = evaluate(manifests, inventory)
    row = {
        "seconds": round(time.perf_counter() - t0, 4),
        "bytes": fetcher.bytes_received,
        "updates_found": len(found.updates),
    }
    fetcher.close()
    return row


def main(argv: list[str]) -> int:
    if argv[1] == "--flat":
        print(json.dumps(flat_scan(Path(argv[2]), argv[3], Path(argv[4]))), flush=True)
        return 0
    session = UpdateSession(Path(argv[1]))
    # BENCH_DEVICE_PROFILE=FILE profiles every scan after the first (the cold one) into FILE.
    profile_to = os.environ.get("BENCH_DEVICE_PROFILE")
    profile = cProfile.Profile() if profile_to else None
    scans = 0
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "quit":
                break
            if command != "scan":
                print(json.dumps({"error": f"unknown command {command!r}"}), flush=True)
                continue
            if profile is not None and scans > 0:
                profile.enable()
            result = session.create_searcher().search()
            if profile is not None:
                profile.disable()
            scans += 1
            s = result.stats
            row = {
                "seconds": round(s.seconds, 4),
                "bytes": s.bytes_received,
                "bins_selected": s.bins_selected,
                "bins_verified": s.bins_verified,
                "documents_fetched": s.documents_fetched,
                "candidates": s.candidates,
                "updates_found": len(result.updates),
                "warnings": len(result.warnings),
            }
            print(json.dumps(row), flush=True)
    finally:
        session.close()
        if profile is not None and profile_to:
            profile.dump_stats(profile_to)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
