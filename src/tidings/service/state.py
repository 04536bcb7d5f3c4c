"""The service's dynamic state (docs/architecture.md, "Scale principles"): enrollment tokens and
enrolled devices.

A small repository over SQLAlchemy Core, so the embedded SQLite default
(``sqlite:///DATA_DIR/service.db``) and PostgreSQL for replicas differ only by URL
(``postgresql://USER@HOST/DB`` uses psycopg 3, a dependency of Tidings).

Invariants:

- A token is never stored, only its SHA-256 (hex): a copy of the database enrolls nobody.
- Redemption is one conditional ``UPDATE ... WHERE uses_left > 0`` whose row count decides:
  concurrent enrollments cannot spend a single-use token twice, on any backend.
- Spending the token, issuing the certificate and recording the device are one transaction:
  if issuance fails, the token is not spent and no device is recorded.
- Times are timezone-aware UTC, taken from the injected ``Clock``.
- A token's id (``token_id``) is the first 16 hex digits of its stored hash: stable, shown
  and typed by administrators, and useless for enrolling (the token is 256 random bits).
- Revoking a token is setting ``revoked`` (redemption checks it in its conditional update);
  revoking a device is a row in ``device_revocations`` with its time, which
  ``check_device_certificate`` consults for everything that authenticates devices.
- Schema changes are additive, new tables only, which ``ServiceState.open`` creates in a
  database made by an earlier version (``create_all`` skips existing tables); a change to
  an existing table would need a migration step in ``open``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    create_engine,
    false,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.exc import IntegrityError as DuplicateRowError

from tidings.clock import Clock
from tidings.errors import ConfigError, EnrollmentError, UntrustedDeviceError
from tidings.wire.identity import RoleError, device_id_of

TOKEN_PREFIX = "tdt_"  # noqa: S105 - a recognizable prefix, not a secret
MAX_TOKEN_CHARS = 128  # characters; ours are 47
TOKEN_ID_CHARS = 16  # hex digits of the token's hash that name it
MAX_TOKEN_LIFETIME = timedelta(days=365)
MAX_HOSTNAME_CHARS = 253  # characters, a DNS name
SQLITE_BUSY_TIMEOUT_S = 30.0  # seconds a writer waits for another one (concurrent enrollments)
DATABASE_FILE = "service.db"

# Refusal reasons, sent to the device as-is: they tell an administrator what to fix, and say
# nothing an attacker without a valid token could use.
REFUSED_UNKNOWN = "unknown token"
REFUSED_EXPIRED = "token expired"
REFUSED_USED_UP = "token used up"
REFUSED_REVOKED = "token revoked"

_URL_FORMS = "use sqlite:///PATH or postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
_GROUP = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_TOKEN_ID = re.compile(rf"[0-9a-f]{{{TOKEN_ID_CHARS},64}}")
_LIFETIME = re.compile(r"([1-9][0-9]{0,6})([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}  # seconds

_metadata = MetaData()
enrollment_tokens = Table(
    "enrollment_tokens",
    _metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256 hex of the token
    Column("group_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("uses_left", Integer, nullable=True),  # NULL: unlimited
    Column("uses", Integer, nullable=False),  # successful redemptions so far
    Column("revoked", Boolean, nullable=False),
)
devices = Table(
    "devices",
    _metadata,
    Column("device_id", String(64), primary_key=True),  # also the certificate's CN
    Column("group_id", String(64), nullable=False, index=True),
    Column("hostname", String(MAX_HOSTNAME_CHARS), nullable=True),  # as reported: untrusted
    Column("cert_serial", String(40), nullable=False),  # hex
    Column("cert_sha256", String(64), nullable=False),  # hex, of the DER certificate
    Column("enrolled_at", DateTime(timezone=True), nullable=False),
)
device_revocations = Table(  # added after the first release: a new table, no migration
    "device_revocations",
    _metadata,
    Column("device_id", String(64), primary_key=True),
    Column("revoked_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class IssuedToken:
    """A token just created. ``token`` is shown once and never stored."""

    token: str
    group_id: str
    expires_at: datetime
    uses: int | None  # None: unlimited

    @property
    def token_id(self) -> str:
        """The token's stable, non-secret id (for listing and revoking)."""
        return token_id_of(hash_token(self.token))


@dataclass(frozen=True)
class TokenRecord:
    """A stored token, as administrators see it: never the token itself."""

    token_id: str
    group_id: str
    created_at: datetime
    expires_at: datetime
    uses: int  # successful enrollments so far
    uses_left: int | None  # None: unlimited
    revoked: bool

    def status(self, now: datetime) -> str:
        """``revoked``, ``expired``, ``used up`` or ``active`` at ``now``."""
        if self.revoked:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        if self.uses_left is not None and self.uses_left <= 0:
            return "used up"
        return "active"


@dataclass(frozen=True)
class IssuedCertificate:
    """What the issuing callback of ``redeem_token`` returns."""

    pem: bytes
    serial: str  # hex
    sha256: str  # hex, of the DER certificate


@dataclass(frozen=True)
class DeviceRecord:
    """An enrolled device."""

    device_id: str
    group_id: str
    hostname: str | None
    cert_serial: str
    cert_sha256: str
    enrolled_at: datetime
    revoked_at: datetime | None = None  # None: not revoked


def default_database_url(data_dir: Path) -> str:
    """The embedded default: SQLite in ``DATA_DIR/service.db``."""
    return f"sqlite:///{data_dir / DATABASE_FILE}"


def database_url(url: str) -> URL:
    """Parse a database URL; plain ``postgresql://`` (or ``postgres://``) means psycopg 3.

    SQLAlchemy 2.0 maps a bare ``postgresql://`` to psycopg2, which Tidings does not install.

    Raises:
        ConfigError: Not a database URL, or a database SQLAlchemy does not know.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as e:
        raise ConfigError(f"invalid database URL: {_URL_FORMS}") from e
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        parsed.get_dialect()
    except NoSuchModuleError as e:
        shown = parsed.render_as_string(hide_password=True)
        raise ConfigError(f"invalid database URL {shown}: {_URL_FORMS}") from e
    except ImportError:
        pass  # a known dialect without its driver: ``ServiceState.open`` says so
    return parsed


def validate_group(group_id: str) -> str:
    """Return ``group_id`` if it is a valid group name, else raise ``ConfigError``."""
    if not _GROUP.fullmatch(group_id):
        raise ConfigError(
            f"invalid group {group_id!r}: use 1 to 64 of a-z 0-9 . _ - "
            "starting with a letter or digit"
        )
    return group_id


def parse_lifetime(text: str) -> timedelta:
    """Parse ``30m``, ``24h``, ``7d`` (also ``90s``) into a duration of at most a year.

    Raises:
        ConfigError: Not of that form, or longer than ``MAX_TOKEN_LIFETIME``.
    """
    match = _LIFETIME.fullmatch(text.strip())
    if match is None:
        raise ConfigError(f"invalid duration {text!r}: use a number and s, m, h or d (e.g. 24h)")
    lifetime = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    if lifetime > MAX_TOKEN_LIFETIME:
        raise ConfigError(f"duration {text!r} is longer than {MAX_TOKEN_LIFETIME.days} days")
    return lifetime


def hash_token(token: str) -> str:
    """The stored form of a token: SHA-256 hex of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_id_of(token_hash: str) -> str:
    """The id of the token stored as ``token_hash``."""
    return token_hash[:TOKEN_ID_CHARS]


class ServiceState:
    """Tokens and devices in a SQL database. Thread-safe (one connection per operation)."""

    def __init__(self, engine: Engine, *, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    @classmethod
    def open(cls, url: str, *, clock: Clock) -> ServiceState:
        """Connect to ``url`` and create the tables if missing.

        Raises:
            ConfigError: The database cannot be opened or created.
        """
        parsed = database_url(url)
        connect_args = (
            {"timeout": SQLITE_BUSY_TIMEOUT_S} if parsed.get_backend_name() == "sqlite" else {}
        )
        shown = parsed.render_as_string(hide_password=True)
        try:
            engine = create_engine(parsed, connect_args=connect_args)
        except ImportError as e:  # the dialect is known, its driver module is not installed
            raise ConfigError(
                f"no database driver for {shown}: {e.name or e} is not installed"
            ) from e
        except (SQLAlchemyError, ValueError) as e:
            raise ConfigError(f"invalid database URL {shown}: {_first_line(e)}") from e
        try:
            _metadata.create_all(engine)
        except SQLAlchemyError as e:
            engine.dispose()
            raise ConfigError(f"cannot open the service database: {_first_line(e)}") from e
        return cls(engine, clock=clock)

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> ServiceState:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def create_token(
        self, group_id: str, *, lifetime: timedelta, uses: int | None = 1
    ) -> IssuedToken:
        """Create an enrollment token for ``group_id``.

        Args:
            group_id: The group devices enrolling with it join.
            lifetime: How long the token can be redeemed.
            uses: How many enrollments it allows; None for unlimited.

        Raises:
            ConfigError: Invalid group, lifetime or number of uses, or a database failure.
        """
        validate_group(group_id)
        if not timedelta(0) < lifetime <= MAX_TOKEN_LIFETIME:
            raise ConfigError(f"a token lives between 1 s and {MAX_TOKEN_LIFETIME.days} days")
        if uses is not None and uses < 1:
            raise ConfigError(f"uses must be at least 1, not {uses}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock.now()
        row = {
            "token_hash": hash_token(token),
            "group_id": group_id,
            "created_at": now,
            "expires_at": now + lifetime,
            "uses_left": uses,
            "uses": 0,
            "revoked": False,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(enrollment_tokens).values(row))
        except SQLAlchemyError as e:
            raise ConfigError(f"cannot record the token: {_first_line(e)}") from e
        return IssuedToken(token, group_id, now + lifetime, uses)

    def redeem_token(
        self,
        token: str,
        *,
        device_id: str,
        hostname: str | None,
        issue: Callable[[str], IssuedCertificate],
    ) -> DeviceRecord:
        """Spend one use of ``token``, issue the certificate and record the device, atomically.

        Args:
            token: The token the device presented.
            device_id: The new device's id.
            hostname: The name the device reports (informational, untrusted).
            issue: Called with the group id inside the transaction; returns the certificate.
                If it raises, nothing is spent or recorded and the exception propagates.

        Raises:
            EnrollmentError: The token is refused; the message is one of ``REFUSED_UNKNOWN``,
                ``REFUSED_EXPIRED``, ``REFUSED_USED_UP``, ``REFUSED_REVOKED``.
        """
        if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_CHARS:
            raise EnrollmentError(REFUSED_UNKNOWN)
        token_hash = hash_token(token)
        now = self._clock.now()
        t = enrollment_tokens.c
        spend = (
            update(enrollment_tokens)
            .where(
                t.token_hash == token_hash,
                t.revoked == false(),
                t.expires_at > now,
                or_(t.uses_left.is_(None), t.uses_left > 0),
            )
            .values(uses_left=t.uses_left - 1, uses=t.uses + 1)  # NULL - 1 stays NULL
        )
        with self._engine.begin() as conn:
            if conn.execute(spend).rowcount != 1:
                raise EnrollmentError(self._refusal(conn, token_hash, now))
            group_id = conn.execute(
                select(t.group_id).where(t.token_hash == token_hash)
            ).scalar_one()
            cert = issue(group_id)
            record = DeviceRecord(device_id, group_id, hostname, cert.serial, cert.sha256, now)
            row = {c.name: getattr(record, c.name) for c in devices.columns}
            conn.execute(insert(devices).values(row))
        return record

    def device(self, device_id: str) -> DeviceRecord | None:
        """The enrolled device ``device_id`` (with its revocation, if any), or None."""
        with self._engine.connect() as conn:
            row = conn.execute(_devices_query().where(devices.c.device_id == device_id)).first()
        return None if row is None else _device_record(row._asdict())

    def devices(self) -> list[DeviceRecord]:
        """Every enrolled device, revoked ones included, oldest enrollment first."""
        query = _devices_query().order_by(devices.c.enrolled_at, devices.c.device_id)
        with self._engine.connect() as conn:
            return [_device_record(row._asdict()) for row in conn.execute(query)]

    def tokens(self) -> list[TokenRecord]:
        """Every token ever created (by id, never the secret), oldest first."""
        t = enrollment_tokens.c
        query = select(enrollment_tokens).order_by(t.created_at, t.token_hash)
        with self._engine.connect() as conn:
            return [_token_record(row._asdict()) for row in conn.execute(query)]

    def revoke_token(self, token_id: str) -> TokenRecord:
        """Revoke the token whose id is ``token_id``: it enrolls nothing from now on.

        Revoking a revoked token changes nothing. Devices it already enrolled stay enrolled
        (revoke them with ``revoke_device``).

        Args:
            token_id: The id ``tokens()`` lists, or a longer prefix of the token's hash.

        Raises:
            ConfigError: Not an id, no such token, or more than one token has that id.
        """
        if token_id.lower().startswith(TOKEN_PREFIX):  # a secret pasted: never echo it
            raise ConfigError(
                "that looks like a token itself, not its id: "
                "ids are listed by `tidings server tokens`"
            )
        if not _TOKEN_ID.fullmatch(token_id):
            raise ConfigError(
                f"not a token id: {token_id!r} (at least {TOKEN_ID_CHARS} hex digits, "
                "as `tidings server tokens` lists them)"
            )
        t = enrollment_tokens.c
        with self._engine.begin() as conn:
            hashes = conn.execute(
                select(t.token_hash).where(t.token_hash.startswith(token_id)).limit(2)
            ).scalars()
            found = list(hashes)
            if not found:
                raise ConfigError(f"no token with id {token_id}")
            if len(found) > 1:
                raise ConfigError(f"more than one token has id {token_id}: give more digits")
            conn.execute(
                update(enrollment_tokens).where(t.token_hash == found[0]).values(revoked=True)
            )
            row = conn.execute(select(enrollment_tokens).where(t.token_hash == found[0])).one()
        return _token_record(row._asdict())

    def revoke_device(self, device_id: str) -> DeviceRecord:
        """Record that ``device_id`` is revoked, now; ``check_device_certificate`` refuses it.

        Revoking a revoked device keeps the first revocation time.

        Raises:
            ConfigError: No such device.
        """
        if self.device(device_id) is None:
            raise ConfigError(f"no enrolled device {device_id!r}")
        try:
            with self._engine.begin() as conn:
                already = conn.execute(
                    select(device_revocations.c.device_id).where(
                        device_revocations.c.device_id == device_id
                    )
                ).first()
                if already is None:
                    conn.execute(
                        insert(device_revocations).values(
                            device_id=device_id, revoked_at=self._clock.now()
                        )
                    )
        except DuplicateRowError:
            pass  # revoked concurrently by someone else: the first time stands
        record = self.device(device_id)
        assert record is not None  # devices are never deleted
        return record

    def is_device_revoked(self, device_id: str) -> bool:
        """Whether ``device_id`` has been revoked (an unknown device is not "revoked")."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(device_revocations.c.device_id).where(
                    device_revocations.c.device_id == device_id
                )
            ).first()
        return row is not None

    def check_device_certificate(self, cert: x509.Certificate) -> DeviceRecord:
        """Accept ``cert`` as an enrolled, unrevoked device's own certificate.

        For everything that authenticates devices (peer discovery, reports, mutual TLS):
        call it with the client certificate after TLS verified its chain to the service CA.

        Returns:
            The device the certificate belongs to.

        Raises:
            UntrustedDeviceError: Not a device certificate, an unknown device, a revoked
                device, or not the certificate issued to that device at enrollment.
        """
        try:
            device_id = device_id_of(cert)
        except RoleError as e:
            raise UntrustedDeviceError(f"refused certificate: {e}") from e
        record = self.device(device_id)
        if record is None:
            raise UntrustedDeviceError(f"device {device_id} is not enrolled")
        if record.revoked_at is not None:
            when = record.revoked_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            raise UntrustedDeviceError(f"device {device_id} was revoked at {when}")
        der = cert.public_bytes(serialization.Encoding.DER)
        if hashlib.sha256(der).hexdigest() != record.cert_sha256:
            raise UntrustedDeviceError(
                f"not the certificate issued to device {device_id} at enrollment"
            )
        return record

    def _refusal(self, conn: Connection, token_hash: str, now: datetime) -> str:
        t = enrollment_tokens.c
        row = conn.execute(
            select(t.expires_at, t.uses_left, t.revoked).where(t.token_hash == token_hash)
        ).first()
        if row is None:
            return REFUSED_UNKNOWN
        if row.revoked:
            return REFUSED_REVOKED
        if _utc(row.expires_at) <= now:
            return REFUSED_EXPIRED
        return REFUSED_USED_UP


def _devices_query() -> Select[Any]:
    return select(devices, device_revocations.c.revoked_at).outerjoin(
        device_revocations, device_revocations.c.device_id == devices.c.device_id
    )


def _device_record(fields: dict[str, Any]) -> DeviceRecord:
    fields["enrolled_at"] = _utc(fields["enrolled_at"])
    if fields["revoked_at"] is not None:
        fields["revoked_at"] = _utc(fields["revoked_at"])
    return DeviceRecord(**fields)


def _token_record(fields: dict[str, Any]) -> TokenRecord:
    return TokenRecord(
        token_id=token_id_of(fields["token_hash"]),
        group_id=fields["group_id"],
        created_at=_utc(fields["created_at"]),
        expires_at=_utc(fields["expires_at"]),
        uses=fields["uses"],
        uses_left=fields["uses_left"],
        revoked=bool(fields["revoked"]),
    )


def _utc(value: datetime) -> datetime:
    # SQLite keeps no time zone: every value we write is UTC, so naive means UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
