"""Shared values and a raw HTTP/1.1 client for the service tests (imported by conftest)."""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
from dataclasses import dataclass

from tidings.service.server import ServiceEndpoints

PAYLOAD = bytes(range(256)) * 4  # 1024 bytes, every offset distinguishable
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
PAYLOAD_PATH = f"os/0a/{PAYLOAD_SHA256}.update.cab"
SECRET = b"-----SECRET OUTSIDE THE REPOSITORY-----"


def timestamp_json(version: int = 7, expires: str = "2099-01-01T00:00:00Z") -> bytes:
    """A timestamp.json shaped like TUF's (signatures are not checked by the service)."""
    signed = {"_type": "timestamp", "spec_version": "1.0.31", "version": version}
    signed["expires"] = expires
    signed["meta"] = {"snapshot.json": {"version": 3}}  # the snapshot data_dir holds
    return json.dumps({"signed": signed, "signatures": []}).encode()


@dataclass(frozen=True)
class RawResponse:
    status: int
    head: bytes
    body: bytes


def raw_request(
    endpoints: ServiceEndpoints,
    context: ssl.SSLContext,
    target: str,
    *,
    method: str = "GET",
    extra: bytes = b"",
) -> RawResponse:
    """Send ``target`` byte for byte (httpx would normalize ``..`` away) over TLS."""
    host, port = endpoints.base_url.removeprefix("https://").rsplit(":", 1)
    request = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n".encode()
    with (
        socket.create_connection((host, int(port)), timeout=10) as tcp,
        context.wrap_socket(tcp, server_hostname=host) as tls,
    ):
        tls.sendall(request + extra + b"\r\n")
        chunks = []
        while chunk := tls.recv(65_536):
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    return RawResponse(status=int(head.split(b" ", 2)[1]), head=head, body=body)
