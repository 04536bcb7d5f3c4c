"""The HTTP surface: metadata names and caching, health, methods, bodies, content-only port."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from service_helpers import PAYLOAD, PAYLOAD_PATH, raw_request, timestamp_json

from tidings.service.server import ServiceEndpoints


@pytest.mark.parametrize(
    ("name", "cache_control"),
    [
        ("timestamp.json", "no-cache"),
        ("root.json", "no-cache"),
        ("1.root.json", "public, max-age=31536000, immutable"),
        ("3.snapshot.json", "public, max-age=31536000, immutable"),
        ("2.os.json", "public, max-age=31536000, immutable"),
    ],
)
def test_metadata_is_json_with_cache_policy_by_versioning(
    client: httpx.Client, name: str, cache_control: str
) -> None:
    response = client.get(f"/metadata/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == cache_control
    assert "signed" in response.json()
    head = client.head(f"/metadata/{name}")
    assert head.status_code == 200 and head.content == b""


@pytest.mark.parametrize(
    "name",
    [
        "4.snapshot.json",  # valid name, no such file
        "Timestamp.json",
        "timestamp.JSON",
        "timestamp",
        "a..json",
        "1..root.json",
        ".json",
        "-role.json",
        "1.root.json.bak",
        "1" * 21 + ".root.json",
        "r" * 200 + ".json",
    ],
)
def test_invalid_or_missing_metadata_names_are_404(client: httpx.Client, name: str) -> None:
    assert client.get(f"/metadata/{name}").status_code == 404


def test_missing_target_is_404(client: httpx.Client) -> None:
    assert client.get("/targets/os/0a/" + "0" * 64 + ".missing.cab").status_code == 404


def test_health_reports_timestamp_version_and_expiry(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "timestamp_version": 7,
        "timestamp_expires": "2099-01-01T00:00:00Z",
    }
    assert response.headers["cache-control"] == "no-store"


def test_health_without_catalog_is_503_no_catalog(client: httpx.Client, data_dir: Path) -> None:
    (data_dir / "repo" / "metadata" / "timestamp.json").unlink()
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json() == {
        "status": "no-catalog",
        "timestamp_version": None,
        "timestamp_expires": None,
    }


def test_health_with_expired_timestamp_is_503(client: httpx.Client, data_dir: Path) -> None:
    path = data_dir / "repo" / "metadata" / "timestamp.json"
    path.write_bytes(timestamp_json(version=9, expires="2001-01-01T00:00:00Z"))
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "expired"
    assert response.json()["timestamp_version"] == 9


def test_health_with_corrupt_timestamp_is_503(client: httpx.Client, data_dir: Path) -> None:
    (data_dir / "repo" / "metadata" / "timestamp.json").write_bytes(b"{not json")
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "catalog-unreadable"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_methods_other_than_get_and_head_are_405(client: httpx.Client, method: str) -> None:
    response = client.request(method, f"/targets/{PAYLOAD_PATH}")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_request_body_is_rejected_with_413(client: httpx.Client) -> None:
    response = client.request("GET", "/health", content=b"x" * 100)
    assert response.status_code == 413


def test_chunked_request_body_is_rejected_with_413(
    service: ServiceEndpoints, ca_context: ssl.SSLContext
) -> None:
    response = raw_request(service, ca_context, "/health", extra=b"Transfer-Encoding: chunked\r\n")
    assert response.status == 413


def test_unknown_paths_are_404(client: httpx.Client) -> None:
    for url in ("/", "/docs", "/openapi.json", "/metadata", "/tls/ca.key"):
        assert client.get(url).status_code == 404, url


def test_plain_http_port_serves_content_and_health_but_not_metadata(
    plain_client: httpx.Client,
) -> None:
    assert plain_client.get(f"/targets/{PAYLOAD_PATH}").content == PAYLOAD
    assert plain_client.get("/health").status_code == 200
    assert plain_client.get("/metadata/timestamp.json").status_code == 404
    assert plain_client.get("/metadata/1.root.json").status_code == 404


def test_https_port_does_not_speak_plain_http(service: ServiceEndpoints) -> None:
    with httpx.Client(timeout=5) as plain, pytest.raises(httpx.HTTPError):
        plain.get(service.base_url.replace("https://", "http://") + "/health")
