"""The update service's ASGI application: signed metadata, content with byte ranges, health.

Routes (GET and HEAD only, enrollment aside; docs/architecture.md, "Scale principles": metadata and
content are static):

- ``/metadata/{name}``   ``repo/metadata/<name>``, JSON (its stored ``.gz`` copy to clients
  that accept gzip); unversioned names ``no-cache``, versioned ``N.<role>.json`` immutable,
  and only once the committed timestamp reaches them (``names.is_committed``).
- ``/targets/{path}``    ``repo/targets/<path>``, octet-stream, byte ranges and If-Range by
  Starlette's ``FileResponse``; a content-addressed name's ETag is its quoted SHA-256.
- ``/health``            the verdict of ``health.health_verdict``.
- ``/v1/ca.pem``, ``POST /v1/enroll``  device enrollment (``enrollment.py``), HTTPS app only.

Invariants: nothing outside ``repo/metadata`` and ``repo/targets`` is ever opened: names are
checked lexically first (``names.py``), then the resolved path (symlinks followed) must still be
below its root. No request body is accepted (413), no other method (405), no path longer than
``max_path_chars`` (414), with one narrow exception: ``POST /v1/enroll`` with a
``Content-Length`` of at most ``enrollment.MAX_ENROLL_BODY_BYTES`` (chunked bodies: 411).
The content-only app (plain-HTTP port) has neither ``/metadata`` nor enrollment.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tidings.clock import Clock, SystemClock
from tidings.service import names
from tidings.service.committed import CommittedVersions
from tidings.service.config import ServiceConfig
from tidings.service.enrollment import ENROLL_PATH, MAX_ENROLL_BODY_BYTES, add_enrollment_routes
from tidings.service.health import MAX_TIMESTAMP_BYTES, health_verdict
from tidings.service.resign import ResignSchedule
from tidings.service.state import ServiceState, default_database_url

logger = logging.getLogger(__name__)

_METHODS = ["GET", "HEAD"]


def create_app(
    data_dir: Path,
    *,
    config: ServiceConfig,
    content_only: bool = False,
    resign: Callable[[], object] | None = None,
    clock: Clock = SystemClock(),  # noqa: B008 - stateless and immutable
) -> FastAPI:
    """Build the service's ASGI application over ``data_dir``.

    Args:
        data_dir: The data directory; ``repo/metadata`` and ``repo/targets`` are served.
        config: Limits and the re-signing interval.
        content_only: Serve only ``/targets`` and ``/health`` (the plain-HTTP port).
        resign: Called off the event loop at startup and then every
            ``config.resign_interval_s`` (refreshes timestamp/snapshot); failures are logged
            and never stop the server (see ``resign.ResignSchedule``).
        clock: Time source for the health verdict and enrollment.

    Returns:
        The application (a Starlette subclass).

    Raises:
        ConfigError: The service database (``config.database_url``) cannot be opened.
    """
    repo = data_dir / "repo"
    state = None
    if not content_only:
        url = config.database_url or default_database_url(data_dir)
        state = ServiceState.open(url, clock=clock)
    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
        lifespan=_resign_lifespan(resign, config, on_close=state.close if state else None),
    )
    app.add_middleware(
        _RequestGuard,
        max_path_chars=config.max_path_chars,
        post_paths=frozenset() if content_only else frozenset({ENROLL_PATH}),
    )

    if state is not None:
        add_enrollment_routes(app, data_dir, state=state, clock=clock, config=config)
        committed = CommittedVersions(repo / "metadata")

        @app.api_route("/metadata/{name}", methods=_METHODS)
        def get_metadata(name: str, request: Request) -> Response:
            parsed = names.parse_metadata_name(name)
            if parsed is None or not names.is_committed(parsed, committed.current()):
                raise HTTPException(404)  # a killed publish's file is never served (cached)
            root = repo / "metadata"
            headers = {"Cache-Control": parsed.cache_control, "Vary": "Accept-Encoding"}
            # The catalog writer stores a gzip copy beside each versioned file (what nginx's
            # gzip_static serves too); the signed bytes are the decompressed ones.
            if _accepts_gzip(request) and (root / f"{parsed.filename}.gz").is_file():
                path, st = _resolve_file(root, root / f"{parsed.filename}.gz")
                headers["Content-Encoding"] = "gzip"
            else:
                path, st = _resolve_file(root, root / parsed.filename)
            return FileResponse(
                path, stat_result=st, media_type="application/json", headers=headers
            )

    @app.api_route("/targets/{path:path}", methods=_METHODS)
    def get_target(path: str, request: Request) -> Response:
        segments = names.split_target_path(path, max_chars=config.max_path_chars)
        if segments is None:
            raise HTTPException(404)
        root = repo / "targets"
        resolved, st = _resolve_file(root, root.joinpath(*segments))
        # A content-addressed file never changes under its name (the content store only adds
        # files), so its digest is a strong ETag valid across replicas, unlike mtime+size.
        etag = names.content_etag(segments[-1])
        headers = {"Cache-Control": names.NO_CACHE if etag is None else names.IMMUTABLE}
        # Index documents (JSON) have a stored gzip copy, served whole to clients that accept
        # gzip; a range request always gets the identity bytes the signed hash covers.
        packed = root.joinpath(*segments[:-1], f"{segments[-1]}.gz")
        gzip_ok = "range" not in request.headers and _accepts_gzip(request)
        has_gzip_copy = packed.is_file()
        if has_gzip_copy:  # caches must tell the two representations apart, ranges included
            headers["Vary"] = "Accept-Encoding"
        if has_gzip_copy and gzip_ok:
            resolved, st = _resolve_file(root, packed)
            headers["Content-Encoding"] = "gzip"
            etag = None if etag is None else f'{etag[:-1]}.gz"'
        if etag is not None:
            headers["ETag"] = etag
        return FileResponse(
            resolved, stat_result=st, media_type="application/octet-stream", headers=headers
        )

    @app.api_route("/health", methods=_METHODS)
    def get_health() -> Response:
        data = _read_bounded(repo / "metadata" / "timestamp.json", MAX_TIMESTAMP_BYTES)
        status, body = health_verdict(data, clock.now())
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    return app


def _resolve_file(root: Path, candidate: Path) -> tuple[Path, os.stat_result]:
    """Resolve ``candidate`` (following symlinks) and require a regular file below ``root``."""
    try:
        real_root = root.resolve(strict=True)
        resolved = candidate.resolve(strict=True)
        if not resolved.is_relative_to(real_root):
            logger.warning("refused a path resolving outside %s: %s", root, candidate)
            raise HTTPException(404)
        st = resolved.stat()
    except (OSError, RuntimeError, ValueError) as e:  # missing, loop, denied, NUL, too long
        raise HTTPException(404) from e
    if not stat.S_ISREG(st.st_mode):
        raise HTTPException(404)
    return resolved, st


def _read_bounded(path: Path, limit: int) -> bytes | None:
    """Read at most ``limit + 1`` bytes (so the caller can tell "too large"); None if missing."""
    try:
        with path.open("rb") as f:
            return f.read(limit + 1)
    except FileNotFoundError:
        return None
    except OSError:
        return b""  # unreadable: the verdict calls empty bytes unreadable


def _accepts_gzip(request: Request) -> bool:
    accepted = request.headers.get("accept-encoding", "")[:256].lower()
    for item in accepted.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip() == "gzip":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _resign_lifespan(
    resign: Callable[[], object] | None,
    config: ServiceConfig,
    *,
    on_close: Callable[[], object] | None = None,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            if resign is None:
                yield
                return
            schedule = ResignSchedule(
                resign, interval_s=config.resign_interval_s, grace_s=config.shutdown_grace_s
            )
            schedule.start()
            try:
                yield
            finally:
                await schedule.stop()
        finally:
            if on_close is not None:
                on_close()

    return lifespan


class _RequestGuard:
    """Rejects before routing: other methods (405), request bodies (413), long paths (414).

    ``post_paths`` are the only exception: POST with a declared ``Content-Length`` of at most
    ``MAX_ENROLL_BODY_BYTES`` (enrollment; h11 then delivers no more than declared).
    """

    def __init__(
        self, app: ASGIApp, *, max_path_chars: int, post_paths: frozenset[str] = frozenset()
    ) -> None:
        self._app = app
        self._max_path_chars = max_path_chars
        self._post_paths = post_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        rejection = self._reject(scope)
        if rejection is None:
            await self._app(scope, receive, send)
        else:
            await rejection(scope, receive, send)

    def _reject(self, scope: Scope) -> Response | None:
        headers = {k.lower(): v for k, v in scope["headers"]}
        length = headers.get(b"content-length", b"0").strip()
        if scope["method"] == "POST" and scope["path"] in self._post_paths:
            if b"transfer-encoding" in headers or b"content-length" not in headers:
                return PlainTextResponse("Length Required", 411)
            if not length.isdigit() or int(length) > MAX_ENROLL_BODY_BYTES:
                return PlainTextResponse("Request body too large", 413)
            return self._reject_long_path(scope)
        if scope["method"] not in _METHODS:
            return PlainTextResponse("Method Not Allowed", 405, headers={"Allow": "GET, HEAD"})
        if b"transfer-encoding" in headers or not length.isdigit() or int(length) > 0:
            return PlainTextResponse("Request bodies are not accepted", 413)
        return self._reject_long_path(scope)

    def _reject_long_path(self, scope: Scope) -> Response | None:
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        if len(raw_path) > self._max_path_chars:
            return PlainTextResponse("URI Too Long", 414)
        return None
