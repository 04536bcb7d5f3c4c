"""``tidings-tuf-client``: the TUF conformance suite's client-under-test CLI.

Built on the same Updater configuration and fetcher as the agent, so the suite tests the trust
code devices run. Protocol::

    tidings-tuf-client --metadata-dir DIR init TRUSTED_ROOT
    tidings-tuf-client --metadata-dir DIR --metadata-url URL refresh
    tidings-tuf-client --metadata-dir DIR --metadata-url URL --target-name NAME [...]
                       --target-base-url URL --target-dir DIR download

Exit 0 on success, 1 on any failure. Plain HTTP is allowed here (the suite serves over HTTP);
the agent itself requires HTTPS. Over HTTPS the system's CAs are trusted, or with
``--ca-file PEM`` only that CA and only the update service's certificate, as on a device; a
server refused there fails with the one ``UntrustedServerError`` message.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from tuf.ngclient import Updater

from tidings.canonical import use_fast_canonical_json
from tidings.errors import IntegrityError, TidingsError
from tidings.trust.catalog_reader import translated_errors, updater_config
from tidings.trust.fetcher import HttpxFetcher


def _updater(args: argparse.Namespace, fetcher: HttpxFetcher) -> Updater:
    use_fast_canonical_json()
    return Updater(
        args.metadata_dir,
        args.metadata_url,
        args.target_dir,
        args.target_base_url,
        fetcher=fetcher,
        config=updater_config(),
        bootstrap=None,  # the trusted root.json in the metadata dir
    )


def _download(updater: Updater, names: list[str]) -> None:
    updater.refresh()
    for name in names:
        info = updater.get_targetinfo(name)
        if info is None:
            raise IntegrityError(f"target {name} is not in the signed metadata")
        if updater.find_cached_target(info) is None:  # already there with matching hashes
            updater.download_target(info)


def run(argv: list[str]) -> int:
    """Run one conformance command; returns the exit code."""
    parser = argparse.ArgumentParser(prog="tidings-tuf-client")
    parser.add_argument("--metadata-dir", required=True)
    parser.add_argument("--metadata-url")
    parser.add_argument("--target-name", action="append", default=[])
    parser.add_argument("--target-base-url")
    parser.add_argument("--target-dir")
    parser.add_argument("--ca-file", type=Path, help="trust only this CA, as a device does")
    parser.add_argument("command", choices=["init", "refresh", "download"])
    parser.add_argument("trusted_root", nargs="?")
    args = parser.parse_args(argv)
    try:
        if args.command == "init":
            if not args.trusted_root:
                parser.error("init needs TRUSTED_ROOT")
            Path(args.metadata_dir).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(args.trusted_root, Path(args.metadata_dir) / "root.json")
            return 0
        if not args.metadata_url:
            parser.error(f"{args.command} needs --metadata-url")
        if args.command == "download" and not (args.target_dir and args.target_base_url):
            parser.error("download needs --target-base-url and --target-dir")
        fetcher = HttpxFetcher(ca_file=args.ca_file, allow_http=True, base_url=args.metadata_url)
        try:
            with translated_errors():
                updater = _updater(args, fetcher)
                if args.command == "refresh":
                    updater.refresh()
                else:
                    _download(updater, args.target_name)
        finally:
            fetcher.close()
    except (TidingsError, OSError) as e:
        print(f"tidings-tuf-client: {e}", file=sys.stderr)
        return 1
    return 0


def main() -> None:
    """Console script entry point."""
    sys.exit(run(sys.argv[1:]))
