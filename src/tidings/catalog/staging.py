"""Staged names: where a commit's new served files wait, hidden, until the commit renames them.

A served name must never change its bytes (caches keep versioned files for a year), so nothing
appears under a served name before the commit that references it (repository.py). A staged
file is ``.<name>.staged`` beside its final name: hidden, never requested, never served by the
service (names.py refuses hidden segments); a publish killed before its commit leaves at worst
such files, which the next publish of the same name overwrites and gc.py removes.
"""

from __future__ import annotations

import os
from pathlib import Path

STAGED_SUFFIX = ".staged"


def staged_path(path: Path) -> Path:
    """The hidden name beside ``path`` where its content waits for a commit."""
    return path.with_name(f".{path.name}{STAGED_SUFFIX}")


def write_staged(path: Path, data: bytes, *, durable: bool = True) -> Path:
    """Write ``data`` under ``staged_path(path)`` (replacing a stale one); return that path.

    ``durable=False`` skips the fsync, for a caller that syncs everything at once afterwards.
    """
    staged = staged_path(path)
    for _ in range(3):  # the common case is one open(2); the others fix what is in the way
        try:
            fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:  # a stale one of a killed publish (maybe read-only)
            staged.unlink()
        except FileNotFoundError:
            staged.parent.mkdir(parents=True, exist_ok=True)
    else:
        raise FileExistsError(f"cannot create {staged}")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fchmod(fd, 0o644)  # whatever the umask: a static web server must read it
        if durable:
            os.fsync(fd)
    return staged
