"""The content store: payloads kept once, by SHA-256, and linked into the served target tree.

Invariants: a file under ``content/sha256/`` always has the bytes its name says (written to a
temp file, hashed while copied, fsynced, then renamed); the served tree ``repo/targets/`` only
holds hard links to such files, named ``<sha256>.<name>`` as TUF consistent snapshots expect,
so any static web server can serve it. A stored file is never replaced by an equal one: every
served link stays a link to the one inode (storing a payload again costs no disk), and only a
file whose bytes do not match its name (torn by a crash) is rewritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tidings.catalog.piecemap import DEFAULT_PIECE_SIZE, PieceHasher, PieceMap
from tidings.catalog.staging import staged_path
from tidings.errors import CatalogError, PayloadError
from tidings.fsutil import fsync_dir

CHUNK = 1_048_576  # bytes read at a time
MAX_PAYLOAD_BYTES = 64 * 1024**3  # bytes; larger payloads are refused
SMALL_CONTENT_BYTES = 1_048_576  # bytes; served copies up to this size are compared in full


@dataclass(frozen=True)
class StoredFile:
    """A file now held by the content store."""

    sha256: str
    size: int  # bytes
    piece_map: PieceMap | None = None


class ContentStore:
    """Content-addressed files under ``root``; safe for concurrent writers."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, sha256: str) -> Path:
        """Where the content with this hash lives (it may not exist)."""
        return self.root / "sha256" / sha256[:2] / sha256

    def add_file(
        self,
        source: Path,
        *,
        piece_size: int = DEFAULT_PIECE_SIZE,
        expected_sha256: str | None = None,
        expected_size: int | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> StoredFile:
        """Copy ``source`` in, hashing it and building its piece map in the same pass.

        ``on_bytes`` is called with the size of each chunk as it is hashed (for progress).

        Raises:
            PayloadError: unreadable, too large, or not the size/hash the author gave.
        """
        hasher = PieceHasher(piece_size)
        tmp = self._temp()
        try:
            with source.open("rb") as src, tmp.open("wb") as dst:
                while chunk := src.read(CHUNK):
                    hasher.update(chunk)
                    dst.write(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
                    if dst.tell() > MAX_PAYLOAD_BYTES:
                        raise PayloadError(f"{source.name}: larger than {MAX_PAYLOAD_BYTES} bytes")
                dst.flush()
                os.fsync(dst.fileno())
            sha256, piece_map = hasher.finish()
            _check_expected(source.name, sha256, piece_map.length, expected_sha256, expected_size)
            if not self._keep_existing(sha256, piece_map.length):
                self._commit(tmp, sha256)
        except OSError as e:
            raise PayloadError(f"{source.name}: cannot read payload ({e.strerror})") from e
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return StoredFile(sha256, piece_map.length, piece_map)

    def add_bytes(self, data: bytes, sha256: str, *, durable: bool = True) -> StoredFile:
        """Store small generated content (manifests, piece maps) whose hash is known.

        ``durable=False`` skips the fsyncs: the caller syncs everything at once afterwards.
        """
        final = self.path_of(sha256)
        if _holds(final, data):
            with contextlib.suppress(FileNotFoundError):
                os.utime(final)  # in use again: garbage collection's age rule keeps it
        else:
            # Missing, or torn by a crash before a caller's deferred sync: (re)write it whole.
            tmp = self._temp()
            try:
                with tmp.open("wb") as f:
                    f.write(data)
                    f.flush()
                    if durable:
                        os.fsync(f.fileno())
                self._commit(tmp, sha256, durable=durable)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        return StoredFile(sha256, len(data))

    def stage_link(self, sha256: str, dest: Path) -> Path | None:
        """Prepare the served name ``dest`` to show the content ``sha256`` at the next commit.

        Returns None when ``dest`` already shows it (kept as it is, the same inode), else a
        hidden hard link beside it (staging.py) for the commit to rename over it.

        Raises:
            CatalogError: the content is no longer in the store (removed by a concurrent gc).
        """
        source = self.path_of(sha256)
        with contextlib.suppress(FileNotFoundError):  # a missing source is reported below
            if os.path.lexists(dest) and _same_content(source, dest):
                return None
        staged = staged_path(dest)
        for _ in range(3):  # the common case is one link(2); the others fix what is in the way
            try:
                os.link(source, staged)
                return staged
            except FileExistsError:  # a stale staged link of a killed publish
                staged.unlink()
            except FileNotFoundError:
                if not source.exists():
                    raise CatalogError(
                        f"content {sha256} left the content store during this publish "
                        "(a concurrent gc?): publish again"
                    ) from None
                dest.parent.mkdir(parents=True, exist_ok=True)
            except OSError:  # another filesystem
                shutil.copyfile(source, staged)
                return staged
        raise CatalogError(f"cannot stage {dest}: it keeps changing under the publish lock")

    def _keep_existing(self, sha256: str, size: int) -> bool:
        """Whether the stored file of ``sha256`` is whole and is kept (its mtime refreshed).

        Checked cheaply: the size first, the hash only when the size matches (an equal file
        is read once instead of being written again). The refreshed mtime tells garbage
        collection (gc.py) that a publish is about to use it.
        """
        final = self.path_of(sha256)
        try:
            if final.stat().st_size != size or _file_sha256(final) != sha256:
                return False
            os.utime(final)
        except FileNotFoundError:
            return False
        return True

    def _temp(self) -> Path:
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, suffix=".part")
        os.close(fd)
        return Path(name)

    def _commit(self, tmp: Path, sha256: str, *, durable: bool = True) -> None:
        final = self.path_of(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, final)
        if durable:
            fsync_dir(final.parent)


def _holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` exists with exactly ``data`` (small content: read back and compared)."""
    try:
        with path.open("rb") as f:
            return f.read(len(data) + 1) == data
    except FileNotFoundError:
        return False


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _same_content(source: Path, dest: Path) -> bool:
    """Whether ``dest`` shows ``source``: the same file, or (a copy) the same bytes."""
    if os.path.samefile(source, dest):
        return True
    size = source.stat().st_size
    if dest.stat().st_size != size:
        return False
    if size > SMALL_CONTENT_BYTES:
        return True  # a large copy was renamed into place whole; not re-read here
    return source.read_bytes() == dest.read_bytes()


def _check_expected(
    name: str, sha256: str, size: int, expected_sha256: str | None, expected_size: int | None
) -> None:
    if expected_size is not None and size != expected_size:
        raise PayloadError(f"{name}: size is {size} bytes, the manifest says {expected_size}")
    if expected_sha256 is not None and sha256 != expected_sha256.lower():
        raise PayloadError(f"{name}: sha256 is {sha256}, the manifest says {expected_sha256}")
