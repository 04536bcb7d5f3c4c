"""The versions the committed catalog reaches, read from ``timestamp.json`` and its snapshot.

Read again only when ``timestamp.json`` changes (its inode, size and mtime: a commit replaces
it by rename), so serving a versioned file costs one ``stat`` (names.py decides from the map).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from tidings.service.names import committed_versions

logger = logging.getLogger(__name__)

MAX_TIMESTAMP_BYTES = 65_536  # bytes
MAX_SNAPSHOT_BYTES = 64 * 1024**2  # bytes; the catalog writer's own bound


class CommittedVersions:
    """The committed role versions of one ``repo/metadata`` directory, cached per timestamp."""

    def __init__(self, metadata_dir: Path) -> None:
        self._dir = metadata_dir
        self._lock = threading.Lock()
        self._key: tuple[int, int, int] | None = None
        self._versions: dict[str, int] | None = None

    def current(self) -> dict[str, int] | None:
        """Role (and ``snapshot``) -> committed version; None if the catalog is unreadable."""
        try:
            st = os.stat(self._dir / "timestamp.json")
        except OSError:
            return None
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if key != self._key:
                self._versions = self._read()
                self._key = key
            return self._versions

    def _read(self) -> dict[str, int] | None:
        try:
            timestamp = _read(self._dir / "timestamp.json", MAX_TIMESTAMP_BYTES)
            return committed_versions(
                timestamp,
                lambda v: _read(self._dir / f"{v}.snapshot.json", MAX_SNAPSHOT_BYTES),
            )
        except (OSError, ValueError) as e:  # JSON errors are ValueErrors
            logger.warning("cannot read the committed catalog: %s", e)
            return None


def _read(path: Path, limit: int) -> bytes:
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path} is larger than {limit} bytes")
    return data
