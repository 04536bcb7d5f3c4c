"""The update manifest as typed values: one update revision (docs/architecture.md).

This module owns the *shape* of a manifest and the ``Version`` type. It holds data only: the
rules that decide whether a manifest is valid (bounds, formats, kind consistency) live in
``tidings.manifest._parse`` and are applied by every way a manifest is made from outside
input (the signed JSON form in ``codec`` and the TOML form in ``authoring``), so a value
produced by those is valid by construction. Code that builds a manifest by hand checks it with
``tidings.manifest.validate_manifest``.

Invariants: every value is immutable (frozen dataclasses, tuples); equality is structural, with
``Version`` comparing numerically (``2.3 == 2.3.0``) while keeping its own text.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from enum import StrEnum

SCHEMA_VERSION = 1
"""The manifest schema this build reads and writes. Devices reject any other value."""

VERSION_MAX_PARTS = 6
VERSION_MAX_PART = 2**32 - 1
_VERSION_RE = re.compile(r"(?:0|[1-9][0-9]{0,9})(?:\.(?:0|[1-9][0-9]{0,9})){0,5}")


class Kind(StrEnum):
    """What an update installs; each kind is published under its own TUF role."""

    OS = "os"
    APP = "app"
    DRIVER = "driver"
    DEFINITIONS = "definitions"
    STORE = "store"


class Classification(StrEnum):
    """The Windows Update classification of an update."""

    SECURITY = "security"
    CRITICAL = "critical"
    UPDATE = "update"
    FEATURE = "feature"
    DRIVER = "driver"
    DEFINITIONS = "definitions"


class Severity(StrEnum):
    """MSRC-style severity rating of the issue an update fixes."""

    CRITICAL = "critical"
    IMPORTANT = "important"
    MODERATE = "moderate"
    LOW = "low"
    UNSPECIFIED = "unspecified"


class Reboot(StrEnum):
    """Whether installing the update needs a restart."""

    NEVER = "never"
    ALWAYS = "always"
    CAN_REQUEST = "can-request"


class Impact(StrEnum):
    """How much the install disturbs the device (``exclusive``: nothing else may install)."""

    NORMAL = "normal"
    MINOR = "minor"
    EXCLUSIVE = "exclusive"


@dataclass(frozen=True, slots=True, eq=False)
class Version:
    """A dotted numeric version such as ``10.0.22631.2428``, ``31.0.101.4502`` or ``2.3``.

    1 to 6 components, each from 0 to 2**32-1, written without leading zeros. Comparison is
    numeric and ignores trailing zeros (``2.3 == 2.3.0 < 2.10``); ``str()`` gives back the text
    exactly as parsed.

    Raises:
        ValueError: from the constructor if ``parts`` is out of those bounds.
    """

    parts: tuple[int, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.parts) <= VERSION_MAX_PARTS:
            raise ValueError(f"a version has 1 to {VERSION_MAX_PARTS} components")
        for part in self.parts:
            if type(part) is not int or not 0 <= part <= VERSION_MAX_PART:
                raise ValueError(f"version components are integers from 0 to {VERSION_MAX_PART}")

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse dotted numeric text.

        Args:
            text: e.g. ``"10.0.22631.2428"``.

        Returns:
            The version; ``str()`` of it equals ``text``.

        Raises:
            ValueError: ``text`` is not 1 to 6 dot-separated decimal numbers (no sign, no
                spaces, no leading zeros) each at most 2**32-1. The message is one line.
        """
        if not isinstance(text, str) or len(text) > 70 or not _VERSION_RE.fullmatch(text):
            shown = json.dumps(text[:70]) if isinstance(text, str) else type(text).__name__
            raise ValueError(
                f"expected a dotted numeric version such as 10.0.22631.2428, got {shown}"
            )
        parts = tuple(int(p) for p in text.split("."))
        for part in parts:
            if part > VERSION_MAX_PART:
                raise ValueError(
                    f"version component {part} is larger than {VERSION_MAX_PART}"
                    f" in {json.dumps(text)}"
                )
        return cls(parts)

    def _key(self) -> tuple[int, ...]:
        parts = self.parts
        end = len(parts)
        while end > 1 and parts[end - 1] == 0:
            end -= 1
        return parts[:end]

    def __str__(self) -> str:
        return ".".join(str(p) for p in self.parts)

    def __repr__(self) -> str:
        return f"Version({str(self)!r})"

    def __hash__(self) -> int:
        return hash(self._key())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __lt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __le__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() <= other._key()

    def __gt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() > other._key()

    def __ge__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() >= other._key()


@dataclass(frozen=True, slots=True)
class OsRule:
    """The operating system the update applies to. Every bound is inclusive.

    ``architectures`` is a subset of ``x86``, ``x64``, ``arm64``; empty means any.
    """

    product: str
    architectures: tuple[str, ...] = ()
    min_version: Version | None = None
    max_version: Version | None = None
    min_build: int | None = None
    max_build: int | None = None


@dataclass(frozen=True, slots=True)
class ProductRule:
    """An installed product or app, optionally within a version range.

    ``min_version`` is inclusive and ``max_version`` is *exclusive*, so ``1.0 <= v < 2.0``
    reads "any 1.x". ``None`` leaves that side open.
    """

    product: str
    min_version: Version | None = None
    max_version: Version | None = None


@dataclass(frozen=True, slots=True)
class DriverRule:
    """The devices a driver applies to and the driver's own version and date.

    ``hardware_ids`` are in order of preference (most specific first); at least one of
    ``hardware_ids`` and ``compatible_ids`` is non-empty.
    """

    hardware_ids: tuple[str, ...]
    compatible_ids: tuple[str, ...]
    version: Version
    date: datetime.date
    driver_class: str = ""
    vendor: str = ""


@dataclass(frozen=True, slots=True)
class StoreRule:
    """A store app: its package family name (e.g. ``Contoso.Notes``) and the version offered."""

    package: str
    version: Version


@dataclass(frozen=True, slots=True)
class Applicability:
    """When the update applies to a device.

    All present parts must hold: the OS rule, every ``installed`` rule, no ``not_installed``
    rule, and the driver/store rule for those kinds.
    """

    os: OsRule | None = None
    installed: tuple[ProductRule, ...] = ()
    not_installed: tuple[ProductRule, ...] = ()
    driver: DriverRule | None = None
    store: StoreRule | None = None


@dataclass(frozen=True, slots=True)
class InstallBehaviour:
    """How installing the update behaves on the device."""

    reboot: Reboot = Reboot.NEVER
    can_uninstall: bool = True
    needs_user_input: bool = False
    impact: Impact = Impact.NORMAL


@dataclass(frozen=True, slots=True)
class Eula:
    """A licence the user must accept before install. Acceptance is device state, not here."""

    text: str


@dataclass(frozen=True, slots=True)
class PayloadFile:
    """The signed description of one payload file, filled in by the publisher.

    ``sha256`` and ``piece_map_sha256`` are 64 lowercase hex digits; sizes are in bytes;
    ``piece_size`` is a power of two from 16 KiB to 16 MiB.
    """

    name: str
    size: int  # bytes
    sha256: str
    piece_size: int  # bytes
    piece_map_sha256: str
    piece_map_size: int  # bytes


@dataclass(frozen=True, slots=True)
class UpdateManifest:
    """The signed description of one update revision (docs/architecture.md, "Names").

    ``id`` is a canonical lowercase UUID; ``supersedes``, ``prerequisites`` and ``bundle`` hold
    other updates' ids. ``payloads`` is empty in an authored manifest until the publisher
    hashes the files, and may stay empty only for a bundle.
    """

    schema: int
    id: str
    revision: int
    kind: Kind
    title: str
    description: str
    classification: Classification
    severity: Severity
    kb: tuple[str, ...]
    cves: tuple[str, ...]
    release_date: datetime.date
    products: tuple[str, ...]
    categories: tuple[str, ...]
    supersedes: tuple[str, ...]
    prerequisites: tuple[str, ...]
    bundle: tuple[str, ...]
    applicability: Applicability
    install: InstallBehaviour
    eula: Eula | None
    payloads: tuple[PayloadFile, ...]

    @property
    def identity(self) -> tuple[str, int]:
        """``(id, revision)``: what names this revision (docs/architecture.md, "Names")."""
        return (self.id, self.revision)
