"""Path traversal: nothing outside repo/targets and repo/metadata is ever served."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from service_helpers import PAYLOAD, PAYLOAD_PATH, SECRET, raw_request

from tidings.service.server import ServiceEndpoints

CA_KEY_MARKER = b"PRIVATE KEY"


# repo/targets/../../ is DATA_DIR: these would reach tls/ca.key and secret.txt if followed.
@pytest.mark.parametrize(
    "target",
    [
        "/targets/../tls/ca.key",
        "/targets/../../tls/ca.key",
        "/targets/os/../../../secret.txt",
        "/targets/%2e%2e/%2e%2e/tls/ca.key",
        "/targets/%2E%2E/%2E%2E/secret.txt",
        "/targets/..%2f..%2ftls%2fca.key",
        "/targets/os%2f..%2f..%2f..%2fsecret.txt",
        "/targets/..%5c..%5ctls%5cca.key",
        "/targets/..\\..\\secret.txt",
        "/targets/%00/../../../secret.txt",
        "/targets//etc/passwd",
        "/targets/./os/0a",
        "/targets/.hidden",
        "/metadata/../../tls/ca.key",
        "/metadata/..%2f..%2ftls%2fca.key",
        "/metadata/%2e%2e%2f%2e%2e%2fsecret.txt",
    ],
)
def test_traversal_never_serves_files_outside_the_repository(
    service: ServiceEndpoints, ca_context: ssl.SSLContext, target: str
) -> None:
    response = raw_request(service, ca_context, target)
    assert response.status in (400, 404)
    assert CA_KEY_MARKER not in response.body
    assert SECRET not in response.body


def test_symlink_inside_targets_pointing_outside_is_not_followed(
    client: httpx.Client, data_dir: Path
) -> None:
    targets = data_dir / "repo" / "targets"
    (targets / "evil.bin").symlink_to(data_dir / "secret.txt")
    (targets / "escape").symlink_to(data_dir)
    for url in ("/targets/evil.bin", "/targets/escape/secret.txt", "/targets/escape/tls/ca.key"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert SECRET not in response.content and CA_KEY_MARKER not in response.content


def test_symlink_within_targets_is_served(client: httpx.Client, data_dir: Path) -> None:
    targets = data_dir / "repo" / "targets"
    (targets / "alias.bin").symlink_to(targets / PAYLOAD_PATH)
    assert client.get("/targets/alias.bin").content == PAYLOAD


def test_symlinked_metadata_pointing_outside_is_not_followed(
    client: httpx.Client, data_dir: Path
) -> None:
    (data_dir / "repo" / "metadata" / "9.snapshot.json").symlink_to(data_dir / "secret.txt")
    assert client.get("/metadata/9.snapshot.json").status_code == 404


def test_directories_are_not_served(client: httpx.Client) -> None:
    assert client.get("/targets/os/0a").status_code == 404
    assert client.get("/targets/os/0a/").status_code == 404


def test_overlong_path_is_refused_before_the_filesystem(client: httpx.Client) -> None:
    response = client.get("/targets/" + "a" * 2000)
    assert response.status_code == 414
