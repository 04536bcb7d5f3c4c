"""``tidings server pin`` and ``server token``: what an administrator hands to a device.

Threat: a new administrator retyping a pin and a token into a long enroll command, getting
one character wrong, or pinning something other than the service's CA.
"""

from __future__ import annotations

import functools
import json
import shlex
import subprocess
from pathlib import Path

import pytest
from cli_helpers import PROCESS_TIMEOUT_S, TIDINGS, invoke

from tidings.catalog.publisher import PublishResult
from tidings.cli.server_cmds import DEFAULT_PORT
from tidings.service.config import ServiceConfig
from tidings.service.server import running_server
from tidings.service.tls import ca_pin


def test_server_pin_prints_the_ca_pin(data_dir: Path) -> None:
    result = invoke("server", "pin", data_dir)
    assert (result.code, result.stdout) == (0, ca_pin(data_dir / "tls") + "\n")


def test_server_pin_of_a_directory_that_is_not_a_data_dir_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a data directory")
    result = invoke("server", "pin", tmp_path)
    assert result.code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {tmp_path} is not a Tidings data directory")
    assert f"server init {tmp_path}`" not in line  # init refuses a directory that is not empty


@pytest.mark.parametrize("command", [["pin"], ["token", "--group", "lab"]])
def test_a_damaged_ca_certificate_is_one_line_naming_it(data_dir: Path, command: list[str]) -> None:
    ca = data_dir / "tls" / "ca.pem"
    ca.write_bytes(ca.read_bytes()[:100])
    result = invoke("server", command[0], data_dir, *command[1:])
    assert result.code == 1
    assert result.stderr.splitlines() == [
        f"error: {ca} is not a PEM certificate: restore tls/ca.pem from your backup "
        "(devices pin the CA)"
    ]


def test_token_prints_an_enroll_line_for_the_certificates_first_name(data_dir: Path) -> None:
    result = invoke("server", "token", data_dir, "--group", "lab")
    assert result.code == 0, result.stderr
    token, *rest = result.stdout.splitlines()
    enroll = (
        f"tidings agent enroll STATE_DIR --server https://localhost:8443 "
        f"--pin {ca_pin(data_dir / 'tls')}"
    )
    assert f"  {enroll} --token {token}" in rest
    assert f"  TIDINGS_ENROLL_TOKEN={token} {enroll}" in rest


def test_the_printed_enroll_line_enrolls_a_device(
    data_dir: Path, published: list[PublishResult], tmp_path: Path
) -> None:
    with running_server(data_dir, ServiceConfig(port=0)) as endpoints:
        issued = invoke(
            "server", "token", data_dir, "--group", "lab", "--server-url", endpoints.base_url
        )
        [line] = [
            line.strip()
            for line in issued.stdout.splitlines()
            if line.strip().startswith("tidings agent enroll")
        ]
        state_dir = tmp_path / "device"
        words = [str(state_dir) if w == "STATE_DIR" else w for w in shlex.split(line)]
        assert words[:3] == ["tidings", "agent", "enroll"]
        enrolled = subprocess.run(
            [*TIDINGS, *words[1:]], capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S
        )
    assert enrolled.returncode == 0, enrolled.stderr
    assert enrolled.stdout.startswith("enrolled device ")


def test_token_is_created_in_the_database_given_by_database_url(
    data_dir: Path, tmp_path: Path
) -> None:
    elsewhere = f"sqlite:///{tmp_path / 'replicas.db'}"
    result = invoke("server", "token", data_dir, "--group", "lab", "--database-url", elsewhere)
    assert result.code == 0, result.stderr
    listed = invoke("server", "tokens", data_dir, "--database-url", elsewhere, "--json")
    assert [t["group_id"] for t in json.loads(listed.stdout)["tokens"]] == ["lab"]
    assert json.loads(invoke("server", "tokens", data_dir, "--json").stdout)["tokens"] == []


def test_token_uses_below_one_names_the_option(data_dir: Path) -> None:
    result = invoke("server", "token", data_dir, "--group", "lab", "--uses", "0")
    assert result.code == 1
    assert result.stderr.splitlines() == ["error: --uses must be at least 1, not 0"]


@pytest.mark.parametrize(
    "url", ["foo", "http://updates.example.com:8443", "https://", "https://h/?q=1"]
)
def test_token_refuses_a_server_url_agent_enroll_would_refuse(data_dir: Path, url: str) -> None:
    result = invoke("server", "token", data_dir, "--group", "lab", "--server-url", url)
    assert result.code == 1
    assert result.stderr.splitlines() == [
        f"error: --server-url must be an https:// URL, not {url!r}"
    ]
    assert json.loads(invoke("server", "tokens", data_dir, "--json").stdout)["tokens"] == []


def test_the_default_enroll_line_uses_the_service_configs_default_port(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tidings.service.config as config_module

    assert ServiceConfig().port == DEFAULT_PORT  # `server run --port` serves the same default
    monkeypatch.setattr(
        config_module, "ServiceConfig", functools.partial(config_module.ServiceConfig, port=9443)
    )
    result = invoke("server", "token", data_dir, "--group", "lab")
    assert "--server https://localhost:9443 --pin" in result.stdout
