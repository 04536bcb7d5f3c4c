"""A server the device cannot trust is one security event, whatever reads from it.

``UntrustedServerError`` (an ``IntegrityError``) with one message, not a transport error to
retry: for catalog sync through python-tuf's Updater (which must let our error through
untouched, see ``trust/fetcher.py``) and for the conformance client. Real TLS on loopback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from attack_helpers import new_device

from identity_helpers import IMPOSTORS, impostor_files
from tidings.catalog.publisher import PublishResult
from tidings.clock import FixedClock
from tidings.errors import UNTRUSTED_SERVER, TransportError, UntrustedServerError
from tidings.service.config import ServiceConfig
from tidings.service.server import running_server
from tidings.service.tls import ca_pin, create_ca, issue_server_certificate
from tidings.trust.conformance import run
from tidings.trust.fetcher import HttpxFetcher


def _impostor_config(data_dir: Path, tmp_path: Path, clock: FixedClock, name: str) -> ServiceConfig:
    if name == "server certificate of another CA":
        other = tmp_path / "mitm"
        create_ca(other, clock=clock)
        issue_server_certificate(other, clock=clock)
        cert, key = other / "server.pem", other / "server.key"
    else:
        cert, key = impostor_files(data_dir / "tls", tmp_path / "impostor", name, clock=clock)
    return ServiceConfig(port=0, shutdown_grace_s=2, certfile=cert, keyfile=key)


@pytest.mark.parametrize("impostor", ["server certificate of another CA", *IMPOSTORS])
def test_catalog_sync_from_an_untrusted_server_is_an_integrity_error_and_trusts_nothing(
    data_dir: Path,
    published: list[PublishResult],
    clock: FixedClock,
    tmp_path: Path,
    impostor: str,
) -> None:
    device = new_device(data_dir, tmp_path / "device")
    config = _impostor_config(data_dir, tmp_path, clock, impostor)
    with running_server(data_dir, config) as endpoints:
        fetcher = HttpxFetcher(
            ca_file=data_dir / "tls/ca.pem",
            pin=ca_pin(data_dir / "tls"),
            base_url=endpoints.base_url,
        )
        try:
            with pytest.raises(UntrustedServerError) as caught:
                device.sync(fetcher, base_url=endpoints.base_url)
        finally:
            fetcher.close()
    assert UNTRUSTED_SERVER in str(caught.value)
    assert not isinstance(caught.value, TransportError)
    assert not (device.metadata_dir / "timestamp.json").exists()


@pytest.mark.parametrize("trust", ["--ca-file of the pinned CA", "the system's CAs"])
def test_conformance_client_refuses_an_untrusted_server_with_the_same_message(
    data_dir: Path,
    published: list[PublishResult],
    other_ca: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    trust: str,
) -> None:
    meta = tmp_path / "meta"
    assert (
        run(["--metadata-dir", str(meta), "init", str(data_dir / "repo/metadata/1.root.json")]) == 0
    )
    ca_args = ["--ca-file", str(data_dir / "tls/ca.pem")] if trust.startswith("--ca") else []
    mitm = ServiceConfig(
        port=0,
        shutdown_grace_s=2,
        certfile=other_ca / "server.pem",
        keyfile=other_ca / "server.key",
    )
    with running_server(data_dir, mitm) as endpoints:
        url = f"{endpoints.base_url}/metadata/"
        assert run(["--metadata-dir", str(meta), "--metadata-url", url, *ca_args, "refresh"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tidings-tuf-client: {url}") and UNTRUSTED_SERVER in err
    assert not (meta / "timestamp.json").exists()


def test_conformance_client_with_the_pinned_ca_refreshes_from_the_genuine_service(
    data_dir: Path, published: list[PublishResult], tmp_path: Path
) -> None:
    meta = tmp_path / "meta"
    assert (
        run(["--metadata-dir", str(meta), "init", str(data_dir / "repo/metadata/1.root.json")]) == 0
    )
    with running_server(data_dir, ServiceConfig(port=0, shutdown_grace_s=2)) as endpoints:
        argv = ["--metadata-dir", str(meta), "--metadata-url", f"{endpoints.base_url}/metadata/",
                "--ca-file", str(data_dir / "tls/ca.pem"), "refresh"]  # fmt: skip
        assert run(argv) == 0
    assert (meta / "timestamp.json").exists()
