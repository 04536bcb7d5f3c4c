"""Compressed metadata: smaller on the wire, same signed bytes, and no gzip bombs."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tuf.api import exceptions as tuf_exceptions

from tidings.catalog.publisher import PublishResult
from tidings.service.config import ServiceConfig
from tidings.service.server import running_server
from tidings.trust.fetcher import DECODE_STEP, decoded, pinned_ssl_context


def response(encoding: str) -> httpx.Response:
    return httpx.Response(200, headers={"content-encoding": encoding})


def chunks(data: bytes, size: int = 16_384) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_gzip_bomb_is_decoded_one_bounded_step_at_a_time() -> None:
    bomb = gzip.compress(b"\0" * 200_000_000)  # ~200 KB that would inflate to 200 MB
    body = decoded(chunks(bomb), response("gzip"), "https://x/1.snapshot.json")
    seen = 0
    for piece in body:  # a client stops at its length cap; here after 1 MB
        assert len(piece) <= DECODE_STEP
        seen += len(piece)
        if seen > 1_000_000:
            break
    assert seen <= 1_000_000 + DECODE_STEP


@pytest.mark.parametrize(
    ("encoding", "body"),
    [("gzip", gzip.compress(b"{}")[:-4]), ("gzip", b"not gzip"), ("br", b"x")],
)
def test_bad_or_unknown_encodings_are_download_errors(encoding: str, body: bytes) -> None:
    with pytest.raises(tuf_exceptions.DownloadError):
        list(decoded(iter([body]), response(encoding), "https://x/t.json"))


def test_service_sends_gzip_only_to_clients_that_accept_it(
    data_dir: Path, published: list[PublishResult]
) -> None:
    name = "1.snapshot.json"
    signed = (data_dir / "repo/metadata" / name).read_bytes()
    with running_server(data_dir, ServiceConfig(port=0)) as endpoints:
        verify = pinned_ssl_context(data_dir / "tls/ca.pem")
        with httpx.Client(verify=verify) as client:
            url = f"{endpoints.base_url}/metadata/{name}"
            packed = client.get(url, headers={"Accept-Encoding": "gzip"})
            plain = client.get(url, headers={"Accept-Encoding": "identity"})
            refused = client.get(url, headers={"Accept-Encoding": "gzip;q=0"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.content == signed  # httpx decodes: the same signed bytes
    assert int(packed.headers["content-length"]) < len(signed) / 2
    assert "content-encoding" not in plain.headers and plain.content == signed
    assert "content-encoding" not in refused.headers
