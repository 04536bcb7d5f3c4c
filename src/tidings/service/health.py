"""The service's health verdict, from the bytes of ``timestamp.json`` and the time. Pure.

The timestamp role is the one that expires first (docs/architecture.md, "Trust model"); if it is
missing, unreadable or expired, devices cannot update, so the service reports itself unhealthy
(HTTP 503).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

MAX_TIMESTAMP_BYTES = 65_536  # bytes; a timestamp.json is well under 2 KiB

OK = "ok"
NO_CATALOG = "no-catalog"
UNREADABLE = "catalog-unreadable"
EXPIRED = "expired"


def health_verdict(timestamp_json: bytes | None, now: datetime) -> tuple[int, dict[str, Any]]:
    """Return (HTTP status, JSON body) for ``/health``.

    Args:
        timestamp_json: The file's bytes, None if it does not exist. Longer than
            ``MAX_TIMESTAMP_BYTES`` counts as unreadable.
        now: The current time, timezone-aware.
    """
    if timestamp_json is None:
        return 503, _body(NO_CATALOG, None, None)
    parsed = _parse(timestamp_json)
    if parsed is None:
        return 503, _body(UNREADABLE, None, None)
    version, expires = parsed
    expires_text = expires.isoformat().replace("+00:00", "Z")
    if expires <= now:
        return 503, _body(EXPIRED, version, expires_text)
    return 200, _body(OK, version, expires_text)


def _parse(data: bytes) -> tuple[int, datetime] | None:
    if len(data) > MAX_TIMESTAMP_BYTES:
        return None
    try:
        signed = json.loads(data)["signed"]
        version = signed["version"]
        expires = datetime.fromisoformat(signed["expires"])
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        return None
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return version, expires.astimezone(UTC)


def _body(status: str, version: int | None, expires: str | None) -> dict[str, Any]:
    return {"status": status, "timestamp_version": version, "timestamp_expires": expires}
