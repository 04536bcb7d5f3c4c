"""The agent's state directory: the device's identity and what it trusts.

Layout (written once, atomically, by ``enroll.py``; read by ``AgentState.load``)::

    STATE_DIR/                 mode 0700
      device.json              {"device_id", "group_id", "server", "pin", "enrolled_at"}
      trust/root.json          the bootstrap TUF root, verified (self-signed) at enrollment
      trust/ca.pem             the service CA, matched against the pin at enrollment
      device/key.pem           the device's ECDSA P-256 key, PKCS#8, mode 0600
      device/cert.pem          the device certificate issued by that CA (CN = device id)

Invariants: every read is bounded; a state directory that does not hold together (missing
file, key not matching its certificate, certificate for another device) is refused with one
line naming the file, never half-used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from tidings import fsutil
from tidings.errors import ConfigError, EnrollmentError

IDENTITY_FILE = Path("device.json")
ROOT_FILE = Path("trust/root.json")
CA_FILE = Path("trust/ca.pem")
KEY_FILE = Path("device/key.pem")
CERT_FILE = Path("device/cert.pem")

MAX_IDENTITY_BYTES = 65_536  # bytes
MAX_PEM_BYTES = 65_536  # bytes
MAX_ROOT_BYTES = 1_048_576  # bytes

_IDENTITY_FIELDS = ("device_id", "group_id", "server", "pin", "enrolled_at")


@dataclass(frozen=True)
class DeviceIdentity:
    """Who this device is, in which group, enrolled with which service and pin."""

    device_id: str
    group_id: str
    server: str
    pin: str
    enrolled_at: datetime

    def to_json(self) -> bytes:
        """The contents of ``device.json``."""
        data = {f: getattr(self, f) for f in _IDENTITY_FIELDS}
        data["enrolled_at"] = self.enrolled_at.isoformat()
        return json.dumps(data, indent=2, sort_keys=True).encode("utf-8") + b"\n"

    @classmethod
    def from_json(cls, data: bytes, *, source: str) -> DeviceIdentity:
        """Parse ``device.json``.

        Raises:
            ConfigError: Not a JSON object with the five string fields and an ISO time.
        """
        try:
            obj: Any = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise ConfigError(f"{source}: not JSON ({e})") from e
        if not isinstance(obj, dict):
            raise ConfigError(f"{source}: not a JSON object")
        for field in _IDENTITY_FIELDS:
            if not isinstance(obj.get(field), str) or not obj[field]:
                raise ConfigError(f"{source}: {field} missing or not a string")
        try:
            enrolled_at = datetime.fromisoformat(obj["enrolled_at"])
        except ValueError as e:
            raise ConfigError(f"{source}: enrolled_at is not an ISO 8601 time") from e
        return cls(
            device_id=obj["device_id"],
            group_id=obj["group_id"],
            server=obj["server"],
            pin=obj["pin"],
            enrolled_at=enrolled_at,
        )


@dataclass(frozen=True)
class AgentState:
    """An enrolled device's state directory, checked to hold together."""

    state_dir: Path
    identity: DeviceIdentity

    @property
    def root_path(self) -> Path:
        """The bootstrap TUF root (``Updater(bootstrap=...)``)."""
        return self.state_dir / ROOT_FILE

    @property
    def ca_path(self) -> Path:
        """The pinned service CA: the only anchor for TLS to the service and to peers."""
        return self.state_dir / CA_FILE

    @property
    def key_path(self) -> Path:
        """The device's private key (mode 0600)."""
        return self.state_dir / KEY_FILE

    @property
    def cert_path(self) -> Path:
        """The device certificate, for mutual TLS with peers and the service."""
        return self.state_dir / CERT_FILE

    @classmethod
    def load(cls, state_dir: Path) -> AgentState:
        """Read and cross-check the state directory written by enrollment.

        Raises:
            EnrollmentError: ``state_dir`` holds no enrollment.
            ConfigError: A file is missing, too large, unreadable or inconsistent.
        """
        if not (state_dir / IDENTITY_FILE).is_file():
            raise EnrollmentError(
                f"{state_dir} is not enrolled: run `tidings agent enroll {state_dir} ...` first"
            )
        identity = DeviceIdentity.from_json(
            read_bounded(state_dir / IDENTITY_FILE, MAX_IDENTITY_BYTES),
            source=str(state_dir / IDENTITY_FILE),
        )
        state = cls(state_dir, identity)
        read_bounded(state.root_path, MAX_ROOT_BYTES)
        _load_cert(state.ca_path)
        cert = _load_cert(state.cert_path)
        try:
            key = serialization.load_pem_private_key(
                read_bounded(state.key_path, MAX_PEM_BYTES), password=None
            )
        except (ValueError, TypeError, UnsupportedAlgorithm) as e:
            raise ConfigError(f"{state.key_path}: not a PEM private key") from e
        if key.public_key() != cert.public_key():
            raise ConfigError(f"{state.key_path} is not the key of {state.cert_path}")
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if [n.value for n in names] != [identity.device_id]:
            raise ConfigError(f"{state.cert_path} is not the certificate of {identity.device_id}")
        return state


def read_bounded(path: Path, limit: int) -> bytes:
    """Read ``path``, refusing more than ``limit`` bytes.

    Raises:
        ConfigError: Missing, unreadable or larger than ``limit``.
    """
    try:
        return fsutil.read_bounded(path, limit)
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from e
    except fsutil.TooLargeError as e:
        raise ConfigError(str(e)) from e


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(read_bounded(path, MAX_PEM_BYTES))
    except ValueError as e:
        raise ConfigError(f"{path}: not a PEM certificate") from e
