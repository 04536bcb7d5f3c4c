"""Certificate roles under the service CA: who is the update service, who is a device. Pure.

One CA issues two kinds of leaf certificates (``service/tls.py``), and a device trusts that
CA for both the service and its peers, so a valid chain alone does not say *who* is talking.
The role is carried by a URI subjectAltName that only the CA chooses, never the requester:

- the update service: ``urn:tidings:service``, extended key usage ``serverAuth`` only;
- a device: ``urn:tidings:device:<device id>`` (and CN = the device id), extended key usage
  ``clientAuth`` and ``serverAuth``. Devices need ``serverAuth`` as well because in mutual
  TLS between peers (docs/architecture.md, "Trust model") the peer that accepts the
  connection is the TLS server, and TLS clients reject a server certificate whose EKU lacks
  ``serverAuth``.

So EKU cannot tell the service from a device; the name does. A device refuses a server
unless its certificate carries ``SERVICE_URI`` (``check_service_certificate``), so an
enrolled device posing as the service fails even when the name it dials is in its
certificate.
"""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICE_URI = "urn:tidings:service"
DEVICE_URI_PREFIX = "urn:tidings:device:"
DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # what a device id may be


class RoleError(ValueError):
    """A certificate is not of the role asked for; the message says why."""


def device_uri(device_id: str) -> str:
    """The URI name of device ``device_id`` in its certificate.

    Raises:
        RoleError: ``device_id`` is not a valid device id.
    """
    if not DEVICE_ID.fullmatch(device_id):
        raise RoleError(f"not a device id: {device_id!r}")
    return DEVICE_URI_PREFIX + device_id


def check_service_certificate(cert: x509.Certificate) -> None:
    """Accept ``cert`` only as the update service's own certificate.

    The chain and the host name are TLS's job; this checks the role: ``serverAuth`` in the
    extended key usage, the ``SERVICE_URI`` name, and no device name.

    Raises:
        RoleError: ``cert`` is not the update service's certificate.
    """
    if ExtendedKeyUsageOID.SERVER_AUTH not in _usages(cert):
        raise RoleError("its certificate is not for TLS servers (no serverAuth usage)")
    uris = _uris(cert)
    if any(uri.startswith(DEVICE_URI_PREFIX) for uri in uris):
        raise RoleError("it presented a device certificate, not the update service's")
    if SERVICE_URI not in uris:
        raise RoleError(f"its certificate does not name the update service ({SERVICE_URI})")


def device_id_of(cert: x509.Certificate) -> str:
    """The device id a device certificate names (URI name and CN must agree).

    Raises:
        RoleError: ``cert`` is not a device certificate.
    """
    if ExtendedKeyUsageOID.CLIENT_AUTH not in _usages(cert):
        raise RoleError("not a device certificate (no clientAuth usage)")
    uris = _uris(cert)
    if SERVICE_URI in uris:
        raise RoleError("the update service's certificate is not a device certificate")
    ids = [uri.removeprefix(DEVICE_URI_PREFIX) for uri in uris if uri.startswith(DEVICE_URI_PREFIX)]
    names = [n.value for n in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if len(ids) != 1 or names != ids or not DEVICE_ID.fullmatch(ids[0]):
        raise RoleError("not a device certificate (its device name and CN do not agree)")
    return ids[0]


def _usages(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return []


def _uris(cert: x509.Certificate) -> list[str]:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return sans.get_values_for_type(x509.UniformResourceIdentifier)
