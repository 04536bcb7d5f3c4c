"""``tidings server tokens|devices|revoke-token|revoke-device|cert renew`` through the CLI."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from typer.testing import CliRunner, Result

from tidings.cli.main import registered_app
from tidings.clock import SystemClock
from tidings.errors import ConfigError, EnrollmentError
from tidings.service.config import ServiceConfig
from tidings.service.server import running_server
from tidings.service.state import IssuedCertificate, ServiceState, default_database_url
from tidings.service.tls import ca_pin
from tidings.trust.fetcher import pinned_ssl_context

app = registered_app()


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def fake_issue(_group: str) -> IssuedCertificate:
    return IssuedCertificate(pem=b"x", serial="0a", sha256="ab" * 32)


def state_of(data_dir: Path) -> ServiceState:
    return ServiceState.open(default_database_url(data_dir), clock=SystemClock())


def test_tokens_are_listed_by_id_and_the_secret_never_shows(data_dir: Path) -> None:
    with state_of(data_dir) as state:
        one = state.create_token("lab", lifetime=timedelta(hours=1))
        many = state.create_token("ring-1", lifetime=timedelta(days=2), uses=None)
        state.redeem_token(many.token, device_id="d1", hostname=None, issue=fake_issue)
    table = cli("server", "tokens", str(data_dir))
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "GROUP", "STATUS", "USES", "LEFT", "EXPIRES"]
    assert lines[1].split()[:5] == [one.token_id, "lab", "active", "0", "1"]
    assert lines[2].split()[:5] == [many.token_id, "ring-1", "active", "1", "unlimited"]
    as_json = cli("server", "tokens", str(data_dir), "--json")
    document = json.loads(as_json.stdout)
    assert document["schema"] == 1
    assert [t["token_id"] for t in document["tokens"]] == [one.token_id, many.token_id]
    assert document["tokens"][1]["uses_left"] is None
    for output in (table.stdout, as_json.stdout):
        assert one.token not in output and many.token not in output
        assert one.token.removeprefix("tdt_")[:20] not in output


def test_revoke_token_stops_it_enrolling(data_dir: Path) -> None:
    with state_of(data_dir) as state:
        issued = state.create_token("lab", lifetime=timedelta(hours=1))
    result = cli("server", "revoke-token", str(data_dir), issued.token_id)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"revoked token {issued.token_id} (group lab, 0 enrolled)"
    assert cli("server", "tokens", str(data_dir)).stdout.splitlines()[1].split()[2] == "revoked"
    with state_of(data_dir) as state, pytest.raises(EnrollmentError, match="token revoked"):
        state.redeem_token(issued.token, device_id="d", hostname=None, issue=fake_issue)


def test_devices_are_listed_and_revoked_with_their_time(data_dir: Path) -> None:
    with state_of(data_dir) as state:
        token = state.create_token("lab", lifetime=timedelta(hours=1), uses=None).token
        for device_id, hostname in (("dev-1", "pc-1"), ("dev-2", "[bold red]pc\n2[/]")):
            state.redeem_token(token, device_id=device_id, hostname=hostname, issue=fake_issue)
    revoked = cli("server", "revoke-device", str(data_dir), "dev-2")
    assert revoked.exit_code == 0, revoked.output
    assert revoked.stdout.startswith("revoked device dev-2 at 20")
    table = cli("server", "devices", str(data_dir)).stdout.splitlines()
    assert table[0].split() == ["DEVICE", "GROUP", "HOSTNAME", "ENROLLED", "REVOKED"]
    assert len(table) == 3  # a reported host name cannot add lines
    assert table[1].split()[-1] == "-"
    # Data is printed as it is, never interpreted as markup.
    assert "[bold red]pc?2[/]" in table[2] and table[2].split()[-1].startswith("20")
    document = json.loads(cli("server", "devices", str(data_dir), "--json").stdout)
    assert document["schema"] == 1
    assert [d["revoked_at"] is None for d in document["devices"]] == [True, False]
    assert document["devices"][1]["hostname"] == "[bold red]pc\n2[/]"
    with state_of(data_dir) as state:
        assert state.is_device_revoked("dev-2") and not state.is_device_revoked("dev-1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("revoke-token", "0123456789abcdef"), "no token with id 0123456789abcdef"),
        (("revoke-token", "tdt_secret"), "looks like a token itself"),
        (("revoke-device", "nobody"), "no enrolled device 'nobody'"),
    ],
)
def test_revoking_what_does_not_exist_is_one_line(
    data_dir: Path, args: tuple[str, ...], message: str
) -> None:
    result = cli("server", args[0], str(data_dir), *args[1:])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("command", ["tokens", "devices"])
def test_a_directory_that_is_not_a_data_dir_is_refused_and_left_alone(
    tmp_path: Path, command: str
) -> None:
    result = cli("server", command, str(tmp_path))
    assert result.exit_code == 1 and "is not a Tidings data directory" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_cert_renew_keeps_the_pin_and_the_service_serves_the_new_certificate(
    data_dir: Path,
) -> None:
    tls = data_dir / "tls"
    pin, before = ca_pin(tls), (tls / "server.pem").read_bytes()
    (tls / "server.pem").unlink()  # lost: `server run` points to `cert renew`, not `init`
    with (
        pytest.raises(ConfigError, match=rf"run `tidings server cert renew {data_dir}`"),
        running_server(data_dir, ServiceConfig(port=0)),
    ):
        pass
    result = cli("server", "cert", "renew", str(data_dir), "--hostname", "127.0.0.1")
    assert result.exit_code == 0, result.output
    assert f"CA pin (unchanged): {pin}" in result.stdout
    assert ca_pin(tls) == pin and (tls / "server.pem").read_bytes() != before
    leaf = x509.load_pem_x509_certificates((tls / "server.pem").read_bytes())[0]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    with (
        running_server(data_dir, ServiceConfig(port=0, shutdown_grace_s=2)) as endpoints,
        httpx.Client(verify=pinned_ssl_context(tls / "ca.pem"), timeout=10) as device,
    ):
        # A device's TLS (pinned CA, service role) accepts the renewed certificate.
        assert device.get(f"{endpoints.base_url}/health").status_code in (200, 503)


def test_cert_renew_outside_a_data_dir_is_one_line(tmp_path: Path) -> None:
    result = cli("server", "cert", "renew", str(tmp_path))
    assert result.exit_code == 1 and "is not a Tidings data directory" in result.stderr


def test_cert_renew_without_the_ca_key_says_to_restore_it_from_backup(data_dir: Path) -> None:
    (data_dir / "tls" / "ca.key").unlink()
    result = cli("server", "cert", "renew", str(data_dir))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: cannot read the CA key {data_dir / 'tls' / 'ca.key'} (No such file or "
        "directory): restore tls/ca.key from your backup (the CA key signs device and server "
        "certificates; devices pin the CA)"
    ]


def test_cert_renew_prints_the_new_names_and_those_it_dropped(data_dir: Path) -> None:
    kept = cli("server", "cert", "renew", str(data_dir))
    assert "names: localhost, 127.0.0.1, ::1" in kept.stdout.splitlines()
    assert "dropped" not in kept.stdout
    narrowed = cli("server", "cert", "renew", str(data_dir), "--hostname", "updates.example.com")
    assert narrowed.exit_code == 0, narrowed.output
    lines = narrowed.stdout.splitlines()
    assert "names: updates.example.com" in lines
    assert (
        "dropped (the old certificate had them): localhost, 127.0.0.1, ::1; "
        "give every name to keep with --hostname"
    ) in lines


def test_cert_renew_names_the_valid_days_option(data_dir: Path) -> None:
    result = cli("server", "cert", "renew", str(data_dir), "--valid-days", "0")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["error: --valid-days must be between 1 and 3650, not 0"]


def test_revoking_a_pasted_token_never_echoes_the_secret(data_dir: Path) -> None:
    with state_of(data_dir) as state:
        issued = state.create_token("lab", lifetime=timedelta(hours=1))
    result = cli("server", "revoke-token", str(data_dir), issued.token)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: that looks like a token itself, not its id: "
        "ids are listed by `tidings server tokens`"
    ]
    secret = issued.token.removeprefix("tdt_")
    assert secret[:8] not in result.output and secret[:8].lower() not in result.output


def test_empty_lists_say_what_to_do_instead_of_a_bare_header(data_dir: Path) -> None:
    tokens = cli("server", "tokens", str(data_dir))
    assert tokens.stdout.splitlines() == [
        f"no tokens yet; create one with `tidings server token {data_dir} --group GROUP`"
    ]
    assert cli("server", "devices", str(data_dir)).stdout.splitlines() == [
        "no devices enrolled yet"
    ]
    assert json.loads(cli("server", "tokens", str(data_dir), "--json").stdout)["tokens"] == []


def test_revoke_device_says_what_revoking_does_today(data_dir: Path) -> None:
    with state_of(data_dir) as state:
        token = state.create_token("lab", lifetime=timedelta(hours=1)).token
        state.redeem_token(token, device_id="dev-1", hostname=None, issue=fake_issue)
    result = cli("server", "revoke-device", str(data_dir), "dev-1")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == [
        "recorded for peer discovery and reports (to come), which will refuse its certificate; "
        "nothing checks it yet, and the device can still fetch updates"
    ]
    assert "wherever" not in cli("server", "revoke-device", "--help").stdout


def test_tokens_and_devices_work_on_postgresql_through_the_cli(
    data_dir: Path, postgres_url: str
) -> None:
    # The new user's path: docs/operations.md promises replicas on PostgreSQL by URL.
    db = ["--database-url", postgres_url]
    assert cli("server", "tokens", str(data_dir), *db).stdout.startswith("no tokens yet")
    created = cli("server", "token", str(data_dir), "--group", "lab", *db)
    assert created.exit_code == 0, created.output
    listed = json.loads(cli("server", "tokens", str(data_dir), *db, "--json").stdout)
    [token_id] = [t["token_id"] for t in listed["tokens"]]
    assert cli("server", "revoke-token", str(data_dir), token_id, *db).exit_code == 0
    assert cli("server", "devices", str(data_dir), *db).stdout.startswith("no devices")
