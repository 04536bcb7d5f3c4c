"""The commands an administrator types, as real processes: init, publish, run, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tidings.catalog.samples import write_samples
from tidings.trust.fetcher import pinned_ssl_context

TIDINGS = [sys.executable, "-m", "tidings.cli.main"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TIDINGS, *args], capture_output=True, text=True, timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_init_publish_run_and_sigterm_as_an_administrator_would(tmp_path: Path) -> None:
    data = tmp_path / "data"
    init = run("server", "init", str(data))
    assert init.returncode == 0, init.stderr
    assert "CA pin for device enrollment: sha256/" in init.stdout
    again = run("server", "init", str(data))
    assert again.returncode == 1
    assert again.stderr.strip().startswith("error:") and "not empty" in again.stderr
    assert "Traceback" not in again.stderr

    manifests = write_samples(tmp_path / "pub")
    published = run("publish", str(data), *map(str, manifests))
    assert published.returncode == 0, published.stderr
    assert published.stdout.count("published ") == 5

    port = free_port()
    server = subprocess.Popen(
        [*TIDINGS, "server", "run", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        with httpx.Client(verify=pinned_ssl_context(data / "tls/ca.pem")) as client:
            while True:
                try:
                    health = client.get(f"https://127.0.0.1:{port}/health")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "service did not start"
                    assert server.poll() is None, server.stdout.read() if server.stdout else ""
                    time.sleep(0.1)
            assert health.status_code == 200
            assert health.json()["status"] == "ok"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        if server.stdout:
            server.stdout.close()


def test_publish_into_a_missing_data_dir_is_one_clear_line(tmp_path: Path) -> None:
    manifests = write_samples(tmp_path / "pub")
    result = run("publish", str(tmp_path / "nowhere"), str(manifests[0]))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nowhere'} does not exist: give the directory `tidings server init` "
        f"created, or create one with `tidings server init {tmp_path / 'nowhere'}`"
    ]


def test_rotate_an_unknown_role_is_one_clear_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("server", "init", str(data)).returncode == 0
    result = run("keys", "rotate", str(data), "os.00")
    assert result.returncode == 1
    assert "is a bin: it is signed with its family's key" in result.stderr


def test_init_sizes_the_index_for_the_expected_catalog(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("server", "init", str(data), "--expected-updates", "1000000").returncode == 0
    bins = json.loads((data / "catalog.json").read_text())["bins"]
    assert bins == {"os": 128, "apps": 256, "definitions": 32, "store": 256, "vendor": 64}
    # Devices need no configuration: each family role signs its own bin count.
    apps = json.loads((data / "repo/metadata/1.apps.json").read_text())
    assert apps["signed"]["x-tidings-bins"] == 256
    assert len(apps["signed"]["delegations"]["roles"]) == 256
    refused = run("server", "init", str(tmp_path / "other"), "--expected-updates", "0")
    assert refused.returncode != 0 and not (tmp_path / "other").exists()
