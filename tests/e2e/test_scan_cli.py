"""``tidings scan`` as a user runs it: JSON output, criteria, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tidings.agent.enroll import enroll
from tidings.catalog.publisher import PublishResult
from tidings.clock import FixedClock
from tidings.scan.samples import SAMPLE_DEVICES
from tidings.scan.session import INVENTORY_FILE
from tidings.service.config import ServiceConfig
from tidings.service.server import running_server
from tidings.service.state import ServiceState, default_database_url
from tidings.service.tls import ca_pin

TIDINGS = [sys.executable, "-m", "tidings.cli.main"]


@pytest.fixture
def device(
    data_dir: Path, published: list[PublishResult], tmp_path: Path, clock: FixedClock
) -> Iterator[Path]:
    with running_server(data_dir, ServiceConfig(port=0)) as endpoints:
        with ServiceState.open(default_database_url(data_dir), clock=clock) as state:
            token = state.create_token("lab", lifetime=timedelta(hours=1)).token
        state_dir = tmp_path / "device"
        enroll(state_dir, server=endpoints.base_url, pin=ca_pin(data_dir / "tls"), token=token,
               clock=clock)  # fmt: skip
        (state_dir / INVENTORY_FILE).write_text(SAMPLE_DEVICES["desktop-x64"])
        yield state_dir


def scan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TIDINGS, "scan", *args], capture_output=True, text=True, timeout=120)


def test_scan_json_lists_the_devices_updates_and_what_the_scan_cost(device: Path) -> None:
    result = scan(str(device), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["schema"] == 1
    kinds = sorted(u["kind"] for u in report["updates"])
    assert kinds == ["app", "definitions", "driver", "os", "store"]
    assert report["stats"]["bins_selected"] > 0
    drivers = json.loads(scan(str(device), "--json", "--criteria", "Type='Driver'").stdout)
    assert [u["update_type"] for u in drivers["updates"]] == ["Driver"]


def test_scan_table_and_invalid_criteria(device: Path) -> None:
    table = scan(str(device))
    assert table.returncode == 0, table.stderr
    assert "5 update(s);" in table.stdout and "Contoso" in table.stdout
    bad = scan(str(device), "--criteria", "IsInstalled=2")
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        "error: criteria: position 12: expected 0 or 1 after '=', got '2'"
    ]


def test_scan_of_a_directory_that_is_not_enrolled_is_one_line(tmp_path: Path) -> None:
    result = scan(str(tmp_path / "nothing"))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
