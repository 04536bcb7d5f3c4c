"""The catalog's role layout and index: which signed role holds which update (pure).

docs/architecture.md ("Trust model", "Scale principles"), documented in docs/catalog.md. Invariants:

* ``targets`` delegates one *terminating* role per kind: ``os``, ``apps``, ``drivers``,
  ``definitions``, ``store``.
* Each kind role (and each driver vendor role) delegates its *bins*. A bin is picked from an
  *index key* (what a device knows about itself: its OS product and architecture, an installed
  product, a hardware ID, a package name). A bin lists, per key, the hash-pinned documents that
  hold that key's updates (``keyindex.py``), so a device finds every update relevant to one
  inventory item in one known role and the few documents it names, without enumerating the
  catalog.
* ``drivers`` is sub-delegated per hardware vendor namespace (``pci-8086``, ``usb-046d``):
  a vendor's key can only sign drivers for its own hardware IDs; TUF's path patterns enforce it.
* Every target path has a fixed depth per family, because TUF's ``*`` does not cross ``/``.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

from tidings.manifest import Kind

KIND_ROLES: tuple[str, ...] = ("os", "apps", "drivers", "definitions", "store")
"""Top-level delegated roles, one per publisher kind (docs/architecture.md, "Trust model")."""

KIND_TO_ROLE: dict[str, str] = {
    "os": "os",
    "app": "apps",
    "driver": "drivers",
    "definitions": "definitions",
    "store": "store",
}
"""Manifest ``kind`` value -> the role that signs updates of that kind."""

ROLE_TO_KIND: dict[str, str] = {role: kind for kind, role in KIND_TO_ROLE.items()}

VENDOR_PREFIX = "vendor."
MAX_BINS = 256
REFERENCE_UPDATES = 100_000  # the catalog size the default bin counts are measured for
BINS_FIELD = "x-tidings-bins"
"""Signed field of a family role: its number of bins, so devices need no other config."""
_NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_BIN_NUMBER_RE = re.compile(r"[0-9a-f]{2}")
_VENDOR_ID_RE = re.compile(r"(?:VEN|VID)_([0-9A-Za-z]{1,8})")


@dataclass(frozen=True)
class BinCounts:
    """How many bins each family has; a key's bin is chosen by the key's hash.

    A bin lists one small entry per document of each of its keys, so more bins make each bin
    smaller (cheaper incremental publish and scan) but make the snapshot longer (every scan
    that sees a change pays for it). Aim for tens of keys per bin. Powers of two, <= 256.
    """

    os: int = 16
    apps: int = 64
    definitions: int = 4
    store: int = 64
    vendor: int = 8

    @classmethod
    def for_catalog(cls, expected_updates: int) -> BinCounts:
        """The counts docs/catalog.md recommends for a catalog of ``expected_updates``.

        The defaults suit up to ~100,000 updates; beyond, each family gets proportionally
        more bins (the nearest power of two, at most 256), so a bin keeps tens of keys.
        """
        factor = max(1, -(-expected_updates // REFERENCE_UPDATES))
        base = cls()

        def scaled(count: int) -> int:
            return min(MAX_BINS, 1 << round(math.log2(count * factor)))

        return cls(
            os=scaled(base.os),
            apps=scaled(base.apps),
            definitions=scaled(base.definitions),
            store=scaled(base.store),
            vendor=scaled(base.vendor),
        )

    def for_family(self, family: str) -> int:
        """Bin count of a kind role or of any vendor role (``vendor.*``)."""
        if family.startswith(VENDOR_PREFIX):
            return self.vendor
        count: int = getattr(self, family)
        return count


@dataclass(frozen=True)
class Bin:
    """One leaf role of the catalog: its name and the directory of its target paths."""

    role: str  # e.g. "os.0a" or "vendor.pci-8086.02"
    directory: str  # e.g. "os/0a" or "drivers/pci-8086/02"
    family: str  # the delegating role: "os" or "vendor.pci-8086"


@dataclass(frozen=True)
class Family:
    """A role that delegates bins: a kind role, or a driver vendor role."""

    role: str  # "os", "apps", "definitions", "store" or "vendor.<namespace>"
    path_prefix: str  # "os" or "drivers/<namespace>"
    bin_count: int

    def bin(self, number: int) -> Bin:
        """The bin numbered ``number``."""
        kb = f"{number:02x}"
        return Bin(f"{self.role}.{kb}", f"{self.path_prefix}/{kb}", self.role)

    def bins(self) -> list[Bin]:
        """Every bin of the family, in a stable order."""
        return [self.bin(n) for n in range(self.bin_count)]

    def bin_for_key(self, key: str) -> Bin:
        """The one bin that indexes ``key``."""
        return self.bin(_bucket(key, self.bin_count))

    def delegated_path(self, bin_: Bin) -> str:
        """The path pattern the family delegates to ``bin_``."""
        return f"{bin_.directory}/*"


def _bucket(text: str, count: int) -> int:
    if count <= 1:
        return 0
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:4], "big") % count


@dataclass(frozen=True)
class CatalogLayout:
    """The role layout of one catalog; stored in the data directory so it never drifts."""

    counts: BinCounts = BinCounts()

    def family(self, role: str) -> Family:
        """The bin family of a kind role or vendor role.

        Raises:
            ValueError: ``role`` delegates no bins (``targets``, ``drivers``) or is unknown.
        """
        count = self.counts.for_family(role) if _is_family(role) else 0
        return family_of(role, count)

    def kind_paths(self, kind_role: str) -> list[str]:
        """The path patterns ``targets`` delegates to a kind role."""
        if kind_role == "drivers":
            return ["drivers/*/*/*"]
        return [f"{kind_role}/*/*"]

    def vendor_paths(self, namespace: str) -> list[str]:
        """The path patterns ``drivers`` delegates to one vendor role."""
        return [f"drivers/{namespace}/*/*"]


def _is_family(role: str) -> bool:
    if role.startswith(VENDOR_PREFIX):
        return bool(_NAMESPACE_RE.match(role[len(VENDOR_PREFIX) :]))
    return role in KIND_ROLES and role != "drivers"


def family_of(role: str, bin_count: int) -> Family:
    """The family ``role`` with ``bin_count`` bins (a device reads it from signed metadata).

    Raises:
        ValueError: ``role`` delegates no bins, or the counts are out of range.
    """
    if role.startswith(VENDOR_PREFIX):
        namespace = role[len(VENDOR_PREFIX) :]
        if not _NAMESPACE_RE.match(namespace):
            raise ValueError(f"bad vendor namespace {namespace!r}")
        prefix = f"drivers/{namespace}"
    elif role in KIND_ROLES and role != "drivers":
        prefix = role
    else:
        raise ValueError(f"role {role!r} has no bins")
    if not 1 <= bin_count <= MAX_BINS:
        raise ValueError(f"bin count of {role!r} out of range: {bin_count}")
    return Family(role, prefix, bin_count)


def family_kind(family: str) -> Kind:
    """The only kind of update a family's bins may hold."""
    if family.startswith(VENDOR_PREFIX):
        return Kind.DRIVER
    return Kind(ROLE_TO_KIND[family])


def vendor_role(namespace: str) -> str:
    """The role name of a driver vendor namespace."""
    return f"{VENDOR_PREFIX}{namespace}"


def hardware_namespace(hardware_id: str) -> str:
    """The vendor namespace of a hardware or compatible ID.

    ``PCI\\VEN_8086&DEV_46A6`` -> ``pci-8086``; ``USB\\VID_046D&PID_C52B`` -> ``usb-046d``;
    an ID without a vendor part (``PCI\\CC_0300``, ``ACPI\\PNP0A08``) -> its bus (``pci``,
    ``acpi``); no bus at all -> ``generic``.
    """
    bus, sep, rest = hardware_id.partition("\\")
    if not sep:
        return "generic"
    bus_name = re.sub(r"[^a-z0-9]", "", bus.lower())[:16] or "generic"
    match = _VENDOR_ID_RE.search(rest)
    if match:
        return f"{bus_name}-{match.group(1).lower()}"
    return bus_name


def normalize_hardware_id(hardware_id: str) -> str:
    """Hardware IDs compare case-insensitively (as Windows does); we index them upper-case."""
    return hardware_id.strip().upper()


def bin_family(role: str) -> str | None:
    """The family of a bin's role name (``os.0a`` -> ``os``), or None for any other role."""
    family, _, number = role.rpartition(".")
    if _BIN_NUMBER_RE.fullmatch(number) and _is_family(family):
        return family
    return None


def bin_of_role(role: str, layout: CatalogLayout) -> Bin:
    """The ``Bin`` named ``role`` (``os.0a``, ``vendor.pci-8086.02``).

    Raises:
        ValueError: ``role`` is not a bin name.
    """
    family = bin_family(role)
    try:
        if family is None:
            raise ValueError(role)
        fam = layout.family(family)
        number = int(role.rpartition(".")[2], 16)
        if number >= fam.bin_count:
            raise ValueError(number)
        return fam.bin(number)
    except ValueError as e:
        raise ValueError(f"{role!r} is not a bin") from e
