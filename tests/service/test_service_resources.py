"""Open-files limit at start-up and asyncio's accept errors when descriptors run out."""

from __future__ import annotations

import asyncio
import errno
import logging

import pytest

from tidings.service import resources
from tidings.service.config import ServiceConfig
from tidings.service.resources import ACCEPT_ERROR, AcceptErrorHandler, raise_open_files_limit


def test_a_storm_of_failed_accepts_is_one_warning_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.new_event_loop()
    try:
        handler = AcceptErrorHandler()
        error = OSError(errno.EMFILE, "Too many open files")
        for _ in range(1_000):
            handler(loop, {"message": ACCEPT_ERROR, "exception": error})
    finally:
        loop.close()
    assert len(caplog.records) == 1
    assert caplog.records[0].levelno == logging.WARNING
    assert caplog.records[0].exc_info is None
    assert "Too many open files" in caplog.records[0].getMessage()


def test_other_event_loop_errors_still_reach_asyncios_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.new_event_loop()
    try:
        AcceptErrorHandler()(loop, {"message": "something else broke"})
    finally:
        loop.close()
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert caplog.records[0].name == "asyncio"


def test_the_open_files_limit_is_raised_to_the_hard_limit(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    set_to: list[tuple[int, int]] = []
    monkeypatch.setattr(resources.resource, "getrlimit", lambda _: (1024, 65_536))
    monkeypatch.setattr(resources.resource, "setrlimit", lambda _, limits: set_to.append(limits))
    raise_open_files_limit(ServiceConfig())
    assert set_to == [(65_536, 65_536)]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_open_files_limit_below_what_the_limits_need_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(resources.resource, "getrlimit", lambda _: (256, 256))
    raise_open_files_limit(ServiceConfig(limit_concurrency=256))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "256" in warnings[0], warnings
