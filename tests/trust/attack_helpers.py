"""Shared pieces of the attack matrix: a device, its inventory, mirrors, a trickling server.

A ``Device`` is the device-side trust path under test and nothing more: one ``CatalogReader``
per scan (as ``scan.session`` builds it: bootstrap root only before the first scan, one
``BinCache`` for the device's life) and ``sync_catalog`` over an inventory that selects every
sample update. Its clock can be moved forward (``at=``) to play the freeze attack without
sleeping: python-tuf checks expiry against the reference time its trusted set took at start.

A *mirror* serves a ``RepositorySimulator``'s state either from memory (``MemoryMirror``) or
through the real service over real TLS on 127.0.0.1 (``HttpsMirror``), so one scenario runs
against both.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import pytest
from repo_simulator import BASE_URL, MemoryFetcher, RepositorySimulator
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Root
from tuf.ngclient.fetcher import FetcherInterface

from tidings.errors import IntegrityError
from tidings.manifest import Version
from tidings.scan.inventory_model import (
    HardwareDevice,
    InstalledProduct,
    Inventory,
    OsInfo,
    StorePackage,
)
from tidings.scan.sync import SyncResult, sync_catalog
from tidings.service.config import ServiceConfig
from tidings.service.server import running_server
from tidings.service.tls import SERVER_CERT, SERVER_KEY
from tidings.trust.catalog_reader import BinCache, CatalogReader
from tidings.trust.fetcher import HttpxFetcher

INVENTORY = Inventory(
    os=OsInfo(
        product="tidings-os-11",
        version=Version.parse("10.0.22631"),
        build=22631,
        architecture="x64",
    ),
    products=(
        InstalledProduct("contoso-editor", Version.parse("2.1")),
        InstalledProduct("tidings-defender", Version.parse("1.0")),
    ),
    devices=(
        HardwareDevice(
            instance_id="PCI\\VEN_8086&DEV_46A6\\3&11583659&0&10",
            hardware_ids=("PCI\\VEN_8086&DEV_46A6",),
        ),
    ),
    store=(StorePackage("Contoso.Notes", Version.parse("2.1.0.0")),),
)
"""Selects all five sample updates (see ``tidings.catalog.samples``)."""

Summary = tuple[tuple[tuple[str, int, str, str], ...], tuple[str, ...]]


def summary(result: SyncResult) -> Summary:
    """What a sync found, comparable across devices and runs."""
    entries = sorted(
        (e.manifest.id, e.manifest.revision, e.role, e.payload_dir) for e in result.entries
    )
    return tuple(entries), result.bins


@dataclass
class Device:
    """One device's trust state on disk: a metadata dir, a download dir and a bin cache."""

    home: Path
    bootstrap: bytes  # the root the device got at enrollment
    inventory: Inventory = INVENTORY
    cache: BinCache = field(default_factory=BinCache)
    last_reader: CatalogReader | None = None

    @property
    def metadata_dir(self) -> Path:
        return self.home / "metadata"

    @property
    def download_dir(self) -> Path:
        return self.home / "downloads"

    def reader(
        self, fetcher: FetcherInterface, *, base_url: str = BASE_URL, at: datetime | None = None
    ) -> CatalogReader:
        """A reader for one scan, as the agent builds it; ``at`` is the device's clock."""
        have_root = (self.metadata_dir / "root.json").exists()
        reader = CatalogReader(
            metadata_dir=self.metadata_dir,
            metadata_url=f"{base_url}/metadata/",
            targets_url=f"{base_url}/targets/",
            download_dir=self.download_dir,
            fetcher=fetcher,
            bootstrap=None if have_root else self.bootstrap,
            cache=self.cache,
        )
        if at is not None:
            # python-tuf takes "now" once per Updater; expiry is checked against it.
            reader.updater._trusted_set.reference_time = at
        self.last_reader = reader
        return reader

    def sync(
        self, fetcher: FetcherInterface, *, base_url: str = BASE_URL, at: datetime | None = None
    ) -> SyncResult:
        """One scan: refresh, then read the bins the inventory selects."""
        return sync_catalog(self.reader(fetcher, base_url=base_url, at=at), self.inventory)

    def files(self) -> dict[str, bytes]:
        """Every file the device holds (metadata and downloads), by relative path."""
        return {
            path.relative_to(self.home).as_posix(): path.read_bytes()
            for path in sorted(self.home.rglob("*"))
            if path.is_file()
        }


def new_device(data_dir: Path, home: Path) -> Device:
    """A device enrolled with the catalog's first root."""
    return Device(home, (data_dir / "repo/metadata/1.root.json").read_bytes())


def moved(sim: RepositorySimulator, *roles: str) -> dict[str, bytes]:
    """Device files of ``roles`` as ``sim`` serves them now (honest files an attack presented
    before the attacked one, which python-tuf rightly keeps)."""
    return {f"metadata/{r}.json": sim.bytes_at(sim.metadata_path(r)) for r in roles}


def fresh_sync(sim: RepositorySimulator, scratch: Path) -> Summary:
    """What a never-attacked device (kept under ``scratch``) finds in ``sim``'s state now."""
    scratch.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="fresh-device-", dir=scratch))
    return summary(new_device(sim.data_dir, home).sync(sim.fetcher()))


def sync(device: Device, mirror: Mirror, *, at: datetime | None = None) -> Summary:
    """Serve the simulator's state through ``mirror`` and sync ``device`` from it."""
    mirror.publish()
    return summary(device.sync(mirror.fetcher(), base_url=mirror.base_url, at=at))


def rejected(
    device: Device, mirror: Mirror, cause: type[Exception], *, at: datetime | None = None
) -> IntegrityError:
    """The sync fails with an ``IntegrityError`` caused by python-tuf's ``cause`` check."""
    mirror.publish()
    try:
        device.sync(mirror.fetcher(), base_url=mirror.base_url, at=at)
    except IntegrityError as error:
        assert isinstance(error.__cause__, cause), repr(error.__cause__)
        return error
    pytest.fail(f"the device accepted what {cause.__name__} should have refused")


def root_keys_replaced_by(signers: Sequence[CryptoSigner]) -> Callable[[Root], None]:
    """A forged root's edit (``RepositorySimulator.forge_root``): only ``signers`` sign roots."""

    def take_over(root: Root) -> None:
        for keyid in list(root.roles["root"].keyids):
            root.revoke_key(keyid, "root")
        for signer in signers:
            root.add_key(signer.public_key, "root")

    return take_over


def files_outside(root: Path, allowed: list[Path]) -> list[Path]:
    """Files under ``root`` that are not under any of ``allowed``."""
    return [
        p
        for p in root.rglob("*")
        if (p.is_file() or p.is_symlink()) and not any(p.is_relative_to(a) for a in allowed)
    ]


# -- mirrors ---------------------------------------------------------------------------------


class Mirror(Protocol):
    """Serves the simulator's current state to a device."""

    base_url: str
    name: str

    def fetcher(self) -> FetcherInterface: ...

    def publish(self) -> None:
        """Serve the simulator's state as it is now."""
        ...


class MemoryMirror:
    """The simulator itself, in memory."""

    name = "memory"
    base_url = BASE_URL

    def __init__(self, sim: RepositorySimulator) -> None:
        self.sim = sim

    def fetcher(self) -> MemoryFetcher:
        return self.sim.fetcher()

    def publish(self) -> None:
        pass  # the memory fetcher reads the simulator's files directly


class HttpsMirror:
    """The real service over real TLS, serving the simulator's state written to disk."""

    name = "https"

    def __init__(self, sim: RepositorySimulator, base_url: str) -> None:
        self.sim = sim
        self.base_url = base_url
        self._fetchers: list[HttpxFetcher] = []

    def fetcher(self) -> HttpxFetcher:
        fetcher = HttpxFetcher(ca_file=self.sim.data_dir / "tls/ca.pem", base_url=self.base_url)
        self._fetchers.append(fetcher)
        return fetcher

    def publish(self) -> None:
        self.sim.write_to(self.sim.repo_dir)

    def close(self) -> None:
        for fetcher in self._fetchers:
            fetcher.close()


@contextlib.contextmanager
def mirror_of(kind: str, sim: RepositorySimulator) -> Iterator[Mirror]:
    """A mirror of ``kind`` ("memory" or "https") serving ``sim``."""
    if kind == "memory":
        yield MemoryMirror(sim)
        return
    with running_server(sim.data_dir, ServiceConfig(port=0)) as endpoints:
        mirror = HttpsMirror(sim, endpoints.base_url)
        try:
            yield mirror
        finally:
            mirror.close()


# -- a trickling TLS server (slow retrieval) ------------------------------------------------


@dataclass
class TrickleServer:
    """A TLS server on 127.0.0.1 serving ``files``, trickling the responses ``slow`` chooses.

    ``slow(path)`` returns None to answer normally, else ``(head, body_step, interval_s)``:
    ``head`` is sent first, then ``body_step`` every ``interval_s`` until the client leaves or
    ``max_life_s`` passes. Every loop is bounded by ``max_life_s``.
    """

    data_dir: Path
    files: dict[str, bytes]
    slow: Callable[[str], tuple[bytes, bytes, float] | None]
    max_life_s: float = 12.0  # seconds; nothing here runs longer
    requests: list[str] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls = self.data_dir / "tls"
        self._context.load_cert_chain(tls / SERVER_CERT, tls / SERVER_KEY)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"https://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> TrickleServer:
        accept = threading.Thread(target=self._accept_loop, daemon=True)
        accept.start()
        self._threads.append(accept)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def _alive(self) -> bool:
        return not self._stop.is_set() and time.monotonic() - self._started < self.max_life_s

    def _accept_loop(self) -> None:
        while self._alive():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            worker = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            worker.start()
            self._threads.append(worker)

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(2)
        try:
            with self._context.wrap_socket(raw, server_side=True) as conn:
                request = b""
                while b"\r\n\r\n" not in request and len(request) < 16_384 and self._alive():
                    data = conn.recv(4096)
                    if not data:
                        return
                    request += data
                path = request.split(b" ", 2)[1].decode("ascii", "replace").lstrip("/")
                self.requests.append(path)
                self._answer(conn, path)
        except (OSError, ssl.SSLError, IndexError):
            return  # the client went away: that is the point of most of these tests

    def _answer(self, conn: ssl.SSLSocket, path: str) -> None:
        plan = self.slow(path)
        if plan is None:
            body = self.files.get(path)
            status = "200 OK" if body is not None else "404 Not Found"
            body = body or b""
            head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            conn.sendall(head.encode() + body)
            return
        start, step, interval_s = plan
        conn.sendall(start)
        while self._alive():
            time.sleep(interval_s)
            conn.sendall(step)


def elapsed_s(fn: Callable[[], object]) -> tuple[float, BaseException | None]:
    """Run ``fn``; return the wall-clock seconds it took and what it raised."""
    start = time.monotonic()
    try:
        fn()
    except BaseException as e:
        return time.monotonic() - start, e
    return time.monotonic() - start, None
