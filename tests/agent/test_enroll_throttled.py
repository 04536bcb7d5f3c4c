"""The device's side of 429: an address that failed too many enrollments is told to wait.

Threat: a device behind the same NAT as a token-guessing neighbour (or a script with a stale
token) reading "enrollment rejected (HTTP 429)" as a bad token and giving up, or retrying at
once forever; and a hostile ``Retry-After`` value reaching the terminal.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tidings.agent.enroll import MAX_RETRY_AFTER_S, enroll, retry_after_seconds
from tidings.cli.main import registered_app
from tidings.clock import FixedClock
from tidings.errors import EnrollmentError, TransportError
from tidings.service.config import ServiceConfig
from tidings.service.server import ServiceEndpoints, running_server

WINDOW_S = 60.0
EXIT_TRANSPORT = 4


@pytest.fixture
def strict_service(data_dir: Path) -> Iterator[ServiceEndpoints]:
    """The real service, refusing an address after one failed enrollment a minute."""
    config = ServiceConfig(
        port=0, shutdown_grace_s=2, enroll_max_failures=1, enroll_failure_window_s=WINDOW_S
    )
    with running_server(data_dir, config) as endpoints:
        yield endpoints


def fail_once(service: ServiceEndpoints, pin: str, clock: FixedClock, tmp_path: Path) -> None:
    with pytest.raises(EnrollmentError, match="enrollment refused: unknown token"):
        enroll(tmp_path / "guess", server=service.base_url, pin=pin, token="tdt_x", clock=clock)


def test_throttled_enrollment_says_the_address_is_refused_and_when_to_retry(
    strict_service: ServiceEndpoints, pin: str, token: str, clock: FixedClock, tmp_path: Path
) -> None:
    fail_once(strict_service, pin, clock, tmp_path)
    state_dir = tmp_path / "device"
    with pytest.raises(TransportError) as refused:  # a good token changes nothing: wait
        enroll(state_dir, server=strict_service.base_url, pin=pin, token=token, clock=clock)
    message = str(refused.value)
    said = re.fullmatch(
        r"the service refuses enrollments from this address for now \(too many failed "
        r"enrollments from it\): retry in (\d+) seconds",
        message,
    )
    assert said is not None, message
    assert 1 <= int(said.group(1)) <= WINDOW_S
    assert not state_dir.exists()


def test_throttled_enroll_command_is_one_line_and_exit_code_4(
    strict_service: ServiceEndpoints,
    pin: str,
    token: str,
    clock: FixedClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TIDINGS_ENROLL_TOKEN", raising=False)
    fail_once(strict_service, pin, clock, tmp_path)
    argv = ["agent", "enroll", str(tmp_path / "device"), "--server", strict_service.base_url]
    result = CliRunner().invoke(
        registered_app(), [*argv, "--pin", pin], env={"TIDINGS_ENROLL_TOKEN": token}
    )
    assert result.exit_code == EXIT_TRANSPORT, result.output  # scripts retry exit code 4
    [line] = result.stderr.splitlines()
    assert line.startswith("error: the service refuses enrollments from this address for now")
    assert re.search(r"retry in \d+ seconds$", line)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("42", 42),
        (" 7 ", 7),
        ("999999999999999999999", MAX_RETRY_AFTER_S),
        (str(MAX_RETRY_AFTER_S + 1), MAX_RETRY_AFTER_S),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("-5", None),
        ("1.5", None),
        ("\x1b[2J10", None),
        ("١٢", None),  # Unicode digits are digits to str.isdigit, not to HTTP
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_bounded_and_never_shown_raw(
    header: str | None, seconds: int | None
) -> None:
    assert retry_after_seconds(header) == seconds
