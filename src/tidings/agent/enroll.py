"""Enrolling a device with the update service (docs/architecture.md, "Trust model").

The administrator gives the device three things out of band: the service URL, the SPKI pin of
the service CA, and a token. The steps:

1. Fetch ``/v1/ca.pem`` over TLS *without* verification: nothing is trusted yet, the pin is
   the trust anchor. The certificate must be a CA and its SPKI pin must equal ``pin``.
2. From then on, every connection verifies the server against that CA only, and accepts only
   the update service's own certificate (``trust/service_tls.py``): a server that copied the
   public CA certificate but holds no certificate issued by it fails here, and so does an
   enrolled device posing as the service with its device certificate, before the token is
   sent. Every such failure, and a CA that does not match the pin, is one
   ``UntrustedServerError``.
3. Generate an ECDSA P-256 key, send a CSR and the token to ``POST /v1/enroll``.
4. Verify the reply (``verify_enrollment_reply``, pure): the certificate is issued by the
   pinned CA for our key and names the device; the TUF root is signed by its own keys.
5. Write the state directory in one ``os.rename`` of a fully written temporary directory:
   on any failure nothing is left behind, not even the key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import os
import re
import shutil
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata, Root
from tuf.api.serialization import DeserializationError
from tuf.api.serialization.json import JSONSerializer

from tidings.agent import state as layout
from tidings.agent.state import DeviceIdentity
from tidings.clock import Clock
from tidings.errors import (
    ConfigError,
    EnrollmentError,
    IntegrityError,
    TransportError,
    UntrustedServerError,
)
from tidings.fsutil import fsync_dir
from tidings.service.tls import spki_pin
from tidings.trust.deadline import Deadline, deadline_transport
from tidings.trust.fetcher import system_proxy
from tidings.trust.service_tls import service_tls_context, untrusted_server_detail
from tidings.wire.identity import DEVICE_ID

CA_PATH = "/v1/ca.pem"
ENROLL_PATH = "/v1/enroll"
MAX_CA_BYTES = 65_536  # bytes
MAX_REPLY_BYTES = 2 * 1_048_576  # bytes: a root of up to 1 MiB plus two certificates
MAX_TOKEN_FILE_BYTES = 4096  # bytes; a token is 47 characters
MAX_RETRY_AFTER_S = 86_400  # seconds: a longer Retry-After is shown as this
TOKEN_ENV = "TIDINGS_ENROLL_TOKEN"  # noqa: S105 - the variable's name, not a secret
PLACEHOLDER_CN = "tidings-enrolling-device"  # the service replaces it with the device id
USER_AGENT = "tidings/0.1"

_ASK_ADMINISTRATOR = "ask the administrator for a new token: `tidings server token`"
# What to do about each refusal the service names in the ``error`` of a 403
# (docs/operations.md, "Enrolling devices").
REFUSAL_ADVICE = {
    "unknown token": "check that the token was copied whole, or " + _ASK_ADMINISTRATOR,
    "token expired": _ASK_ADMINISTRATOR,
    "token used up": _ASK_ADMINISTRATOR,
    "token revoked": _ASK_ADMINISTRATOR,
}
START_SERVICE_ADVICE = "check the address and that `tidings server run` is running"

_GROUP = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # as the service validates groups
_KEY_MODE = 0o600
_FILE_MODE = 0o644


@dataclass(frozen=True)
class VerifiedReply:
    """An enrollment reply that passed every check of ``verify_enrollment_reply``."""

    device_id: str
    group_id: str
    cert_pem: bytes
    root_json: bytes  # the root metadata, in the catalog's compact canonical form


def enroll(
    state_dir: Path,
    *,
    server: str,
    pin: str,
    token: str,
    clock: Clock,
    hostname: str | None = None,
    timeout_s: float = 30.0,
    progress: Callable[[str], None] | None = None,
) -> DeviceIdentity:
    """Enroll this device with the service at ``server`` and write ``state_dir``.

    Args:
        state_dir: Where the agent keeps its state; must not exist, or be empty.
        server: The service's base URL, ``https://`` only.
        pin: The SPKI pin of the service CA, ``sha256/<base64>``.
        token: An enrollment token from ``tidings server token``.
        clock: Time source (certificate validity, ``enrolled_at``).
        hostname: A name reported to the service (informational).
        timeout_s: Seconds each of the two requests (CA certificate, enrollment) may take in
            all: connecting, TLS, headers and body (a server trickling bytes is cut off).
        progress: Told, once the arguments are checked, what enrollment waits for
            (``connecting to https://host:port ...``), so that a slow server is not silence.

    Returns:
        The identity written to ``state_dir/device.json``.

    Raises:
        EnrollmentError: Bad arguments, ``state_dir`` not empty, the token is refused, or
            the reply is malformed.
        UntrustedServerError: The server's CA does not match the pin, or its certificate is
            not from the pinned CA or not the update service's (a device's, say).
        IntegrityError: The reply does not verify (certificate or root signatures).
        TransportError: The server cannot be reached, did not answer within ``timeout_s``
            or failed, or refuses enrollments from this address for now (too many failed
            ones): retry after the wait it names.
    """
    base = check_server_url(server)
    _check_pin(pin)
    _check_state_dir_free(state_dir)
    if progress is not None:
        progress(f"connecting to {base} ...")
    ca_pem = _fetch_pinned_ca(base, pin, timeout_s)
    pinned = service_tls_context(ca_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    request = {"token": token, "csr": _csr_pem(key).decode("ascii")}
    if hostname:
        request["hostname"] = hostname
    with _Client(base, pinned, timeout_s) as client:
        reply = _post_enroll(client, base + ENROLL_PATH, request)
    verified = verify_enrollment_reply(reply, ca_pem=ca_pem, device_key=key, clock=clock)
    identity = DeviceIdentity(verified.device_id, verified.group_id, base, pin, clock.now())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_state_dir(
        state_dir,
        {
            layout.ROOT_FILE: (verified.root_json, _FILE_MODE),
            layout.CA_FILE: (ca_pem, _FILE_MODE),
            layout.KEY_FILE: (key_pem, _KEY_MODE),
            layout.CERT_FILE: (verified.cert_pem, _FILE_MODE),
            layout.IDENTITY_FILE: (identity.to_json(), _FILE_MODE),
        },
    )
    return identity


def enrollment_token(
    *, option: str | None, token_file: Path | None, environment: str | None
) -> str:
    """The token from exactly one of ``--token``, ``--token-file`` and ``TIDINGS_ENROLL_TOKEN``.

    ``--token`` is readable by every local user in the process list; the file and the
    environment variable are not. An empty environment variable counts as unset.

    Args:
        option: The value of ``--token``, if given.
        token_file: The path given with ``--token-file``, if any.
        environment: The value of ``TIDINGS_ENROLL_TOKEN``, if set.

    Raises:
        EnrollmentError: None or several sources given; the file is missing, unreadable,
            larger than ``MAX_TOKEN_FILE_BYTES`` or holds only whitespace.
    """
    given = [
        name
        for name, value in (
            ("--token", option),
            ("--token-file", token_file),
            (TOKEN_ENV, environment or None),
        )
        if value is not None
    ]
    if len(given) != 1:
        problem = "no enrollment token" if not given else "more than one token: " + ", ".join(given)
        raise EnrollmentError(f"{problem}; give exactly one of --token-file, {TOKEN_ENV}, --token")
    if option is not None:
        token = option.strip()
    elif token_file is not None:
        token = _read_token_file(token_file)
    else:
        token = (environment or "").strip()
    if not token:
        raise EnrollmentError(f"the enrollment token from {given[0]} is empty")
    return token


def verify_enrollment_reply(
    body: bytes, *, ca_pem: bytes, device_key: ec.EllipticCurvePrivateKey, clock: Clock
) -> VerifiedReply:
    """Check a ``POST /v1/enroll`` reply against the pinned CA and our key. Pure.

    Raises:
        EnrollmentError: The reply is not the expected JSON, or the certificate is not
            valid at ``clock.now()`` (a wrong clock on the device, usually).
        IntegrityError: The certificate is not issued by the pinned CA for our key and our
            device id, the reply names another CA, or the root is not signed by itself.
    """
    reply = _json_object(body)
    device_id, group_id = reply.get("device_id"), reply.get("group_id")
    cert_text, ca_text, root = reply.get("certificate"), reply.get("ca"), reply.get("root")
    if not isinstance(device_id, str) or not DEVICE_ID.fullmatch(device_id):
        raise EnrollmentError("the server's reply has no valid device_id")
    if not isinstance(group_id, str) or not _GROUP.fullmatch(group_id):
        raise EnrollmentError("the server's reply has no valid group_id")
    if not (isinstance(cert_text, str) and isinstance(ca_text, str) and isinstance(root, dict)):
        raise EnrollmentError("the server's reply lacks certificate, ca or root")
    ca = x509.load_pem_x509_certificate(ca_pem)
    if _pin_of(ca_text.encode("ascii", "replace")) != _pin_of(ca_pem):
        raise IntegrityError("the server's reply names a CA other than the pinned one")
    cert = _single_certificate(cert_text.encode("ascii", "replace"), "device certificate")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as e:
        raise IntegrityError("the device certificate is not issued by the pinned CA") from e
    if cert.public_key() != device_key.public_key():
        raise IntegrityError("the device certificate is not for this device's key")
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if [n.value for n in names] != [device_id]:
        raise IntegrityError("the device certificate does not name the device id")
    if _basic_constraints_ca(cert):
        raise IntegrityError("the device certificate is a CA certificate")
    now = clock.now()
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise EnrollmentError("the device certificate is not valid now: check this clock")
    return VerifiedReply(
        device_id, group_id, cert.public_bytes(serialization.Encoding.PEM), _verified_root(root)
    )


def write_state_dir(state_dir: Path, files: dict[Path, tuple[bytes, int]]) -> None:
    """Write ``files`` (relative path -> (bytes, mode)) as ``state_dir``, all or nothing.

    Everything is written and fsynced in a temporary directory beside ``state_dir``, then
    renamed onto it (``rename(2)`` replaces an empty directory and fails on a non-empty one).

    Raises:
        EnrollmentError: ``state_dir`` is not empty, or the files cannot be written.
    """
    parent = state_dir.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{state_dir.name}.", suffix=".tmp", dir=parent))
    except OSError as e:
        raise EnrollmentError(f"cannot write {state_dir}: {e.strerror}") from e
    try:
        for relative, (data, mode) in files.items():
            path = tmp / relative
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write_file(path, data, mode)
        for directory in {(tmp / r).parent for r in files}:
            fsync_dir(directory)
        os.rename(tmp, state_dir)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if state_dir.exists():
            raise EnrollmentError(f"{state_dir} is not empty: nothing was written") from e
        raise EnrollmentError(f"cannot write {state_dir}: {e.strerror or e}") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(parent)


def _read_token_file(path: Path) -> str:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_TOKEN_FILE_BYTES + 1)
    except OSError as e:
        raise EnrollmentError(f"cannot read the token file {path}: {e.strerror or e}") from e
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise EnrollmentError(
            f"the token file {path} is larger than {MAX_TOKEN_FILE_BYTES} bytes: "
            "it should hold only the token"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise EnrollmentError(f"the token file {path} is not text") from e
    if not text.strip():
        raise EnrollmentError(f"the token file {path} is empty")
    return text.strip()


def check_server_url(server: str, *, option: str = "--server") -> str:
    """The service's base URL as enrollment uses it (also checked by ``server token``).

    Raises:
        EnrollmentError: Not an https:// URL with a host (and no query or fragment).
    """
    try:
        url = httpx.URL(server)
    except (httpx.InvalidURL, TypeError) as e:
        raise EnrollmentError(f"{option} must be an https:// URL, not {server!r}") from e
    if url.scheme != "https" or not url.host or url.query or url.fragment:
        raise EnrollmentError(f"{option} must be an https:// URL, not {server!r}")
    return str(url).rstrip("/")


def _check_pin(pin: str) -> None:
    try:
        digest = base64.b64decode(pin.removeprefix("sha256/"), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if not pin.startswith("sha256/") or len(digest) != 32:
        raise EnrollmentError(
            f"--pin must be the CA pin printed by `tidings server init` (sha256/...), not {pin!r}"
        )


def _check_state_dir_free(state_dir: Path) -> None:
    if (state_dir / layout.IDENTITY_FILE).exists():
        raise EnrollmentError(f"{state_dir} is already enrolled: use another directory")
    if state_dir.exists() and not state_dir.is_dir():
        raise EnrollmentError(
            f"{state_dir} is a file, not a directory: STATE_DIR is a new directory for the "
            "agent's state (give a token file with --token-file)"
        )
    if state_dir.exists() and any(state_dir.iterdir()):
        raise EnrollmentError(f"{state_dir} is not empty: enroll into a new directory")


def _fetch_pinned_ca(base: str, pin: str, timeout_s: float) -> bytes:
    # Nothing is trusted yet: the server's certificate is not checked here, the pin is.
    blind = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    blind.check_hostname = False
    blind.verify_mode = ssl.CERT_NONE
    blind.minimum_version = ssl.TLSVersion.TLSv1_2
    url = base + CA_PATH
    with _Client(base, blind, timeout_s) as client:
        status, data, _ = client.request("GET", url, MAX_CA_BYTES)
    if status != 200:
        raise EnrollmentError(f"{url}: HTTP {status}; is this a Tidings update service?")
    ca = _single_certificate(data, "CA certificate at " + url)
    actual = _pin_of(data)
    if not hmac.compare_digest(actual.encode("ascii"), pin.encode("ascii", "replace")):
        # Never show the server's pin: it is exactly what a man in the middle wants copied.
        raise UntrustedServerError(base, "its CA is not the one --pin names")
    if not _basic_constraints_ca(ca):
        raise EnrollmentError(f"the certificate at {url} is not a CA certificate")
    return ca.public_bytes(serialization.Encoding.PEM)


def _post_enroll(client: _Client, url: str, request: dict[str, str]) -> bytes:
    status, data, headers = client.request("POST", url, MAX_REPLY_BYTES, json=request)
    if status == 200:
        return data
    error = _error_message(data)
    if status == 403:
        advice = REFUSAL_ADVICE.get(error)
        raise EnrollmentError(f"enrollment refused: {error}" + (f"; {advice}" if advice else ""))
    if status == 429:
        # Not this device's fault (a neighbour behind the same NAT may have failed), and the
        # wait never grows while it waits (docs/operations.md, "Limits against hostile
        # clients"): a transport failure, so a script retries, after the wait, unchanged.
        wait_s = retry_after_seconds(headers.get("Retry-After"))
        when = "later" if wait_s is None else f"in {wait_s} seconds"
        raise TransportError(
            "the service refuses enrollments from this address for now (too many failed "
            f"enrollments from it): retry {when}"
        )
    if status >= 500:
        raise TransportError(f"{url}: HTTP {status}: {error}")
    raise EnrollmentError(f"enrollment rejected (HTTP {status}): {error}")


def retry_after_seconds(header: str | None) -> int | None:
    """The seconds of a ``Retry-After`` header, at most ``MAX_RETRY_AFTER_S``. Pure.

    Only the delta-seconds form the service sends is read; an HTTP date, a negative number
    or anything else is ``None`` (the header is the server's text: it is never shown).
    """
    if header is None:
        return None
    value = header.strip()
    if not (value.isascii() and value.isdigit()):
        return None
    return MAX_RETRY_AFTER_S if len(value) > 9 else min(int(value), MAX_RETRY_AFTER_S)


class _Client:
    """The enrolling device's HTTP client: one request at a time, each within ``timeout_s`` in all.

    httpx's timeouts bound each network operation only, and before the pin is checked any
    server can answer: a total deadline per request (trust/deadline.py) keeps a server that
    trickles bytes from holding enrollment for days.
    """

    def __init__(self, base: str, context: ssl.SSLContext, timeout_s: float) -> None:
        self._deadline = Deadline()
        self._timeout_s = timeout_s
        self._client = httpx.Client(
            transport=deadline_transport(self._deadline, verify=context, proxy=system_proxy(base)),
            timeout=httpx.Timeout(timeout_s),
            trust_env=False,  # the proxy only (above): no .netrc, no certificate bundles
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        )

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()

    def request(
        self, method: str, url: str, limit: int, **kwargs: Any
    ) -> tuple[int, bytes, httpx.Headers]:
        """Send a request; return the status, at most ``limit`` bytes of body and the headers.

        Raises:
            EnrollmentError: The reply is larger than ``limit``.
            UntrustedServerError: The server's certificate is refused.
            TransportError: The server cannot be reached or did not answer within the time.
        """
        self._deadline.start(self._timeout_s)
        try:
            with self._client.stream(method, url, **kwargs) as response:
                body = bytearray()
                for chunk in response.iter_raw():
                    body += chunk
                    if len(body) > limit:
                        raise EnrollmentError(f"{url}: reply larger than {limit} bytes")
                return response.status_code, bytes(body), response.headers
        except httpx.TimeoutException as e:
            # Not ssl's "_ssl.c:989: The handshake operation timed out": what waited, how long.
            target = httpx.URL(url)
            origin = f"{target.scheme}://{target.netloc.decode('ascii')}"
            raise TransportError(
                f"the service at {origin} did not answer within {self._timeout_s:g} s: "
                + START_SERVICE_ADVICE
            ) from e
        except httpx.HTTPError as e:
            detail = untrusted_server_detail(e)
            if detail is not None:
                raise UntrustedServerError(url, detail) from e
            raise TransportError(f"cannot reach {url}: {_line(e)}") from e
        finally:
            self._deadline.clear()


def _verified_root(root: dict[str, Any]) -> bytes:
    try:
        md = Metadata[Root].from_bytes(json.dumps(root).encode("utf-8"))
    except (DeserializationError, ValueError, TypeError) as e:
        raise EnrollmentError("the server's root metadata is not TUF root metadata") from e
    if not isinstance(md.signed, Root):
        raise EnrollmentError("the server's root metadata is not TUF root metadata")
    try:
        md.verify_delegate(Root.type, md)  # the trust anchor must at least be self-consistent
    except UnsignedMetadataError as e:
        raise IntegrityError(f"the server's root metadata is not signed by its keys: {e}") from e
    return md.to_bytes(JSONSerializer(compact=True))


def _csr_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, PLACEHOLDER_CN)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def _single_certificate(pem: bytes, what: str) -> x509.Certificate:
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as e:
        raise EnrollmentError(f"the {what} is not a PEM certificate") from e
    if len(certs) != 1:
        raise EnrollmentError(f"the {what} must be exactly one certificate")
    return certs[0]


def _pin_of(pem: bytes) -> str:
    try:
        return spki_pin(pem)
    except ConfigError as e:
        raise EnrollmentError("the server sent something that is not a PEM certificate") from e


def _basic_constraints_ca(cert: x509.Certificate) -> bool:
    with contextlib.suppress(x509.ExtensionNotFound):
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    return False


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise EnrollmentError("the server's reply is not JSON") from e
    if not isinstance(data, dict):
        raise EnrollmentError("the server's reply is not a JSON object")
    return data


def _error_message(body: bytes) -> str:
    with contextlib.suppress(EnrollmentError):
        error = _json_object(body).get("error")
        if isinstance(error, str) and error:
            return " ".join(error.split())[:200]
    return "no reason given"


def _line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _write_file(path: Path, data: bytes, mode: int) -> None:
    # O_EXCL with the final mode: a key is never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
