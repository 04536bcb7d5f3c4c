"""The one exception tree of Tidings.

Two roots are kept apart, as python-tuf does: an *integrity* failure is a security event
(never retried blindly), a *transport* failure is a network hiccup (retried with backoff).
Everything a user can cause by bad input is a ``UsageError`` with one clear line.

::

    TidingsError
    ├── IntegrityError            bad signature, hash mismatch, rollback, expiry: a security event
    │   ├── HashMismatchError     bytes do not match their signed length or hash
    │   ├── RollbackError         a version older than one already trusted
    │   ├── UntrustedServerError  the server is not the update service the device pinned
    │   └── UntrustedDeviceError  a device certificate is revoked, unknown or not as issued
    ├── TransportError            timeouts, refused connections, HTTP errors: retry with backoff
    │   └── DeadlineError         a download exceeded its total deadline or fell below min rate
    └── UsageError                bad input from a user or publisher; the message says what to fix
        ├── ManifestError         an update manifest is invalid (file, field and problem named)
        ├── CriteriaError         search criteria are invalid (position and problem named)
        ├── PayloadError          a payload file is missing, unreadable or does not match
        ├── KeyStoreError         a signing key is missing, unreadable or the wrong kind
        ├── CatalogError          the catalog on disk is missing, corrupt or in the wrong state
        ├── ConfigError           a data directory or configuration value is wrong
        └── EnrollmentError       a device cannot enroll: wrong pin, refused token, bad reply
"""

from __future__ import annotations


class TidingsError(Exception):
    """Root of every error Tidings raises on purpose."""


class IntegrityError(TidingsError):
    """Bytes or metadata failed verification. A security event: do not retry blindly."""


class HashMismatchError(IntegrityError):
    """Bytes do not match the length or hash that signed metadata gives for them."""


class RollbackError(IntegrityError):
    """Metadata older than what is already trusted was offered."""


UNTRUSTED_SERVER = (
    "the server's certificate is not signed by the pinned CA (or is not the update service's): "
    "verify the pin out of band with the service's administrator, never from the server itself"
)


class UntrustedServerError(IntegrityError):
    """The server could not prove it is the update service the device pinned.

    One security event wherever it happens (enrollment, catalog sync, the conformance client):
    its certificate does not chain to the pinned CA, its CA does not match the pin, the name
    dialed is not in it, or it is a certificate of another role (a device's). The message is
    always ``UNTRUSTED_SERVER``, after the URL and followed by the detail.
    """

    def __init__(self, url: str, detail: str) -> None:
        self.url = url
        self.detail = detail
        super().__init__(f"{url}: {UNTRUSTED_SERVER} ({detail})")


class UntrustedDeviceError(IntegrityError):
    """A device certificate is revoked, unknown to the service or not the one issued."""


class TransportError(TidingsError):
    """The network or a server failed. Safe to retry with backoff."""


class DeadlineError(TransportError):
    """A transfer exceeded its total deadline or fell below its minimum rate."""


class UsageError(TidingsError):
    """Bad input from a user, an administrator or a publisher."""


class ManifestError(UsageError):
    """An update manifest is invalid. The message names the file, the field and the problem."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source = source
        self.field = field
        self.problem = problem
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {problem}")


class PayloadError(UsageError):
    """A payload file is missing, unreadable, too large or does not match its description."""


class KeyStoreError(UsageError):
    """A signing key is missing, unreadable or of the wrong kind."""


class CatalogError(UsageError):
    """The catalog on disk is missing, damaged, or not in the state an operation needs."""


class ConfigError(UsageError):
    """A data directory or a configuration value is wrong."""


class EnrollmentError(UsageError):
    """A device cannot enroll: the pin does not match, the token is refused, the reply is bad."""


class CriteriaError(UsageError):
    """A search-criteria string is invalid: one line with the position and the problem.

    Attributes:
        position: 0-based character offset into the criteria string.
        problem: what was expected and what was found, without the position.
    """

    def __init__(self, position: int, problem: str) -> None:
        self.position = position
        self.problem = problem
        super().__init__(f"criteria: position {position}: {problem}")
