"""Database URLs the service state refuses, and how it says so.

The service-state behaviour itself is tested on SQLite and PostgreSQL alike through the
``url``/``state`` fixtures in conftest.py (test_enrollment_state.py, test_revocation_state.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tidings.clock import FixedClock
from tidings.errors import ConfigError
from tidings.service.state import ServiceState


def test_a_missing_driver_is_not_called_an_invalid_url(
    monkeypatch: pytest.MonkeyPatch, state_clock: FixedClock
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg raises ImportError
    with pytest.raises(ConfigError, match=r"^no database driver for .*: psycopg is not installed"):
        ServiceState.open("postgresql://postgres@127.0.0.1/test", clock=state_clock)


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://host/db"])
def test_an_invalid_url_says_which_forms_are_accepted(url: str, state_clock: FixedClock) -> None:
    with pytest.raises(ConfigError, match=r"^invalid database URL.*use sqlite:///PATH or"):
        ServiceState.open(url, clock=state_clock)


def test_a_database_url_never_shows_its_password(state_clock: FixedClock) -> None:
    with pytest.raises(ConfigError) as raised:
        ServiceState.open("nosuchdb://user:hunter2@host/db", clock=state_clock)
    assert "hunter2" not in str(raised.value)


def test_unopenable_database_is_a_config_error(tmp_path: Path, state_clock: FixedClock) -> None:
    # SQLite-only: a file under a directory that does not exist.
    with pytest.raises(ConfigError, match="cannot open the service database"):
        ServiceState.open(f"sqlite:///{tmp_path}/missing/dir/service.db", clock=state_clock)
