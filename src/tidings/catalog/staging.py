"""Staged names: where a commit's new served files wait, hidden, until the commit renames them.

A served name must never change its bytes (caches keep versioned files for a year), so nothing
appears under a served name before the commit that references it (repository.py). A staged
file is ``.<name>.staged`` beside its final name: hidden, never requested, never served by the
service (names.py refuses hidden segments); a publish killed before its commit leaves at worst
such files, which the next publish of the same name overwrites and gc.py removes.
"""

from __future__ import annotations

import contextlib
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
    staged.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        staged.unlink()  # a stale one may be read-only, or a hard link into the content store
    with staged.open("xb") as f:
        f.write(data)
        f.flush()
        if durable:
            os.fsync(f.fileno())
    os.chmod(staged, 0o644)
    return staged
