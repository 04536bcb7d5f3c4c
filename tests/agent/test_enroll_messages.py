"""What a user reads when enrollment cannot go ahead: what is wrong and what to do next.

Threats: 30 silent seconds then ``_ssl.c:989: The handshake operation timed out`` (the user
cannot tell a wrong address from a stopped service); a token file given where the state
directory goes, reported as "not empty"; a refused token with no word on how to get one
that works.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tidings.agent.enroll import REFUSAL_ADVICE, enroll
from tidings.clock import FixedClock
from tidings.errors import EnrollmentError
from tidings.service import state as service_state_module
from tidings.service.server import ServiceEndpoints
from tidings.service.state import ServiceState

EXIT_TRANSPORT = 4
TIDINGS = [sys.executable, "-m", "tidings.cli.main"]
PROCESS_TIMEOUT_S = 120  # a bound on a hung process, not a speed expectation
ASK = "ask the administrator for a new token: `tidings server token`"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback port that accepts TCP connections and never says a word (no TLS)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"


def enroll_command(
    state_dir: Path, server: str, pin: str, *, terminal: bool
) -> subprocess.CompletedProcess[str]:
    """``tidings agent enroll`` in a process, its stderr a pipe that Rich may treat as a
    terminal (``TTY_COMPATIBLE``: what a user at a terminal sees)."""
    env = dict(os.environ, TTY_COMPATIBLE="1" if terminal else "0")
    argv = ["agent", "enroll", str(state_dir), "--server", server, "--pin", pin]
    return subprocess.run(
        [*TIDINGS, *argv, "--token", "tdt_x", "--timeout", "0.5"],
        capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S, env=env,
    )  # fmt: skip


def test_silent_server_is_announced_then_one_line_naming_the_wait_and_what_to_check(
    silent_server: str, pin: str, tmp_path: Path
) -> None:
    timed_out = (
        f"error: the service at {silent_server} did not answer within 0.5 s: check the "
        "address and that `tidings server run` is running"
    )
    at_terminal = enroll_command(tmp_path / "device", silent_server, pin, terminal=True)
    assert at_terminal.returncode == EXIT_TRANSPORT
    styles = re.compile(r"\x1b\[[0-9;]*m")  # the "error:" label is bold on a terminal
    shown = styles.sub("", at_terminal.stderr).splitlines()
    assert shown == [f"connecting to {silent_server} ...", timed_out]
    assert at_terminal.stdout == ""

    in_a_script = enroll_command(tmp_path / "device", silent_server, pin, terminal=False)
    assert (in_a_script.returncode, in_a_script.stderr) == (EXIT_TRANSPORT, timed_out + "\n")
    assert not (tmp_path / "device").exists()


def test_scan_of_a_silent_server_names_the_wait_without_ssl_internals(
    silent_server: str,
) -> None:
    from tuf.api.exceptions import DownloadError

    from tidings.trust.fetcher import FetcherConfig, HttpxFetcher

    fetcher = HttpxFetcher(config=FetcherConfig(connect_timeout_s=0.5, read_timeout_s=0.5))
    url = silent_server + "/metadata/timestamp.json"
    try:
        with pytest.raises(DownloadError) as caught:
            b"".join(fetcher.fetch(url))
    finally:
        fetcher.close()
    assert str(caught.value) == (
        f"cannot download {url}: the service did not answer within 0.5 s: check the address "
        "and that the update service is running"
    )


def test_state_dir_that_is_a_file_is_called_a_file(
    pin: str, clock: FixedClock, tmp_path: Path
) -> None:
    token_file = tmp_path / "tok1.txt"
    token_file.write_text("tdt_x\n")
    with pytest.raises(EnrollmentError) as caught:
        enroll(token_file, server="https://127.0.0.1:1", pin=pin, token="tdt_x", clock=clock)
    assert str(caught.value).startswith(f"{token_file} is a file, not a directory")
    assert "not empty" not in str(caught.value)


def test_every_refusal_the_service_names_has_advice() -> None:
    refusals = {
        value for name, value in vars(service_state_module).items() if name.startswith("REFUSED_")
    }
    assert refusals == set(REFUSAL_ADVICE)


def test_used_up_and_revoked_tokens_say_to_ask_for_a_new_one(
    service: ServiceEndpoints,
    service_state: ServiceState,
    token: str,
    pin: str,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    enroll(tmp_path / "first", server=service.base_url, pin=pin, token=token, clock=clock)
    with pytest.raises(EnrollmentError) as used_up:
        enroll(tmp_path / "second", server=service.base_url, pin=pin, token=token, clock=clock)
    assert str(used_up.value) == f"enrollment refused: token used up; {ASK}"

    fresh = service_state.create_token("lab", lifetime=timedelta(days=1))
    service_state.revoke_token(fresh.token_id)
    with pytest.raises(EnrollmentError) as revoked:
        enroll(tmp_path / "third", server=service.base_url, pin=pin, token=fresh.token, clock=clock)
    assert str(revoked.value) == f"enrollment refused: token revoked; {ASK}"

    with pytest.raises(EnrollmentError) as unknown:
        enroll(tmp_path / "fourth", server=service.base_url, pin=pin, token="tdt_x", clock=clock)
    assert str(unknown.value) == (
        f"enrollment refused: unknown token; check that the token was copied whole, or {ASK}"
    )
