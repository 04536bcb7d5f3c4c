"""Commands that wait for publish.lock say so on stderr, once, instead of hanging silently."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
from cli_helpers import TIDINGS, invoke

from tidings.catalog.publisher import PublishResult
from tidings.fsutil import file_lock

BOUND_S = 120  # a bound on a hung process, not a speed expectation


def first_stderr_line(process: subprocess.Popen[str]) -> str:
    """The first line the process writes on stderr, or "" if none within the bound."""
    got: list[str] = []
    assert process.stderr is not None
    stream = process.stderr
    reader = threading.Thread(target=lambda: got.append(stream.readline()))
    reader.daemon = True
    reader.start()
    reader.join(BOUND_S)
    return got[0].rstrip("\n") if got else ""


@pytest.mark.parametrize(
    "command",
    [
        ["publish", "{data}", "{manifest}"],
        ["server", "gc", "{data}"],
        ["server", "gc", "{data}", "--dry-run"],
        ["keys", "rotate", "{data}", "timestamp"],
        ["revoke", "{data}", "{update_id}"],
    ],
    ids=["publish", "gc", "gc-dry-run", "keys-rotate", "revoke"],
)
def test_a_command_waiting_for_the_publish_lock_says_so(
    published: list[PublishResult], data_dir: Path, sample_manifests: list[Path], command: list[str]
) -> None:
    values = {
        "data": str(data_dir),
        "manifest": str(sample_manifests[0]),
        "update_id": published[0].update_id,
    }
    args = [part.format(**values) for part in command]
    lock = data_dir / "publish.lock"
    with file_lock(lock):  # held by this test as a publish would hold it
        process = subprocess.Popen(
            [*TIDINGS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        line = first_stderr_line(process)
    try:  # the lock is free now: the command goes on and finishes
        _, rest = process.communicate(timeout=BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
    assert line == f"waiting for {lock}: another publish or gc is running"
    assert process.returncode == 0, rest
    assert "waiting" not in rest


def test_a_free_lock_gives_no_waiting_line(published: list[PublishResult], data_dir: Path) -> None:
    ran = invoke("server", "gc", data_dir, "--dry-run")
    assert ran.code == 0
    assert "waiting" not in ran.stderr
