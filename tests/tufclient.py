"""Test support: python-tuf's own Updater against a catalog, over files or HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tuf.api.exceptions import DownloadHTTPError
from tuf.api.metadata import Targets
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

from tidings.catalog.keyindex import SegmentName, key_digest, key_documents, parse_segment
from tidings.catalog.layout import Bin
from tidings.trust.fetcher import HttpxFetcher


class FileFetcher(FetcherInterface):
    """Serves ``file://`` URLs: python-tuf's client logic without a network."""

    def _fetch(self, url: str) -> Iterator[bytes]:
        path = Path(url.removeprefix("file://"))
        if not path.is_file():
            raise DownloadHTTPError(f"not found: {path}", 404)
        yield path.read_bytes()


def file_updater(data_dir: Path, client_dir: Path, *, bootstrap: bytes | None = None) -> Updater:
    """A client reading the catalog in ``data_dir`` straight from disk."""
    (client_dir / "metadata").mkdir(parents=True, exist_ok=True)
    (client_dir / "targets").mkdir(parents=True, exist_ok=True)
    repo = data_dir / "repo"
    return Updater(
        str(client_dir / "metadata"),
        f"file://{repo}/metadata/",
        str(client_dir / "targets"),
        f"file://{repo}/targets/",
        fetcher=FileFetcher(),
        bootstrap=bootstrap or (repo / "metadata" / "1.root.json").read_bytes(),
    )


def https_updater(
    data_dir: Path, client_dir: Path, base_url: str, *, bootstrap: bytes | None = None
) -> tuple[Updater, HttpxFetcher]:
    """A client of the running service at ``base_url``, trusting only the service's CA."""
    (client_dir / "metadata").mkdir(parents=True, exist_ok=True)
    (client_dir / "targets").mkdir(parents=True, exist_ok=True)
    fetcher = HttpxFetcher(ca_file=data_dir / "tls" / "ca.pem")
    updater = Updater(
        str(client_dir / "metadata"),
        f"{base_url}/metadata/",
        str(client_dir / "targets"),
        f"{base_url}/targets/",
        fetcher=fetcher,
        bootstrap=bootstrap or (data_dir / "repo" / "metadata" / "1.root.json").read_bytes(),
    )
    return updater, fetcher


def indexed_manifests(updater: Updater, bin_: Bin, key: str) -> dict[str, dict[str, Any]]:
    """Update id -> signed manifest JSON, from every index document of ``key`` in ``bin_``.

    Each document is resolved *by name* through python-tuf's own delegation walk (paths,
    terminating roles, signatures) and downloaded with its signed length and hash checked.
    """
    updater.get_targetinfo(f"{bin_.directory}/probe")  # loads every role on the way to bin_
    signed: Targets = updater._trusted_set[bin_.role]
    found: dict[str, dict[str, Any]] = {}
    digest = key_digest(key)
    documents = key_documents(bin_.directory, signed.targets).get(digest, {})
    for (level, number), target in documents.items():
        info = updater.get_targetinfo(target.path)
        assert info is not None, f"python-tuf does not resolve {target.path}"
        data = Path(updater.download_target(info)).read_bytes()
        for entry in parse_segment(data, SegmentName(digest, level, number), key)[1]:
            found[entry.update_id] = entry.manifest
    return found
