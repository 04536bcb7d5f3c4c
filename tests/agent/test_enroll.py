"""``enroll`` against the real service over real TLS: the happy path and every refusal.

Whatever goes wrong, the state directory is either complete or absent.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

import tidings.agent.enroll as enroll_module
from tidings.agent.enroll import enroll
from tidings.agent.state import AgentState
from tidings.clock import FixedClock
from tidings.errors import EnrollmentError, TransportError, UntrustedServerError
from tidings.service.config import ServiceConfig
from tidings.service.server import ServiceEndpoints, running_server
from tidings.service.state import ServiceState, default_database_url
from tidings.service.tls import create_ca, issue_server_certificate


def attacker_data_dir(tmp_path: Path, clock: FixedClock, *, copy_ca_from: Path | None) -> Path:
    """A service with its own CA; optionally serving a copy of someone else's CA at /v1/ca.pem."""
    path = tmp_path / "attacker"
    create_ca(path / "tls", clock=clock)
    issue_server_certificate(path / "tls", clock=clock)  # chained to the attacker's CA
    (path / "repo" / "metadata").mkdir(parents=True)
    if copy_ca_from is not None:
        (path / "tls" / "ca.pem").write_bytes(copy_ca_from.read_bytes())
    return path


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_nothing_written(state_dir: Path) -> None:
    assert not state_dir.exists()
    assert not [p for p in state_dir.parent.iterdir() if p.name.startswith(f".{state_dir.name}")]


def test_enrolled_device_holds_a_certificate_from_the_ca_and_the_service_root(
    service: ServiceEndpoints,
    data_dir: Path,
    token: str,
    pin: str,
    clock: FixedClock,
    service_state: ServiceState,
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "device"
    identity = enroll(
        state_dir, server=service.base_url, pin=pin, token=token, clock=clock, hostname="pc-1"
    )
    assert identity.group_id == "lab" and identity.server == service.base_url
    assert identity.pin == pin and identity.enrolled_at == clock.now()
    state = AgentState.load(state_dir)
    assert state.identity == identity
    # The trust anchors are the service's, byte for byte.
    assert state.root_path.read_bytes() == (data_dir / "repo/metadata/root.json").read_bytes()
    assert state.ca_path.read_bytes() == (data_dir / "tls/ca.pem").read_bytes()
    ca = x509.load_pem_x509_certificate(state.ca_path.read_bytes())
    cert = x509.load_pem_x509_certificate(state.cert_path.read_bytes())
    cert.verify_directly_issued_by(ca)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == identity.device_id
    # The key is the device's alone.
    assert stat.S_IMODE(state.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    device = service_state.device(identity.device_id)
    assert device is not None and device.group_id == "lab" and device.hostname == "pc-1"
    saved = json.loads((state_dir / "device.json").read_bytes())
    assert set(saved) == {"device_id", "group_id", "server", "pin", "enrolled_at"}


def test_an_existing_empty_state_dir_is_used(
    service: ServiceEndpoints, token: str, pin: str, clock: FixedClock, tmp_path: Path
) -> None:
    state_dir = tmp_path / "device"
    state_dir.mkdir()
    enroll(state_dir, server=service.base_url, pin=pin, token=token, clock=clock)
    assert AgentState.load(state_dir).identity.group_id == "lab"


def test_wrong_pin_is_refused_before_anything_is_sent(
    service: ServiceEndpoints,
    token: str,
    pin: str,
    clock: FixedClock,
    service_state: ServiceState,
    tmp_path: Path,
) -> None:
    wrong = "sha256/" + base64.b64encode(b"\x01" * 32).decode()
    state_dir = tmp_path / "device"
    with pytest.raises(UntrustedServerError, match="verify the pin out of band") as caught:
        enroll(state_dir, server=service.base_url, pin=wrong, token=token, clock=clock)
    # The server's pin is not offered for copying: the pin comes from the administrator.
    assert pin not in str(caught.value) and pin.removeprefix("sha256/") not in str(caught.value)
    assert_nothing_written(state_dir)
    # The token never left the device: it still works.
    redeemed = service_state.redeem_token(
        token, device_id="d", hostname=None, issue=lambda g: _fake_cert()
    )
    assert redeemed.group_id == "lab"


def test_man_in_the_middle_with_another_ca_is_refused(
    token: str, pin: str, clock: FixedClock, tmp_path: Path
) -> None:
    attacker = attacker_data_dir(tmp_path, clock, copy_ca_from=None)
    state_dir = tmp_path / "device"
    with (
        running_server(attacker, ServiceConfig(port=0, shutdown_grace_s=2)) as mitm,
        pytest.raises(UntrustedServerError, match="its CA is not the one --pin names"),
    ):
        enroll(state_dir, server=mitm.base_url, pin=pin, token=token, clock=clock)
    assert_nothing_written(state_dir)


def test_server_serving_a_copied_ca_without_its_key_is_refused(
    data_dir: Path, token: str, pin: str, clock: FixedClock, tmp_path: Path
) -> None:
    attacker = attacker_data_dir(tmp_path, clock, copy_ca_from=data_dir / "tls/ca.pem")
    state_dir = tmp_path / "device"
    with (
        running_server(attacker, ServiceConfig(port=0, shutdown_grace_s=2)) as mitm,
        pytest.raises(UntrustedServerError, match="not signed by the pinned CA"),
    ):
        enroll(state_dir, server=mitm.base_url, pin=pin, token=token, clock=clock)
    assert_nothing_written(state_dir)


def test_expired_token_is_refused(
    service: ServiceEndpoints, data_dir: Path, pin: str, clock: FixedClock, tmp_path: Path
) -> None:
    past = ServiceState.open(
        default_database_url(data_dir), clock=FixedClock(clock.now() - timedelta(hours=2))
    )
    try:
        expired = past.create_token("lab", lifetime=timedelta(hours=1)).token
    finally:
        past.close()
    state_dir = tmp_path / "device"
    with pytest.raises(
        EnrollmentError,
        match=r"^enrollment refused: token expired; ask the administrator for a new token",
    ):
        enroll(state_dir, server=service.base_url, pin=pin, token=expired, clock=clock)
    assert_nothing_written(state_dir)


def test_unknown_token_is_refused(
    service: ServiceEndpoints, pin: str, clock: FixedClock, tmp_path: Path
) -> None:
    state_dir = tmp_path / "device"
    with pytest.raises(
        EnrollmentError,
        match=r"^enrollment refused: unknown token; check that the token was copied whole",
    ):
        enroll(state_dir, server=service.base_url, pin=pin, token="tdt_guess", clock=clock)
    assert_nothing_written(state_dir)


def test_single_use_token_reused_is_refused(
    service: ServiceEndpoints, token: str, pin: str, clock: FixedClock, tmp_path: Path
) -> None:
    enroll(tmp_path / "first", server=service.base_url, pin=pin, token=token, clock=clock)
    with pytest.raises(
        EnrollmentError,
        match=r"^enrollment refused: token used up; ask the administrator for a new token",
    ):
        enroll(tmp_path / "second", server=service.base_url, pin=pin, token=token, clock=clock)
    assert_nothing_written(tmp_path / "second")


def test_concurrent_enrollments_with_one_single_use_token_succeed_once(
    service: ServiceEndpoints, token: str, pin: str, clock: FixedClock, tmp_path: Path
) -> None:
    barrier = threading.Barrier(8)
    outcomes: dict[int, str] = {}

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            enroll(tmp_path / f"d{i}", server=service.base_url, pin=pin, token=token, clock=clock)
            outcomes[i] = "ok"
        except EnrollmentError as e:
            outcomes[i] = str(e).partition(";")[0]

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(outcomes.values()) == ["enrollment refused: token used up"] * 7 + ["ok"]
    enrolled = [f"d{i}" for i, outcome in outcomes.items() if outcome == "ok"]
    assert sorted(p.name for p in tmp_path.glob("d[0-9]")) == enrolled


def test_unreachable_server_is_a_one_line_transport_error(
    token: str, pin: str, clock: FixedClock, tmp_path: Path
) -> None:
    url = f"https://127.0.0.1:{closed_port()}"
    state_dir = tmp_path / "device"
    with pytest.raises(TransportError, match=f"^cannot reach {url}/v1/ca.pem: ") as caught:
        enroll(state_dir, server=url, pin=pin, token=token, clock=clock, timeout_s=5)
    assert "\n" not in str(caught.value)
    assert_nothing_written(state_dir)


@pytest.mark.parametrize(
    "server", ["http://127.0.0.1:8443", "127.0.0.1:8443", "https://", "ftp://x", "https://h/?q=1"]
)
def test_only_https_urls_are_accepted(
    server: str, pin: str, clock: FixedClock, tmp_path: Path
) -> None:
    with pytest.raises(EnrollmentError, match="--server must be an https:// URL"):
        enroll(tmp_path / "device", server=server, pin=pin, token="tdt_x", clock=clock)


@pytest.mark.parametrize("bad", ["", "sha256/", "sha256/abc", "md5/" + "A" * 44, "A" * 44])
def test_malformed_pin_is_refused(bad: str, clock: FixedClock, tmp_path: Path) -> None:
    with pytest.raises(EnrollmentError, match="--pin must be the CA pin"):
        enroll(tmp_path / "d", server="https://127.0.0.1:1", pin=bad, token="t", clock=clock)


def test_non_empty_or_enrolled_state_dir_is_refused_before_connecting(
    pin: str, clock: FixedClock, tmp_path: Path
) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("x")
    unreachable = f"https://127.0.0.1:{closed_port()}"
    with pytest.raises(EnrollmentError, match="is not empty"):
        enroll(busy, server=unreachable, pin=pin, token="tdt_x", clock=clock)
    (busy / "device.json").write_text("{}")
    with pytest.raises(EnrollmentError, match="is already enrolled"):
        enroll(busy, server=unreachable, pin=pin, token="tdt_x", clock=clock)


def test_failure_while_writing_after_key_generation_leaves_no_state_dir(
    service: ServiceEndpoints,
    token: str,
    pin: str,
    clock: FixedClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_write = enroll_module._write_file
    calls: list[Path] = []

    def failing_write(path: Path, data: bytes, mode: int) -> None:
        calls.append(path)
        if len(calls) == 3:  # root and CA written, the key next: the disk fills up
            raise OSError(28, os.strerror(28))
        real_write(path, data, mode)

    monkeypatch.setattr(enroll_module, "_write_file", failing_write)
    state_dir = tmp_path / "device"
    with pytest.raises(EnrollmentError, match=r"cannot write .*No space left on device"):
        enroll(state_dir, server=service.base_url, pin=pin, token=token, clock=clock)
    assert len(calls) == 3
    assert_nothing_written(state_dir)


def test_state_dir_filled_by_someone_else_meanwhile_is_not_overwritten(
    service: ServiceEndpoints,
    token: str,
    pin: str,
    clock: FixedClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state_dir = tmp_path / "device"
    real_verify = enroll_module.verify_enrollment_reply

    def verify_then_race(*args: object, **kwargs: object) -> object:
        verified = real_verify(*args, **kwargs)  # type: ignore[arg-type]
        state_dir.mkdir()
        (state_dir / "theirs").write_text("keep me")
        return verified

    monkeypatch.setattr(enroll_module, "verify_enrollment_reply", verify_then_race)
    with pytest.raises(EnrollmentError, match="is not empty: nothing was written"):
        enroll(state_dir, server=service.base_url, pin=pin, token=token, clock=clock)
    assert [p.name for p in state_dir.iterdir()] == ["theirs"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".device")]


def _fake_cert() -> object:
    from tidings.service.state import IssuedCertificate

    return IssuedCertificate(pem=b"x", serial="1", sha256="0" * 64)
