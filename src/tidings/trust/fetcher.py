"""A python-tuf fetcher on httpx: our CA only, a total deadline, a minimum rate, size caps.

docs/architecture.md, "Trust model": python-tuf's built-in fetcher has no total deadline
(slow retrieval) and no pinning, so every Tidings client downloads through this one. Errors are
translated at this edge into python-tuf's download errors (which the Updater expects) chained to
ours, with one exception: a server whose certificate is refused (not from the pinned CA, not the
update service's) raises ``UntrustedServerError`` itself, a security event rather than a
download to retry. It is raised while the download is iterated, where python-tuf lets it
through untouched (``tests/trust/test_untrusted_server.py`` fails if that changes).
"""

from __future__ import annotations

import hmac
import ssl
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from tuf.api import exceptions as tuf_exceptions
from tuf.ngclient.fetcher import FetcherInterface

from tidings.clock import Clock, SystemClock
from tidings.errors import DeadlineError, IntegrityError, TidingsError, UntrustedServerError
from tidings.trust.deadline import Deadline, deadline_transport
from tidings.trust.service_tls import service_tls_context, untrusted_server_detail


@dataclass(frozen=True)
class FetcherConfig:
    """Limits of every download."""

    connect_timeout_s: float = 10.0  # seconds to establish a connection
    read_timeout_s: float = 30.0  # seconds without any byte before giving up
    total_deadline_s: float = 600.0  # seconds for one whole download
    min_rate_bytes_s: int = 1024  # bytes/second averaged, checked after the grace period
    min_rate_grace_s: float = 10.0  # seconds before the minimum rate applies
    max_bytes: int = 64 * 1024**3  # bytes: the hard cap whatever the caller asks
    user_agent: str = "tidings/0.1"


def system_proxy(url: str) -> str | None:
    """The system's proxy for ``url`` (environment settings on Linux), or None.

    Only the proxy is taken from the environment: httpx's ``trust_env`` would also read
    ``.netrc`` credentials and certificate bundles, which must not affect a pinned client.
    """
    host = urllib.parse.urlsplit(url).hostname or ""
    if not host or urllib.request.proxy_bypass(host):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(urllib.parse.urlsplit(url).scheme) or proxies.get("all")


def pinned_ssl_context(ca_file: Path) -> ssl.SSLContext:
    """A TLS client context that trusts only the service's CA and only the service's certificate.

    See ``trust/service_tls.py``: a device's certificate, though issued by the same CA, is
    refused during the handshake.

    Raises:
        IntegrityError: ``ca_file`` cannot be read or is not a CA certificate.
    """
    try:
        return service_tls_context(ca_file.read_bytes()[:65_536])
    except (OSError, ssl.SSLError, UnicodeDecodeError) as e:
        raise IntegrityError(f"cannot use the pinned CA {ca_file}: {e}") from e


class HttpxFetcher(FetcherInterface):
    """Downloads for python-tuf's Updater with deadlines; HTTPS only unless ``allow_http``."""

    def __init__(
        self,
        *,
        ca_file: Path | None = None,
        pin: str | None = None,
        base_url: str = "",
        config: FetcherConfig | None = None,
        clock: Clock | None = None,
        allow_http: bool = False,
    ) -> None:
        self.config = config or FetcherConfig()
        self.clock = clock or SystemClock()
        self.allow_http = allow_http
        if pin is not None:
            _check_pin(ca_file, pin)
        verify: ssl.SSLContext | bool = pinned_ssl_context(ca_file) if ca_file else True
        timeout = httpx.Timeout(self.config.read_timeout_s, connect=self.config.connect_timeout_s)
        self._deadline = Deadline()
        proxy = system_proxy(base_url) if base_url else None
        self._client = httpx.Client(
            transport=deadline_transport(self._deadline, verify=verify, proxy=proxy),
            timeout=timeout,
            trust_env=False,
            follow_redirects=False,
            headers={"User-Agent": self.config.user_agent, "Accept-Encoding": "gzip"},
        )
        self.bytes_received = 0  # bytes, over the fetcher's life

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _fetch(self, url: str) -> Iterator[bytes]:
        if not (url.startswith("https://") or (self.allow_http and url.startswith("http://"))):
            raise tuf_exceptions.DownloadError(f"refusing a non-HTTPS URL: {url}")
        # The deadline covers the whole exchange, headers included (trust/deadline.py).
        self._deadline.start(self.config.total_deadline_s)
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise tuf_exceptions.DownloadHTTPError(
                        f"HTTP {response.status_code} for {url}", response.status_code
                    )
                yield from decoded(self._bounded(response, url), response, url)
        except httpx.TimeoutException as e:
            if self._deadline.expired:
                raise _slow(url, f"exceeded the {self.config.total_deadline_s:g} s deadline") from e
            waited = (
                self.config.connect_timeout_s
                if isinstance(e, httpx.ConnectTimeout)
                else self.config.read_timeout_s
            )
            raise tuf_exceptions.DownloadError(
                f"cannot download {url}: the service did not answer within {waited:g} s: "
                "check the address and that the update service is running"
            ) from e
        except httpx.HTTPError as e:
            detail = untrusted_server_detail(e)
            if detail is not None:
                raise UntrustedServerError(url, detail) from e
            raise tuf_exceptions.DownloadError(f"cannot download {url}: {e}") from e
        finally:
            self._deadline.clear()

    def _bounded(self, response: httpx.Response, url: str) -> Iterator[bytes]:
        cfg = self.config
        start = self.clock.monotonic()
        received = 0
        for chunk in response.iter_raw():
            received += len(chunk)
            self.bytes_received += len(chunk)
            if received > cfg.max_bytes:
                raise tuf_exceptions.DownloadLengthMismatchError(f"{url}: more than cap")
            elapsed = self.clock.monotonic() - start
            if elapsed > cfg.total_deadline_s:
                raise _slow(url, f"exceeded the {cfg.total_deadline_s:g} s deadline")
            if elapsed > cfg.min_rate_grace_s and received / elapsed < cfg.min_rate_bytes_s:
                raise _slow(url, f"slower than {cfg.min_rate_bytes_s} bytes/s")
            yield chunk


DECODE_STEP = 65_536  # bytes of output per decompression step: a gzip bomb stays bounded


def decoded(chunks: Iterator[bytes], response: httpx.Response, url: str) -> Iterator[bytes]:
    """The response body as signed: gzip undone step by step, never more than a step at once.

    python-tuf counts these decoded bytes against the signed length, so an endless or
    bomb-like body is cut off as soon as it exceeds what the metadata allows.
    """
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        yield from chunks
        return
    if encoding != "gzip":
        raise tuf_exceptions.DownloadError(f"{url}: unsupported content encoding {encoding!r}")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        for chunk in chunks:
            data = inflater.decompress(chunk, DECODE_STEP)
            while True:
                if data:
                    yield data
                if not inflater.unconsumed_tail:
                    break
                data = inflater.decompress(inflater.unconsumed_tail, DECODE_STEP)
        if not inflater.eof:
            raise tuf_exceptions.DownloadError(f"{url}: truncated gzip body")
    except zlib.error as e:
        raise tuf_exceptions.DownloadError(f"{url}: bad gzip body ({e})") from e


def _check_pin(ca_file: Path | None, pin: str) -> None:
    from tidings.service.tls import spki_pin  # the one definition of our pin format

    if ca_file is None:
        raise IntegrityError("a pin needs the pinned CA certificate")
    try:
        actual = spki_pin(ca_file.read_bytes()[:65_536])
    except (OSError, TidingsError) as e:
        raise IntegrityError(f"cannot read the pinned CA {ca_file}: {e}") from e
    if not hmac.compare_digest(actual, pin):
        raise IntegrityError(f"{ca_file} does not match the enrolled pin {pin}")


def _slow(url: str, why: str) -> tuf_exceptions.SlowRetrievalError:
    error = tuf_exceptions.SlowRetrievalError(f"{url}: {why}")
    error.__cause__ = DeadlineError(f"{url}: {why}")
    return error
