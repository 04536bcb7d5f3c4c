"""TLS to the update service: trust only the pinned CA, and only the service's certificate.

A device trusts one CA (pinned at enrollment) for the service and for its peers, so a chain to
that CA proves only "enrolled by this service". ``service_tls_context`` also checks the role
during the handshake (``wire.identity.check_service_certificate``): a device certificate is
refused before a single byte of HTTP is sent, even if it names the host the device dials.
Python's ``ssl`` already refuses a server leaf whose extended key usage lacks serverAuth; the
role check adds the service's name, which no device certificate can carry.

``untrusted_server_detail`` tells, from an exception chain, whether a connection failed on
the server's certificate, so callers raise the one ``UntrustedServerError`` for it.
"""

from __future__ import annotations

import ssl

from cryptography import x509

from tidings.wire.identity import RoleError, check_service_certificate

_MAX_CAUSES = 10  # exception chains are short; bound the walk anyway


class NotTheServiceError(ssl.SSLCertVerificationError):
    """The server's certificate chains to the pinned CA but is not the update service's."""


def service_tls_context(ca_pem: bytes) -> ssl.SSLContext:
    """A TLS client context for the update service.

    Trusts ``ca_pem`` only (not the system store), TLS 1.2 or later, checks the host name,
    and refuses any certificate that is not the service's (``NotTheServiceError``).

    Raises:
        ssl.SSLError: ``ca_pem`` is not a usable CA certificate.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_pem.decode("ascii"))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.sslsocket_class = _ServiceSocket
    context.sslobject_class = _ServiceObject
    return context


def untrusted_server_detail(error: BaseException) -> str | None:
    """Why the server's certificate was refused, if that is what ``error`` comes from."""
    seen: BaseException | None = error
    for _ in range(_MAX_CAUSES):
        if seen is None:
            return None
        if isinstance(seen, NotTheServiceError):
            return str(seen.args[0]) if seen.args else "not the update service"
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or seen.reason or "certificate verify failed"
        seen = seen.__cause__ or seen.__context__
    return None


def _check_peer(der: bytes | None) -> None:
    if der is None:
        raise NotTheServiceError("the server presented no certificate")
    try:
        check_service_certificate(x509.load_der_x509_certificate(der))
    except (RoleError, ValueError) as e:
        raise NotTheServiceError(str(e)) from None


class _ServiceSocket(ssl.SSLSocket):
    """Blocking TLS (httpx's sync transport): the role is checked as the handshake ends."""

    def do_handshake(self, block: bool = False) -> None:
        super().do_handshake(block)
        _check_peer(self.getpeercert(binary_form=True))


class _ServiceObject(ssl.SSLObject):
    """Non-blocking TLS (asyncio, anyio): the same check once the handshake completes."""

    def do_handshake(self) -> None:
        super().do_handshake()
        _check_peer(self.getpeercert(binary_form=True))
