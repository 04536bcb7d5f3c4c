"""Starting, re-signing and stopping the service: schedules, failures, signals, bad setups."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

import tidings.service.server as server_module
from tidings.clock import SystemClock
from tidings.errors import ConfigError
from tidings.service.config import ServiceConfig
from tidings.service.server import running_server
from tidings.service.tls import create_ca, issue_server_certificate

WAIT_S = 10.0  # seconds; generous bound, never a timing assertion


def test_resign_runs_repeatedly_on_schedule(data_dir: Path) -> None:
    calls: list[float] = []
    third_call = threading.Event()

    def resign() -> None:
        calls.append(time.monotonic())
        if len(calls) >= 3:
            third_call.set()

    config = ServiceConfig(port=0, resign_interval_s=0.05)
    with running_server(data_dir, config, resign=resign):
        assert third_call.wait(WAIT_S)


def test_failing_resign_is_logged_and_the_server_keeps_serving(
    data_dir: Path, ca_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    attempts = threading.Semaphore(0)

    def resign() -> None:
        attempts.release()
        raise RuntimeError("signing key unavailable")

    config = ServiceConfig(port=0, resign_interval_s=0.05)
    with (
        running_server(data_dir, config, resign=resign) as endpoints,
        httpx.Client(verify=ca_context, timeout=10) as client,
    ):
        for _ in range(3):
            assert attempts.acquire(timeout=WAIT_S)
        assert client.get(f"{endpoints.base_url}/health").status_code == 200
    assert "re-signing failed" in caplog.text
    assert "signing key unavailable" in caplog.text


def test_shutdown_stops_the_resign_schedule(data_dir: Path) -> None:
    calls: list[int] = []
    first = threading.Event()

    def resign() -> None:
        calls.append(1)
        first.set()

    with running_server(data_dir, ServiceConfig(port=0, resign_interval_s=0.02), resign=resign):
        assert first.wait(WAIT_S)
    stopped_at = len(calls)
    time.sleep(0.1)
    assert len(calls) == stopped_at


def test_hung_resign_does_not_block_shutdown(data_dir: Path) -> None:
    entered, release, finished = threading.Event(), threading.Event(), threading.Event()

    def resign() -> None:
        entered.set()
        release.wait(WAIT_S)
        finished.set()

    config = ServiceConfig(port=0, resign_interval_s=60, shutdown_grace_s=0.1)
    try:
        with running_server(data_dir, config, resign=resign):
            assert entered.wait(WAIT_S)
        assert not finished.is_set()  # the server stopped while re-signing still hung
    finally:
        release.set()
    assert finished.wait(WAIT_S)


def test_missing_server_certificate_tells_to_renew_it(tmp_path: Path) -> None:
    # Not `server init`: it refuses the existing data directory.
    with (
        pytest.raises(ConfigError, match="tidings server cert renew"),
        running_server(tmp_path, ServiceConfig(port=0)),
    ):
        pass


@pytest.mark.parametrize(
    ("damaged", "problem"),
    [
        ("server.pem", "server.pem is not a PEM certificate chain"),
        ("server.key", "server.key is not an unencrypted PEM private key"),
    ],
)
def test_a_damaged_certificate_or_key_is_named_with_the_way_to_renew_it(
    data_dir: Path, damaged: str, problem: str
) -> None:
    (data_dir / "tls" / damaged).write_bytes(b"not PEM")
    with pytest.raises(ConfigError) as raised, running_server(data_dir, ServiceConfig(port=0)):
        pass
    assert str(raised.value) == (
        f"cannot load the TLS certificate: {data_dir / 'tls'}/{problem}: "
        f"run `tidings server cert renew {data_dir}`"
    )


def test_a_server_key_of_another_certificate_is_named(data_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    create_ca(other, clock=SystemClock())
    issue_server_certificate(other, clock=SystemClock())
    tls = data_dir / "tls"
    (tls / "server.key").write_bytes((other / "server.key").read_bytes())
    with (
        pytest.raises(ConfigError, match=f"{tls}/server.key is not the key of {tls}/server.pem"),
        running_server(data_dir, ServiceConfig(port=0)),
    ):
        pass


def test_a_missing_ca_key_is_one_warning_at_start_up_saying_enrollment_is_off(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (data_dir / "tls" / "ca.key").unlink()
    with caplog.at_level(logging.INFO), running_server(data_dir, ServiceConfig(port=0)):
        pass
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        "enrollment is disabled until this is fixed: cannot read the CA key "
        f"{data_dir / 'tls' / 'ca.key'} (No such file or directory): restore tls/ca.key from "
        "your backup (the CA key signs device and server certificates; devices pin the CA)"
    ]


def test_start_and_stop_log_one_line_per_listening_port_and_one_at_stop(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = ServiceConfig(port=0, plain_http_port=0)
    with caplog.at_level(logging.INFO), running_server(data_dir, config) as endpoints:
        pass
    logged = [
        r.getMessage()
        for r in caplog.records
        if r.name in ("tidings.service.server", "uvicorn.error")
    ]
    assert logged == [
        f"update service listening on {endpoints.base_url} (metadata, content, enrollment)",
        f"update service listening on {endpoints.plain_base_url} (content only)",
        "update service stopped",
    ]


def test_an_intact_ca_logs_no_warning(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO), running_server(data_dir, ServiceConfig(port=0)):
        pass
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_port_in_use_is_a_config_error(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = ServiceConfig(port=taken.getsockname()[1])
        with pytest.raises(ConfigError, match="cannot listen"), running_server(data_dir, config):
            pass


def test_a_second_socket_of_ours_on_one_port_is_refused_when_bound() -> None:
    # Linux lets two SO_REUSEADDR sockets bind one port and fails only the second listen,
    # which would happen inside the event loop (tracebacks), not here as a one-line error.
    first = server_module._bind("127.0.0.1", 0)
    try:
        port = first.getsockname()[1]
        with pytest.raises(ConfigError, match=f"^cannot listen on 127.0.0.1 port {port}: "):
            server_module._bind("127.0.0.1", port).close()
    finally:
        first.close()


def test_explicit_certificate_files_are_used(data_dir: Path, ca_context: ssl.SSLContext) -> None:
    tls = data_dir / "tls"
    (tls / "server.pem").rename(tls / "custom.pem")
    (tls / "server.key").rename(tls / "custom.key")
    config = ServiceConfig(port=0, certfile=tls / "custom.pem", keyfile=tls / "custom.key")
    with (
        running_server(data_dir, config) as endpoints,
        httpx.Client(verify=ca_context, timeout=10) as client,
    ):
        assert endpoints.plain_base_url is None
        assert client.get(f"{endpoints.base_url}/health").status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        {"port": 70_000},
        {"plain_http_port": -1},
        {"certfile": Path("a.pem")},
        {"resign_interval_s": 0},
        {"limit_concurrency": 0},
        {"max_path_chars": -5},
        {"shutdown_grace_s": float("nan")},
        {"host": ""},
        {"port": 8443, "plain_http_port": 8443},
    ],
)
def test_invalid_config_values_are_rejected(change: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        dataclasses.replace(ServiceConfig(), **change)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVE_SCRIPT = """
import sys
from pathlib import Path
from tidings.service.config import ServiceConfig
from tidings.service.server import serve
serve(Path(sys.argv[1]), config=ServiceConfig(
    port=int(sys.argv[2]), plain_http_port=int(sys.argv[3]), shutdown_grace_s=2))
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_both_servers_and_exits_zero(
    data_dir: Path, ca_context: ssl.SSLContext, sig: signal.Signals
) -> None:
    port, plain_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE_SCRIPT, str(data_dir), str(port), str(plain_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        with (
            httpx.Client(verify=ca_context, timeout=1) as client,
            httpx.Client(timeout=1) as plain,
        ):
            deadline = time.monotonic() + WAIT_S
            while True:
                try:
                    client.get(f"https://127.0.0.1:{port}/health")
                    plain.get(f"http://127.0.0.1:{plain_port}/health")
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, proc.communicate()
                    assert time.monotonic() < deadline, "server did not start"
                    time.sleep(0.05)
        os.kill(proc.pid, sig)
        _, stderr = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    assert f"https://127.0.0.1:{port}" in stderr.decode()
    assert "update service stopped" in stderr.decode()
