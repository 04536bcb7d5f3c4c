"""Enrollment as an administrator and a device would do it: real processes, real TLS."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tidings.agent.state import AgentState
from tidings.trust.fetcher import pinned_ssl_context

TIDINGS = [sys.executable, "-m", "tidings.cli.main"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "TIDINGS_ENROLL_TOKEN"}
    return subprocess.run(
        [*TIDINGS, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**environment, **(env or {})},
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_token(data: Path, *args: str) -> str:
    made = run("server", "token", str(data), "--group", "lab", *args)
    assert made.returncode == 0, made.stderr
    lines = made.stdout.splitlines()
    assert re.fullmatch(r"tdt_[A-Za-z0-9_-]{43}", lines[0])
    assert lines[1] == "group: lab"
    assert re.fullmatch(r"expires: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(.+\)", lines[2])
    return lines[0]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    """`tidings server init` then `tidings server run`: (data dir, URL, pin)."""
    data = tmp_path / "data"
    init = run("server", "init", str(data))
    assert init.returncode == 0, init.stderr
    pin = re.search(r"CA pin for device enrollment: (sha256/\S+)", init.stdout)
    assert pin is not None
    port = free_port()
    server = subprocess.Popen(
        [*TIDINGS, "server", "run", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        with httpx.Client(verify=pinned_ssl_context(data / "tls/ca.pem")) as client:
            while True:
                try:
                    client.get(f"{url}/health")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "service did not start"
                    assert server.poll() is None, "service exited"
                    time.sleep(0.1)
        yield data, url, pin.group(1)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


def test_token_then_enroll_as_an_administrator_and_a_device_would(
    served: tuple[Path, str, str], tmp_path: Path
) -> None:
    data, url, pin = served
    token = new_token(data, "--expires", "30m")
    device = tmp_path / "device"
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")  # as copied from the administrator: not in argv
    enrolled = run(
        "agent",
        "enroll",
        str(device),
        "--server",
        url,
        "--pin",
        pin,
        "--token-file",
        str(token_file),
    )
    assert enrolled.returncode == 0, enrolled.stderr
    first = enrolled.stdout.splitlines()[0]
    match = re.fullmatch(r"enrolled device ([0-9a-f-]{36}) in group lab", first)
    assert match is not None, enrolled.stdout
    state = AgentState.load(device)
    assert state.identity.device_id == match.group(1)
    assert state.root_path.read_bytes() == (data / "repo/metadata/root.json").read_bytes()
    ca = x509.load_pem_x509_certificate((data / "tls/ca.pem").read_bytes())
    x509.load_pem_x509_certificate(state.cert_path.read_bytes()).verify_directly_issued_by(ca)
    assert json.loads((device / "device.json").read_text())["server"] == url

    again = run(
        "agent", "enroll", str(tmp_path / "d2"), "--server", url, "--pin", pin,
        env={"TIDINGS_ENROLL_TOKEN": token},
    )  # fmt: skip
    assert again.returncode == 1
    assert again.stderr.strip() == (
        "error: enrollment refused: token used up; "
        "ask the administrator for a new token: `tidings server token`"
    )
    assert not (tmp_path / "d2").exists()


def test_multi_use_and_unlimited_tokens_enroll_several_devices(
    served: tuple[Path, str, str], tmp_path: Path
) -> None:
    data, url, pin = served
    for args, devices in ((("--uses", "2"), 2), (("--unlimited",), 3)):
        token = new_token(data, *args)
        for i in range(devices):
            target = tmp_path / f"{args[0]}-{i}"
            result = run(
                "agent", "enroll", str(target), "--server", url, "--pin", pin, "--token", token
            )
            assert result.returncode == 0, result.stderr


def test_wrong_pin_and_unreachable_server_are_one_line_errors(
    served: tuple[Path, str, str], tmp_path: Path
) -> None:
    data, url, _pin = served
    token = new_token(data)
    wrong = "sha256/" + "B" * 43 + "="
    device = tmp_path / "device"
    result = run("agent", "enroll", str(device), "--server", url, "--pin", wrong, "--token", token)
    assert result.returncode == 3  # a security event: the server is not the one pinned
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {url}: the server's certificate is not signed by")
    assert "verify the pin out of band" in result.stderr
    assert "sha256/" not in result.stderr  # the server's pin is not offered for copying
    assert not device.exists()

    closed = f"https://127.0.0.1:{free_port()}"
    result = run(
        "agent", "enroll", str(device), "--server", closed, "--pin", wrong, "--token", token
    )
    assert result.returncode == 4
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: cannot reach {closed}/v1/ca.pem:")
    assert not device.exists()


def test_bad_token_requests_are_one_line_errors(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("server", "init", str(data)).returncode == 0
    for args, message in [
        (("--group", "Lab"), "invalid group 'Lab'"),
        (("--group", "lab", "--expires", "1w"), "invalid duration '1w'"),
        (("--group", "lab", "--uses", "0"), "uses must be at least 1"),
        (("--group", "lab", "--uses", "3", "--unlimited"), "not both"),
    ]:
        result = run("server", "token", str(data), *args)
        assert result.returncode == 1, args
        assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    missing = run("server", "token", str(tmp_path / "nowhere"), "--group", "lab")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert not (tmp_path / "nowhere").exists()
