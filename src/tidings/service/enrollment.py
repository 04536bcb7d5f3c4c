"""Device enrollment (docs/architecture.md, "Trust model"): a token and a CSR in, a device
certificate and trust out.

Routes, on the HTTPS app only:

- ``GET/HEAD /v1/ca.pem``  the service CA certificate (public; devices check it against the
  pin they were given, then trust only it).
- ``POST /v1/enroll``      JSON ``{"token", "csr", "hostname"?}`` of at most
  ``MAX_ENROLL_BODY_BYTES`` (the request guard in ``app.py`` enforces the bound before the
  body is read). Answers ``{"device_id", "group_id", "certificate", "ca", "root"}``; 400 for a
  malformed request or CSR, 403 for a refused token, 503 when the service cannot enroll, 429
  with ``Retry-After`` (seconds) once an address has failed ``enroll_max_failures`` times
  within ``enroll_failure_window_s`` (then neither the body nor the token is looked at).

Invariants: the certificate's subject is the device id chosen here, never anything from the
request (``tls.issue_certificate_from_csr`` takes only the public key); a token is spent only
if the certificate is issued and the device recorded (``ServiceState.redeem_token``); the root
metadata sent is the catalog's current ``root.json`` as a JSON object, which the device
verifies (self-signed) before trusting it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI, Request
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response

from tidings.clock import Clock
from tidings.errors import ConfigError, EnrollmentError, UsageError
from tidings.fsutil import TooLargeError, read_bounded
from tidings.service.config import ServiceConfig
from tidings.service.limits import FailureLimiter, LogThrottle, address_key
from tidings.service.state import (
    MAX_HOSTNAME_CHARS,
    MAX_TOKEN_CHARS,
    IssuedCertificate,
    ServiceState,
)
from tidings.service.tls import CA_CERT, MAX_CSR_BYTES, issue_certificate_from_csr

logger = logging.getLogger(__name__)

ENROLL_PATH = "/v1/enroll"
CA_PATH = "/v1/ca.pem"
MAX_ENROLL_BODY_BYTES = 16_384  # bytes; a P-256 CSR in PEM is about 500
MAX_CA_BYTES = 65_536  # bytes
FAILED_STATUSES = (400, 403, 413)  # refused token, malformed or oversized request
MAX_ROOT_BYTES = 1_048_576  # bytes; a root with many keys stays far below
DEVICE_CERT_DAYS = 365  # days

_NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True)
class EnrollRequest:
    """A parsed, bounded enrollment request (not yet authorized)."""

    token: str
    csr_pem: bytes
    hostname: str | None


def parse_enroll_request(body: bytes) -> EnrollRequest:
    """Parse the JSON body of ``POST /v1/enroll``. Pure.

    Any body at all gives either a request or ``EnrollmentError`` with one line: deep nesting
    (``RecursionError`` in the JSON parser), huge numbers and strings that cannot be encoded
    (lone surrogates) included, so a hostile body is a 400 and never a 500.

    Raises:
        EnrollmentError: Not a JSON object with a printable ASCII ``token`` of at most
            ``MAX_TOKEN_CHARS``, an ASCII ``csr`` of at most ``MAX_CSR_BYTES`` and an
            optional printable ``hostname`` within bounds.
    """
    if len(body) > MAX_ENROLL_BODY_BYTES:
        raise EnrollmentError(f"request larger than {MAX_ENROLL_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except RecursionError as e:
        raise EnrollmentError("request is nested too deeply") from e
    except (ValueError, UnicodeDecodeError) as e:  # also ints beyond Python's digit limit
        raise EnrollmentError("request is not JSON") from e
    if not isinstance(data, dict):
        raise EnrollmentError("request is not a JSON object")
    token, csr, hostname = data.get("token"), data.get("csr"), data.get("hostname")
    if not isinstance(token, str) or not token:
        raise EnrollmentError("token missing")
    if not (len(token) <= MAX_TOKEN_CHARS and token.isascii() and token.isprintable()):
        raise EnrollmentError(f"token must be 1 to {MAX_TOKEN_CHARS} printable ASCII characters")
    if not isinstance(csr, str) or not csr or len(csr) > MAX_CSR_BYTES:
        raise EnrollmentError("csr missing or too large")
    if not csr.isascii():  # PEM is ASCII; this also keeps lone surrogates out of encode()
        raise EnrollmentError("csr must be PEM text")
    if hostname is not None and not (
        isinstance(hostname, str)
        and 0 < len(hostname) <= MAX_HOSTNAME_CHARS
        and hostname.isprintable()
    ):
        raise EnrollmentError(f"hostname must be 1 to {MAX_HOSTNAME_CHARS} printable characters")
    return EnrollRequest(token=token, csr_pem=csr.encode("ascii"), hostname=hostname)


def add_enrollment_routes(
    app: FastAPI,
    data_dir: Path,
    *,
    state: ServiceState,
    clock: Clock,
    config: ServiceConfig | None = None,
) -> None:
    """Add ``/v1/ca.pem`` and ``/v1/enroll`` to ``app``, issuing from ``data_dir/tls``.

    ``config`` gives the limit on failed enrollments per address (its defaults when None).
    """
    enroller = _Enroller(data_dir, state=state, clock=clock)
    refusals = _Refusals(config or ServiceConfig(), clock)

    @app.api_route(CA_PATH, methods=["GET", "HEAD"])
    def get_ca() -> Response:
        ca_pem = _read_bounded(data_dir / "tls" / CA_CERT, MAX_CA_BYTES)
        if ca_pem is None:
            return _error(503, "the service has no CA certificate")
        return Response(
            ca_pem, media_type="application/x-pem-file", headers={"Cache-Control": "no-cache"}
        )

    @app.post(ENROLL_PATH)
    async def post_enroll(request: Request) -> Response:
        address = address_key(request.client.host) if request.client else "unknown"
        wait_s = refusals.begin(address)  # reserved: parallel attempts count before failing
        if wait_s is not None:  # refused before reading the body or looking at the token
            refusals.log(address, "too many failed enrollments")
            return _error(429, "too many failed enrollments: retry later", retry_after_s=wait_s)
        response: Response | None = None
        try:
            response = await _enroll(request, address, enroller)
        finally:  # a disconnect (or cancellation) is not counted as a failure
            refusals.end(address, response)
        if response is None:
            return Response(status_code=400)  # gone: nobody left to read it
        return response


async def _enroll(request: Request, address: str, enroller: _Enroller) -> Response | None:
    """Read the body and enroll; None when the client went away before its body was read."""
    body = bytearray()
    try:
        async for chunk in request.stream():  # bounded by the guard; re-checked here
            body += chunk
            if len(body) > MAX_ENROLL_BODY_BYTES:
                return _error(413, "request too large")
    except ClientDisconnect:  # gone mid-body (or closed by the body deadline)
        logger.debug("client %s disconnected during enrollment", address)
        return None
    return await run_in_threadpool(enroller.enroll, bytes(body))


class _Refusals:
    """Failed enrollments per address (``limits.FailureLimiter``), logged without flooding."""

    def __init__(self, config: ServiceConfig, clock: Clock) -> None:
        self._clock = clock
        self._limiter = FailureLimiter(
            max_failures=config.enroll_max_failures,
            window_s=config.enroll_failure_window_s,
            max_addresses=config.max_tracked_addresses,
        )
        self._log = LogThrottle(
            window_s=config.enroll_failure_window_s, max_addresses=config.max_tracked_addresses
        )

    def begin(self, address: str) -> float | None:
        """Reserve an attempt; None when ``address`` may try now, else seconds to wait."""
        return self._limiter.begin(address, self._clock.monotonic())

    def end(self, address: str, response: Response | None) -> None:
        """Release the attempt; a 400, 403 or 413 ``response`` counts (and is logged) as failed."""
        failed = response is not None and response.status_code in FAILED_STATUSES
        self._limiter.end(address, self._clock.monotonic(), failed=failed)
        if response is not None and failed:
            try:
                reason = json.loads(bytes(response.body))["error"]
            except (ValueError, KeyError, TypeError):
                reason = f"HTTP {response.status_code}"
            self.log(address, reason)

    def log(self, address: str, reason: str) -> None:
        left_out = self._log.admit(address, self._clock.monotonic())
        if left_out is None:
            return
        more = f" ({left_out} more refusals of this address not logged)" if left_out else ""
        logger.warning("refused enrollment from %s: %s%s", address, reason, more)


class _Enroller:
    """The blocking part of ``POST /v1/enroll``: file reads, the database, signing."""

    def __init__(self, data_dir: Path, *, state: ServiceState, clock: Clock) -> None:
        self._tls_dir = data_dir / "tls"
        self._root_file = data_dir / "repo" / "metadata" / "root.json"
        self._state = state
        self._clock = clock

    def enroll(self, body: bytes) -> Response:
        try:
            request = parse_enroll_request(body)
        except EnrollmentError as e:
            return _error(400, str(e))
        root = self._current_root()
        ca_pem = _read_bounded(self._tls_dir / CA_CERT, MAX_CA_BYTES)
        if root is None or ca_pem is None:
            return _error(503, "the service has no catalog or CA yet")
        device_id = str(uuid.uuid4())
        issued: list[bytes] = []

        def issue(_group_id: str) -> IssuedCertificate:
            pem = issue_certificate_from_csr(
                self._tls_dir,
                request.csr_pem,
                common_name=device_id,
                clock=self._clock,
                valid_days=DEVICE_CERT_DAYS,
            )
            issued.append(pem)
            return _describe(pem)

        try:
            record = self._state.redeem_token(
                request.token, device_id=device_id, hostname=request.hostname, issue=issue
            )
        except EnrollmentError as e:
            return _error(403, str(e))
        except ConfigError as e:  # the CA is missing or broken: the administrator's problem
            logger.error("enrollment failed: %s", e)
            return _error(503, "the service cannot issue certificates")
        except UsageError as e:  # the CSR
            return _error(400, str(e))
        except SQLAlchemyError:
            logger.exception("enrollment failed: database error")
            return _error(503, "the service cannot enroll devices right now")
        logger.info("enrolled device %s in group %s", record.device_id, record.group_id)
        body_out = {
            "device_id": record.device_id,
            "group_id": record.group_id,
            "certificate": issued[0].decode("ascii"),
            "ca": ca_pem.decode("ascii"),
            "root": root,
        }
        return JSONResponse(body_out, headers=_NO_STORE)

    def _current_root(self) -> dict[str, Any] | None:
        data = _read_bounded(self._root_file, MAX_ROOT_BYTES)
        if data is None:
            return None
        try:
            root = json.loads(data)
        except ValueError:
            logger.error("%s is not JSON", self._root_file)
            return None
        return root if isinstance(root, dict) else None


def _describe(pem: bytes) -> IssuedCertificate:
    cert = x509.load_pem_x509_certificate(pem)
    der = cert.public_bytes(serialization.Encoding.DER)
    return IssuedCertificate(
        pem=pem, serial=format(cert.serial_number, "x"), sha256=hashlib.sha256(der).hexdigest()
    )


def _read_bounded(path: Path, limit: int) -> bytes | None:
    """The file's bytes, or None when missing, unreadable or larger than ``limit``."""
    try:
        return read_bounded(path, limit)
    except (OSError, TooLargeError):
        return None


def _error(status: int, message: str, *, retry_after_s: float | None = None) -> JSONResponse:
    headers = dict(_NO_STORE)
    if retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    return JSONResponse({"error": message}, status_code=status, headers=headers)
