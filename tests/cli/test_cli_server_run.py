"""``tidings server run``: the limits an administrator sets reach the running service.

Threats: an option that is parsed but never reaches ``ServiceConfig`` (a site behind one NAT
raises ``--max-connections-per-address`` and still gets its devices cut off), and defaults
repeated in the CLI that drift from ``ServiceConfig``'s.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import PROCESS_TIMEOUT_S, TIDINGS, invoke

import tidings.service.server as server_module
from tidings.service.config import ServiceConfig


@pytest.fixture
def served_with(monkeypatch: pytest.MonkeyPatch) -> list[ServiceConfig]:
    """The configs ``server run`` would serve with (nothing listens)."""
    configs: list[ServiceConfig] = []

    def serve(data_dir: Path, *, config: ServiceConfig, **_: Any) -> None:
        configs.append(config)

    monkeypatch.setattr(server_module, "serve", serve)
    return configs


def test_limit_options_reach_the_service_config(
    data_dir: Path, served_with: list[ServiceConfig]
) -> None:
    result = invoke(
        "server", "run", data_dir,
        "--header-timeout", "2.5",
        "--body-timeout", "4",
        "--max-connections-per-address", "100",
        "--limit-concurrency", "1000",
        "--enroll-max-failures", "3",
        "--enroll-failure-window", "120",
        "--database-url", "sqlite:///elsewhere.db",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert served_with == [
        ServiceConfig(
            header_timeout_s=2.5,
            body_timeout_s=4.0,
            max_connections_per_address=100,
            limit_concurrency=1000,
            enroll_max_failures=3,
            enroll_failure_window_s=120.0,
            database_url="sqlite:///elsewhere.db",
        )
    ]


def test_server_run_without_options_serves_the_service_config_defaults(
    data_dir: Path, served_with: list[ServiceConfig]
) -> None:
    result = invoke("server", "run", data_dir)
    assert result.code == 0, result.stderr
    assert served_with == [ServiceConfig()]


def test_contradicting_limits_are_one_line_before_serving(
    data_dir: Path, served_with: list[ServiceConfig]
) -> None:
    result = invoke("server", "run", data_dir, "--max-connections-per-address", "300")
    assert result.code == 1
    assert result.stderr.splitlines() == [
        "error: --max-connections-per-address must not exceed --limit-concurrency (300 > 256)"
    ]
    assert served_with == []


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (["--header-timeout", "0"], "error: --header-timeout must be positive, not 0.0"),
        (["--enroll-failure-window", "-1"], "error: --enroll-failure-window must be positive"),
        (["--port", "70000"], "error: --port must be between 0 and 65535, not 70000"),
        (
            ["--port", "29446", "--plain-http-port", "29446"],
            "error: --port and --plain-http-port must differ (both 29446)",
        ),
    ],
)
def test_out_of_range_options_are_named_as_typed(
    data_dir: Path, served_with: list[ServiceConfig], options: list[str], error: str
) -> None:
    result = invoke("server", "run", data_dir, *options)
    assert result.code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(error)
    assert served_with == []


def test_equal_ports_are_one_line_without_a_traceback(data_dir: Path) -> None:
    port = str(_free_port())
    command = [*TIDINGS, "server", "run", str(data_dir), "--port", port, "--plain-http-port", port]
    result = subprocess.run(command, capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: --port and --plain-http-port must differ (both {port}): "
        "HTTPS and plain HTTP cannot share one"
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
