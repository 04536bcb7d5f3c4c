"""Where each published update lives: a SQLite index derived from the signed catalog.

The signed metadata is the truth; this table only lets a publisher find an update's current
bins without reading every bin. It records the snapshot version it matches, and is rebuilt from
the metadata whenever that differs (after a crash between a commit and its update here).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS updates (
    id TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    bins TEXT NOT NULL,
    keys TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('published', 'revoked'))
);
CREATE TABLE IF NOT EXISTS roles (name TEXT PRIMARY KEY, expires TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Located:
    """One update as the catalog holds it."""

    id: str
    revision: int
    kind: str
    title: str
    bins: tuple[str, ...]  # role names; the first holds the payloads
    keys: tuple[str, ...]  # index keys (``family:key``) whose documents list it
    manifest_sha256: str
    state: str  # "published" or "revoked"


class Lookup:
    """The update -> bins and keys table in ``path``."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        """Release the database."""
        self._db.close()

    def snapshot_version(self) -> int | None:
        """The snapshot version this table matches, if any."""
        row = self._db.execute("SELECT value FROM meta WHERE key='snapshot_version'").fetchone()
        return int(row[0]) if row else None

    def get(self, update_id: str) -> Located | None:
        """The update ``update_id``, published or revoked, if the catalog knows it."""
        row = self._db.execute("SELECT * FROM updates WHERE id=?", (update_id,)).fetchone()
        return _located(row) if row else None

    def all(self) -> Iterator[Located]:
        """Every update, ordered by kind then title."""
        for row in self._db.execute("SELECT * FROM updates ORDER BY kind, title"):
            yield _located(row)

    def record(
        self,
        rows: Iterable[Located],
        snapshot_version: int,
        role_expiry: Mapping[str, datetime] | None = None,
    ) -> None:
        """Store changed rows, role expiries and their snapshot version, in one transaction."""
        with self._transaction():
            self._insert(rows)
            self._set_expiry(role_expiry or {})
            self._set_version(snapshot_version)

    def role_expiry(self) -> dict[str, datetime]:
        """When each targets role's signature expires."""
        rows = self._db.execute("SELECT name, expires FROM roles").fetchall()
        return {name: datetime.fromisoformat(expires) for name, expires in rows}

    def _set_expiry(self, role_expiry: Mapping[str, datetime]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO roles VALUES (?,?)",
            [(name, when.isoformat()) for name, when in role_expiry.items()],
        )

    def replace_all(
        self,
        rows: Iterable[Located],
        snapshot_version: int,
        role_expiry: Mapping[str, datetime] | None = None,
    ) -> None:
        """Rebuild: published rows from the metadata; every other known update is revoked.

        A published row the metadata no longer holds can only come from a revoke whose commit
        landed but whose record here was lost (publishes record only after committing), so it
        becomes revoked, never forgotten: a forgotten revision could be published again.
        """
        with self._transaction():
            self._db.execute("UPDATE updates SET state='revoked' WHERE state='published'")
            self._db.execute("DELETE FROM roles")
            self._insert(rows)
            self._set_expiry(role_expiry or {})
            self._set_version(snapshot_version)

    def _insert(self, rows: Iterable[Located]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO updates VALUES (?,?,?,?,?,?,?,?)",
            [
                (
                    r.id,
                    r.revision,
                    r.kind,
                    r.title,
                    json.dumps(r.bins),
                    json.dumps(r.keys),
                    r.manifest_sha256,
                    r.state,
                )
                for r in rows
            ],
        )

    def _set_version(self, version: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('snapshot_version', ?)", (str(version),)
        )

    def _transaction(self) -> _Tx:
        return _Tx(self._db)


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def _located(row: tuple[str, int, str, str, str, str, str, str]) -> Located:
    bins, keys = tuple(json.loads(row[4])), tuple(json.loads(row[5]))
    return Located(row[0], row[1], row[2], row[3], bins, keys, row[6], row[7])
