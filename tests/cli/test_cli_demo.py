"""``tidings demo --work-dir``: a work directory that cannot be one is a one-line error."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import invoke


def test_a_file_as_work_dir_is_one_line_and_left_alone(tmp_path: Path) -> None:
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    for work_dir in (taken, taken / "below"):
        result = invoke("demo", "--work-dir", work_dir)
        assert result.code == 1
        assert result.stderr.splitlines() == [
            f"error: {work_dir} is not a directory: give a new or existing directory"
        ]
    assert taken.read_text() == "mine"
