"""The catalog's settings, fixed at ``server init`` and stored as ``DATA_DIR/catalog.json``.

The bin layout must never change under a live catalog (devices compute bin names from it), so
it is written once and read back by every publisher and the service.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from tidings.catalog.layout import BinCounts, CatalogLayout
from tidings.catalog.repository import ExpiryPolicy
from tidings.errors import ConfigError
from tidings.fsutil import atomic_write

FILE_NAME = "catalog.json"
FORMAT = 2  # 2: one bin count per family (per-key index documents)


@dataclass(frozen=True)
class CatalogConfig:
    """Layout and expiry of one catalog."""

    layout: CatalogLayout = field(default_factory=CatalogLayout)
    expiry: ExpiryPolicy = field(default_factory=ExpiryPolicy)

    def save(self, data_dir: Path) -> None:
        """Write ``catalog.json`` into ``data_dir``."""
        c = self.layout.counts
        doc = {
            "format": FORMAT,
            "bins": {
                "os": c.os,
                "apps": c.apps,
                "definitions": c.definitions,
                "store": c.store,
                "vendor": c.vendor,
            },
            "expiry_seconds": {
                name: int(getattr(self.expiry, name).total_seconds())
                for name in ("root", "targets", "definitions", "snapshot", "timestamp")
            },
        }
        atomic_write(data_dir / FILE_NAME, json.dumps(doc, indent=2).encode() + b"\n")

    @classmethod
    def load(cls, data_dir: Path) -> CatalogConfig:
        """Read ``catalog.json`` from ``data_dir``.

        Raises:
            ConfigError: missing, unreadable or malformed (not a data directory made by
                ``server init``).
        """
        require_data_dir(data_dir)
        path = data_dir / FILE_NAME
        try:
            doc = json.loads(path.read_bytes()[:65536])
            if doc["format"] == 1:
                raise ConfigError(
                    f"{path} is from an earlier Tidings whose bins listed every update; this "
                    "version indexes by key: create a new data directory and publish again"
                )
            if doc["format"] != FORMAT:
                raise ConfigError(f"{path}: unsupported format {doc['format']!r}")
            bins = {k: _count(v) for k, v in doc["bins"].items()}
            expiry = {k: timedelta(seconds=int(v)) for k, v in doc["expiry_seconds"].items()}
            return cls(CatalogLayout(BinCounts(**bins)), ExpiryPolicy(**expiry))
        except OSError as e:
            raise ConfigError(f"cannot read {path}: {e.strerror or e}") from e
        except (ValueError, KeyError, TypeError, IndexError) as e:
            raise ConfigError(f"{path} is malformed: {e}") from e


def require_data_dir(data_dir: Path) -> None:
    """Check that ``data_dir`` is a directory ``server init`` made, advising what to give instead.

    ``server init`` refuses a directory that is not empty, so the advice never sends a user to
    run it on the directory they gave unless that directory does not exist yet.

    Raises:
        ConfigError: ``data_dir`` is missing, a file, or a directory without ``catalog.json``.
    """
    give = "give the directory `tidings server init` created"
    if not data_dir.exists():
        create = f"`tidings server init {data_dir}`"
        raise ConfigError(f"{data_dir} does not exist: {give}, or create one with {create}")
    if not data_dir.is_dir():
        raise ConfigError(f"{data_dir} is a file, not a Tidings data directory: {give}")
    if not (data_dir / FILE_NAME).is_file():
        raise ConfigError(
            f"{data_dir} is not a Tidings data directory (no {FILE_NAME}): {give}, or create one "
            "with `tidings server init NEW_DIR`"
        )


def _count(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"a bin count must be a whole number, not {value!r}")
    return value
