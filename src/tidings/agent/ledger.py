"""The agent's own records about updates: installed, hidden, EULAs accepted, downloaded.

A SQLite file in the state directory (``agent.db``). It holds device state only: nothing in
it decides what an update *is* (that comes from signed metadata), only what this device did
with it. Installers (a later issue) write ``installed``; the search API reads everything.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS installed (
    update_id TEXT PRIMARY KEY, revision INTEGER NOT NULL, installed_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hidden (update_id TEXT PRIMARY KEY, hidden_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS eula_accepted (
    update_id TEXT NOT NULL, revision INTEGER NOT NULL, accepted_at TEXT NOT NULL,
    PRIMARY KEY (update_id, revision));
CREATE TABLE IF NOT EXISTS downloaded (
    update_id TEXT NOT NULL, revision INTEGER NOT NULL, path TEXT NOT NULL,
    PRIMARY KEY (update_id, revision));
"""


class Ledger:
    """Device-side update records in ``STATE_DIR/agent.db``."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        """Release the database."""
        self._db.close()

    def installed(self) -> dict[str, int]:
        """Installed update ids and their revisions."""
        return dict(self._db.execute("SELECT update_id, revision FROM installed").fetchall())

    def record_installed(self, update_id: str, revision: int, when: datetime) -> None:
        """Remember that ``update_id`` at ``revision`` is installed."""
        self._db.execute(
            "INSERT OR REPLACE INTO installed VALUES (?,?,?)",
            (update_id, revision, when.isoformat()),
        )

    def hidden(self) -> set[str]:
        """Ids of the updates the user hid."""
        return {row[0] for row in self._db.execute("SELECT update_id FROM hidden")}

    def set_hidden(self, update_id: str, hidden: bool, when: datetime) -> None:
        """Hide or unhide an update (persists across scans, as WUA's IsHidden does)."""
        if hidden:
            self._db.execute(
                "INSERT OR IGNORE INTO hidden VALUES (?,?)", (update_id, when.isoformat())
            )
        else:
            self._db.execute("DELETE FROM hidden WHERE update_id=?", (update_id,))

    def eula_accepted(self) -> set[tuple[str, int]]:
        """(update id, revision) pairs whose EULA the user accepted."""
        return set(self._db.execute("SELECT update_id, revision FROM eula_accepted").fetchall())

    def accept_eula(self, update_id: str, revision: int, when: datetime) -> None:
        """Record the user's acceptance of one revision's EULA."""
        self._db.execute(
            "INSERT OR IGNORE INTO eula_accepted VALUES (?,?,?)",
            (update_id, revision, when.isoformat()),
        )

    def downloaded(self) -> set[tuple[str, int]]:
        """(update id, revision) pairs whose payloads are downloaded and verified."""
        return set(self._db.execute("SELECT update_id, revision FROM downloaded").fetchall())
