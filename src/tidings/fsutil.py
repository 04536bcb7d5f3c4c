"""Crash-safe file writes: temp file in the same directory, fsync, ``os.replace``, fsync dir.

Invariant: a reader of a final path sees either the old complete file or the new complete one,
never a partial write, even after kill -9 or power loss (docs/architecture.md, "Trust model").
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


class TooLargeError(ValueError):
    """A file is larger than its reader allows."""


def read_bounded(path: Path, limit: int) -> bytes:
    """Read ``path`` whole, but never more than ``limit`` bytes into memory.

    Every file Tidings reads back (metadata, keys, state, inventories) goes through this, so
    a damaged or hostile file cannot make a reader swallow gigabytes.

    Raises:
        OSError: missing or unreadable.
        TooLargeError: larger than ``limit`` bytes.
    """
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(f"{path} is larger than {limit} bytes")
    return data


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: Path, data: bytes, *, mode: int = 0o644, sync_dir: bool = True, durable: bool = True
) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename).

    ``sync_dir=False`` lets a caller that writes many files in one directory fsync it once;
    ``durable=False`` skips every fsync, for a caller that writes many files and then makes
    them all durable at once (``os.sync``) before anything points at them.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync_dir and durable:
        fsync_dir(path.parent)


@contextlib.contextmanager
def file_lock(path: Path, *, on_wait: Callable[[Path], None] | None = None) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) for the block.

    Serializes publishers and the service's re-signing across processes; the kernel drops
    the lock if the holder dies, so kill -9 never leaves a stale lock behind. ``on_wait`` is
    called once, before blocking, only if another holder has the lock: the library stays
    quiet and a command can say why it is waiting.
    """
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
