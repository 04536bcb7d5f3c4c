"""A wrong DATA_DIR is one clear line that says what to give instead, never a traceback.

``server init`` refuses a directory that is not empty, so the advice must never be to run it
on the directory the user gave (unless that directory does not exist yet).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import invoke

UPDATE_ID = "0b6f4a53-5d0c-4f0e-9a51-5d4c1f5a8c11"
GIVE = "give the directory `tidings server init` created"

COMMANDS = {
    "updates": ["updates", "{data}"],
    "publish": ["publish", "{data}", "{manifest}"],
    "revoke": ["revoke", "{data}", UPDATE_ID],
    "keys rotate": ["keys", "rotate", "{data}", "timestamp"],
    "server gc": ["server", "gc", "{data}"],
    "server run": ["server", "run", "{data}"],
}


def run(command: str, data: Path, manifest: Path) -> list[str]:
    args = [a.format(data=data, manifest=manifest) for a in COMMANDS[command]]
    ran = invoke(*args)  # an escaping exception (a traceback for the user) fails the test
    assert ran.code == 1, ran
    return ran.stderr.splitlines()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_file_given_as_data_dir_is_one_line_not_a_traceback(
    tmp_path: Path, sample_manifests: list[Path], command: str
) -> None:
    data = tmp_path / "update.toml"
    data.write_text("kind = 'app'\n")
    assert run(command, data, sample_manifests[0]) == [
        f"error: {data} is a file, not a Tidings data directory: {GIVE}"
    ]
    assert data.read_text() == "kind = 'app'\n"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_directory_that_is_not_a_data_dir_is_not_sent_to_server_init(
    tmp_path: Path, sample_manifests: list[Path], command: str
) -> None:
    data = tmp_path / "home"
    data.mkdir()
    (data / "notes.txt").write_text("mine")
    assert run(command, data, sample_manifests[0]) == [
        f"error: {data} is not a Tidings data directory (no catalog.json): {GIVE}, "
        "or create one with `tidings server init NEW_DIR`"
    ]
    assert [p.name for p in data.iterdir()] == ["notes.txt"]


def test_a_missing_data_dir_may_be_created_where_it_was_given(
    tmp_path: Path, sample_manifests: list[Path]
) -> None:
    data = tmp_path / "nowhere"
    assert run("updates", data, sample_manifests[0]) == [
        f"error: {data} does not exist: {GIVE}, or create one with `tidings server init {data}`"
    ]
    assert not data.exists()
