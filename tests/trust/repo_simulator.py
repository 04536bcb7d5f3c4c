"""An in-memory TUF repository for attack tests, in the spirit of python-tuf's RepositorySimulator.

The simulator starts as a byte-for-byte snapshot of a real data directory's ``repo/`` (so the
real publisher stays the source of truth) and serves it through ``MemoryFetcher``, the same
``FetcherInterface`` the device's ``HttpxFetcher`` implements. Tests then play the attacker (or
the honest service moving on) by editing the served files:

* file level: ``replace``, ``drop``, ``replay`` (serve bytes from an earlier ``save()``),
  ``serve_endless`` (a generator that never ends: only the client's length caps stop it);
* metadata level: ``load`` a role as served, ``commit`` roles the way the service does (sign
  each with the given or the real key, then a new snapshot and timestamp with the real online
  keys), ``resign_timestamp`` and ``forge_root`` with any signers, ``attacker_key``.

Keys are read from ``<data_dir>/keys/<role>/<keyid>.pem`` through the publisher's ``KeyStore``.
URLs are ``https://catalog.invalid/metadata/...`` and ``.../targets/...``; nothing touches a
socket. ``write_to`` copies the served state onto a real ``repo/`` directory, so the very same
scenario can also be served by the running service over real HTTPS.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.exceptions import DownloadHTTPError
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer
from tuf.ngclient.fetcher import FetcherInterface

from tidings.catalog.keys import KeyStore

BASE_URL = "https://catalog.invalid"
CHUNK_BYTES = 4096  # bytes per chunk the memory fetcher yields
ENDLESS_SAFETY_BYTES = 256 * 1024**2  # bytes; a client that reads this far ignored its caps
SERIALIZER = JSONSerializer(compact=True)


@dataclass(frozen=True)
class Endless:
    """A response body that never ends (the "endless data" attack)."""

    chunk: bytes = b"\x00" * CHUNK_BYTES


Body = bytes | Endless


class MemoryFetcher(FetcherInterface):
    """Serves ``files`` (``{url path: body}``) and records every requested URL.

    Paths are percent-decoded as a static web server would (python-tuf quotes role names).
    """

    def __init__(self, files: Mapping[str, Body], *, base_url: str = BASE_URL) -> None:
        self.files = files
        self.base_url = base_url.rstrip("/")
        self.requests: list[str] = []
        self.bytes_served: dict[str, int] = {}  # url -> bytes actually pulled by the client

    def _fetch(self, url: str) -> Iterator[bytes]:
        self.requests.append(url)
        prefix = f"{self.base_url}/"
        body = self.files.get(urllib.parse.unquote(url[len(prefix) :]))
        if not url.startswith(prefix) or body is None:
            raise DownloadHTTPError(f"not found: {url}", 404)
        return self._stream(url, body)

    def _stream(self, url: str, body: Body) -> Iterator[bytes]:
        self.bytes_served[url] = 0
        if isinstance(body, Endless):
            while self.bytes_served[url] < ENDLESS_SAFETY_BYTES:  # bounded, even if caps fail
                self.bytes_served[url] += len(body.chunk)
                yield body.chunk
            raise AssertionError(f"the client read {ENDLESS_SAFETY_BYTES} bytes of {url}")
        for start in range(0, len(body), CHUNK_BYTES):
            chunk = body[start : start + CHUNK_BYTES]
            self.bytes_served[url] += len(chunk)
            yield chunk


class RepositorySimulator:
    """The served state of one catalog, editable by tests (see the module docstring)."""

    def __init__(self, data_dir: Path, *, read_only: bool = False) -> None:
        self.data_dir = data_dir
        self.read_only = read_only  # a shared template: never written
        self.repo_dir = data_dir / "repo"
        self.keys = KeyStore(data_dir / "keys")
        self.files: dict[str, Body] = {}  # mutated in place: fetchers hold a reference
        self.reload()

    # -- the served files ------------------------------------------------------------------

    def reload(self) -> None:
        """Serve exactly what is on disk now (after the real publisher changed it)."""
        self.keys = KeyStore(self.data_dir / "keys")  # rotations add and retire keys
        self.files.clear()
        for path in sorted(self.repo_dir.rglob("*")):
            if path.is_file():
                self.files[path.relative_to(self.repo_dir).as_posix()] = path.read_bytes()

    def fetcher(self) -> MemoryFetcher:
        """A fetcher serving this simulator's current (and future) state."""
        return MemoryFetcher(self.files)

    def save(self) -> dict[str, Body]:
        """The current state, for ``restore`` or ``replay`` later."""
        return dict(self.files)

    def restore(self, saved: Mapping[str, Body]) -> None:
        """Serve ``saved`` again (the honest repository restored)."""
        self.files.clear()
        self.files.update(saved)

    def replace(self, path: str, data: bytes) -> None:
        """Serve ``data`` at ``path``."""
        self.files[path] = data

    def drop(self, path: str) -> None:
        """Answer 404 for ``path``."""
        del self.files[path]

    def replay(self, path: str, saved: Mapping[str, Body], from_path: str | None = None) -> None:
        """Serve at ``path`` the bytes ``saved`` held at ``from_path`` (default: ``path``)."""
        self.files[path] = saved[from_path or path]

    def serve_endless(self, path: str) -> None:
        """Serve a body at ``path`` that never ends."""
        self.files[path] = Endless()

    def bytes_at(self, path: str) -> bytes:
        """The bytes served at ``path`` (not an endless body)."""
        body = self.files[path]
        assert isinstance(body, bytes), f"{path} is not a plain body"
        return body

    def write_to(self, repo_dir: Path) -> None:
        """Make ``repo_dir`` hold exactly the served files (for the real service to serve).

        Files under ``repo/targets`` are hard links into the content store: a changed file is
        unlinked before it is rewritten, so the store itself is never modified.
        """
        assert not self.read_only, f"{self.data_dir} is shared: copy it before serving it"
        wanted = dict(self.files)
        for path in sorted(repo_dir.rglob("*")):
            rel = path.relative_to(repo_dir).as_posix()
            if path.is_file() and rel not in wanted:
                path.unlink()
        for rel, body in wanted.items():
            assert isinstance(body, bytes), "an endless body cannot be written to disk"
            path = repo_dir / rel
            if path.is_file() and path.read_bytes() == body:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
            path.write_bytes(body)

    # -- metadata -------------------------------------------------------------------------

    def metadata_path(self, role: str, version: int | None = None) -> str:
        """Where ``role`` is served: the current version unless ``version`` is given."""
        if role == "timestamp":
            return "metadata/timestamp.json"
        if version is None:
            version = self.current_version(role)
        return f"metadata/{version}.{role}.json"

    def current_version(self, role: str) -> int:
        """The version of ``role`` the served timestamp/snapshot/root lead to."""
        if role == "root":
            return int(self.load_path("metadata/root.json").signed.version)
        timestamp: Timestamp = self.load_path("metadata/timestamp.json").signed
        if role == "snapshot":
            return timestamp.snapshot_meta.version
        return self.snapshot().meta[f"{role}.json"].version

    def snapshot(self) -> Snapshot:
        """The served snapshot's signed part."""
        snapshot: Snapshot = self.load("snapshot").signed
        return snapshot

    def load_path(self, path: str) -> Metadata[Any]:
        """The metadata served at ``path``, parsed (not verified)."""
        return Metadata.from_bytes(self.bytes_at(path))

    def load(self, role: str) -> Metadata[Any]:
        """The current metadata of ``role`` as served."""
        return self.load_path(self.metadata_path(role))

    def signers(self, role: str) -> list[CryptoSigner]:
        """The real private keys of ``role`` (its family's key for a bin)."""
        return list(self.keys.signers(role))

    @staticmethod
    def attacker_key() -> CryptoSigner:
        """A fresh key nobody trusts."""
        return CryptoSigner.generate_ed25519()

    @staticmethod
    def sign(md: Metadata[Any], signers: list[Signer] | list[CryptoSigner]) -> bytes:
        """``md`` signed by exactly ``signers``, serialized as the publisher does."""
        md.signatures.clear()
        for signer in signers:
            md.sign(signer, append=True)
        return md.to_bytes(SERIALIZER)

    def commit(
        self,
        roles: Mapping[str, Metadata[Any]],
        *,
        signers: Mapping[str, list[CryptoSigner]] | None = None,
        bump: bool = True,
        snapshot_expires: datetime | None = None,
        timestamp_expires: datetime | None = None,
        online_signers: Mapping[str, list[CryptoSigner]] | None = None,
        edit_snapshot: Callable[[Snapshot], None] | None = None,
    ) -> None:
        """Publish ``roles`` as the service would: versioned files, new snapshot, timestamp.

        Each role is signed with ``signers[role]`` (default: its real key) and, with ``bump``,
        at the next version. The snapshot (changed last by ``edit_snapshot``) and the timestamp
        are always new versions signed with ``online_signers`` (default: the real online keys).
        """
        signers = signers or {}
        online_signers = online_signers or {}
        snap_md: Metadata[Snapshot] = self.load("snapshot")
        for role, md in roles.items():
            if bump:
                md.signed.version += 1
            data = self.sign(md, signers.get(role) or self.signers(role))
            self.files[self.metadata_path(role, md.signed.version)] = data
            snap_md.signed.meta[f"{role}.json"] = meta_file(md.signed.version, data)
        snap_md.signed.version += 1
        if edit_snapshot is not None:
            edit_snapshot(snap_md.signed)
        if snapshot_expires is not None:
            snap_md.signed.expires = snapshot_expires
        snap_data = self.sign(snap_md, online_signers.get("snapshot") or self.signers("snapshot"))
        self.files[self.metadata_path("snapshot", snap_md.signed.version)] = snap_data
        self.resign_timestamp(
            online_signers.get("timestamp"),
            snapshot_meta=meta_file(snap_md.signed.version, snap_data),
            expires=timestamp_expires,
        )

    def resign_timestamp(
        self,
        signers: list[CryptoSigner] | None = None,
        *,
        snapshot_meta: MetaFile | None = None,
        expires: datetime | None = None,
        version_step: int = 1,
    ) -> None:
        """Serve a new timestamp (next version) signed by ``signers`` (default: the real key)."""
        md: Metadata[Timestamp] = self.load("timestamp")
        md.signed.version += version_step
        if snapshot_meta is not None:
            md.signed.snapshot_meta = snapshot_meta
        if expires is not None:
            md.signed.expires = expires
        self.files["metadata/timestamp.json"] = self.sign(md, signers or self.signers("timestamp"))

    def forge_root(
        self,
        signers: list[CryptoSigner],
        mutate: Callable[[Root], None] | None = None,
    ) -> Metadata[Root]:
        """Serve root N+1 (changed by ``mutate``) signed by exactly ``signers``."""
        md: Metadata[Root] = self.load_path("metadata/root.json")
        md.signed.version += 1
        if mutate is not None:
            mutate(md.signed)
        data = self.sign(md, signers)
        self.files[f"metadata/{md.signed.version}.root.json"] = data
        self.files["metadata/root.json"] = data
        return md


def meta_file(version: int, data: bytes) -> MetaFile:
    """A snapshot/timestamp entry with length and hash, as the real repository writes them."""
    return MetaFile(version, len(data), {"sha256": hashlib.sha256(data).hexdigest()})


def target_url_path(path: str, sha256: str) -> str:
    """Where a target is served under consistent snapshots: ``targets/<dir>/<sha256>.<name>``."""
    directory, sep, name = path.rpartition("/")
    return f"targets/{directory}{sep}{sha256}.{name}"


def targets_of(md: Metadata[Any]) -> Targets:
    """The signed part of targets metadata, typed."""
    signed = md.signed
    assert isinstance(signed, Targets)
    return signed
