"""Byte ranges on content, against a real HTTPS server (resumable and piece downloads)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from service_helpers import PAYLOAD, PAYLOAD_PATH, PAYLOAD_SHA256

from tidings.fsutil import atomic_write

URL = f"/targets/{PAYLOAD_PATH}"


def test_full_download_has_content_addressed_strong_etag(client: httpx.Client) -> None:
    response = client.get(URL)
    assert response.status_code == 200
    assert response.content == PAYLOAD
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["etag"] == f'"{PAYLOAD_SHA256}"'
    assert response.headers["accept-ranges"] == "bytes"
    assert "immutable" in response.headers["cache-control"]


def test_head_returns_headers_without_body(client: httpx.Client) -> None:
    response = client.head(URL)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(PAYLOAD))
    assert response.content == b""


def test_single_range_returns_exactly_those_bytes(client: httpx.Client) -> None:
    response = client.get(URL, headers={"Range": "bytes=100-199"})
    assert response.status_code == 206
    assert response.content == PAYLOAD[100:200]
    assert response.headers["content-range"] == f"bytes 100-199/{len(PAYLOAD)}"


def test_open_ended_range_returns_the_rest(client: httpx.Client) -> None:
    response = client.get(URL, headers={"Range": "bytes=10-"})
    assert response.status_code == 206
    assert response.content == PAYLOAD[10:]
    assert response.headers["content-range"] == f"bytes 10-{len(PAYLOAD) - 1}/{len(PAYLOAD)}"


def test_suffix_range_returns_the_last_bytes(client: httpx.Client) -> None:
    response = client.get(URL, headers={"Range": "bytes=-5"})
    assert response.status_code == 206
    assert response.content == PAYLOAD[-5:]


def test_multiple_ranges_come_back_as_multipart(client: httpx.Client) -> None:
    response = client.get(URL, headers={"Range": "bytes=0-1,512-513"})
    assert response.status_code == 206
    assert response.headers["content-type"].startswith("multipart/byteranges")
    assert PAYLOAD[0:2] in response.content and PAYLOAD[512:514] in response.content


def test_unsatisfiable_range_is_416_with_the_size(client: httpx.Client, data_dir: Path) -> None:
    small = data_dir / "repo" / "targets" / "small.bin"
    small.write_bytes(b"0123456789")
    response = client.get("/targets/small.bin", headers={"Range": "bytes=1000-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */10"


def test_if_range_with_current_etag_returns_the_range(client: httpx.Client) -> None:
    etag = client.head(URL).headers["etag"]
    response = client.get(URL, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert response.status_code == 206
    assert response.content == PAYLOAD[:10]


def test_if_range_with_another_objects_etag_returns_the_whole_file(client: httpx.Client) -> None:
    response = client.get(URL, headers={"Range": "bytes=0-9", "If-Range": f'"{"0" * 64}"'})
    assert response.status_code == 200
    assert response.content == PAYLOAD


def test_if_range_after_the_file_changed_returns_the_new_whole_file(
    client: httpx.Client, data_dir: Path
) -> None:
    # Not content-addressed, so the ETag follows the file (size and mtime), not the name.
    path = data_dir / "repo" / "targets" / "apps" / "latest.bin"
    path.parent.mkdir()
    path.write_bytes(b"old content, version one")
    stale = client.head("/targets/apps/latest.bin").headers["etag"]
    atomic_write(path, b"new content, version two!")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    response = client.get(
        "/targets/apps/latest.bin", headers={"Range": "bytes=0-2", "If-Range": stale}
    )
    assert response.status_code == 200
    assert response.content == b"new content, version two!"
    assert response.headers["etag"] != stale
    assert response.headers["cache-control"] == "no-cache"


def test_plain_http_port_serves_content_ranges(plain_client: httpx.Client) -> None:
    response = plain_client.get(URL, headers={"Range": "bytes=1-3"})
    assert response.status_code == 206
    assert response.content == PAYLOAD[1:4]
