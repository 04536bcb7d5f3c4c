"""``tidings server run``: the limits an administrator sets reach the running service.

Threats: an option that is parsed but never reaches ``ServiceConfig`` (a site behind one NAT
raises ``--max-connections-per-address`` and still gets its devices cut off), and defaults
repeated in the CLI that drift from ``ServiceConfig``'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_helpers import invoke

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
        "error: max_connections_per_address must not exceed limit_concurrency (300 > 256)"
    ]
    assert served_with == []
