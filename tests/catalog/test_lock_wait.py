"""A writer that finds publish.lock taken says so once (through its hook) and then waits."""

from __future__ import annotations

import threading
from pathlib import Path

from tidings.fsutil import file_lock

BOUND_S = 60  # a bound on a hung test, not a speed expectation


def test_a_free_lock_is_taken_without_a_word(tmp_path: Path) -> None:
    waits: list[Path] = []
    with file_lock(tmp_path / "publish.lock", on_wait=waits.append):
        pass
    assert waits == []


def test_a_busy_lock_calls_the_hook_once_then_waits_for_the_holder(tmp_path: Path) -> None:
    lock = tmp_path / "publish.lock"
    held, release, acquired = threading.Event(), threading.Event(), threading.Event()

    def holder() -> None:
        with file_lock(lock):
            held.set()
            release.wait(BOUND_S)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(BOUND_S)
    waits: list[Path] = []

    def on_wait(path: Path) -> None:
        waits.append(path)
        assert not acquired.is_set()
        release.set()  # only now may the holder let go: the hook ran before the wait

    with file_lock(lock, on_wait=on_wait):
        acquired.set()
    thread.join(BOUND_S)
    assert waits == [lock]
