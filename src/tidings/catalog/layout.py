"""The catalog's role layout and index: which signed role holds which update (pure).

DESIGN.md §2 and §3, documented in docs/catalog.md. Invariants:

* ``targets`` delegates one *terminating* role per kind: ``os``, ``apps``, ``drivers``,
  ``definitions``, ``store``.
* Each kind role (and each driver vendor role) delegates its *bins*. A bin is picked from an
  *index key* (what a device knows about itself: its OS product and architecture, an installed
  product, a hardware ID, a package name) and, where a key holds many updates, from the update
  id. A device therefore finds every update relevant to one inventory item in
  ``family.id_bins`` known roles, without enumerating the catalog.
* ``drivers`` is sub-delegated per hardware vendor namespace (``pci-8086``, ``usb-046d``):
  a vendor's key can only sign drivers for its own hardware IDs; TUF's path patterns enforce it.
* Every target path has a fixed depth per family, because TUF's ``*`` does not cross ``/``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from tidings.manifest import Kind

KIND_ROLES: tuple[str, ...] = ("os", "apps", "drivers", "definitions", "store")
"""Top-level delegated roles, one per publisher kind (DESIGN.md §2)."""

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
BINS_FIELD = "x-tidings-bins"
"""Signed field of a family role: ``[key_bins, id_bins]``, so devices need no other config."""
_NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_VENDOR_ID_RE = re.compile(r"(?:VEN|VID)_([0-9A-Za-z]{1,8})")


@dataclass(frozen=True)
class BinCounts:
    """How many bins each family has: ``key_bins`` by index key times ``id_bins`` by update id.

    More key bins make each bin smaller (cheaper incremental publish and scan) but make the
    snapshot longer (every scan pays for it); more id bins split one busy key (an OS product with
    thousands of updates) at the price of more requests in a cold scan. Powers of two, <= 256.
    """

    os: tuple[int, int] = (16, 8)
    apps: tuple[int, int] = (64, 1)
    definitions: tuple[int, int] = (4, 4)
    store: tuple[int, int] = (64, 1)
    vendor: tuple[int, int] = (4, 1)

    def for_family(self, family: str) -> tuple[int, int]:
        """Bin counts of a kind role or of any vendor role (``vendor.*``)."""
        if family.startswith(VENDOR_PREFIX):
            return self.vendor
        counts: tuple[int, int] = getattr(self, family)
        return counts


@dataclass(frozen=True)
class Bin:
    """One leaf role of the catalog: its name and the directory of its target paths."""

    role: str  # e.g. "os.0a.3" or "vendor.pci-8086.2.0"
    directory: str  # e.g. "os/0a/3" or "drivers/pci-8086/2/0"
    family: str  # the delegating role: "os" or "vendor.pci-8086"


@dataclass(frozen=True)
class Family:
    """A role that delegates bins: a kind role, or a driver vendor role."""

    role: str  # "os", "apps", "definitions", "store" or "vendor.<namespace>"
    path_prefix: str  # "os" or "drivers/<namespace>"
    key_bins: int
    id_bins: int

    def bin(self, key_bin: int, id_bin: int) -> Bin:
        """The bin at (key_bin, id_bin)."""
        kb, ib = f"{key_bin:02x}", f"{id_bin:x}"
        return Bin(f"{self.role}.{kb}.{ib}", f"{self.path_prefix}/{kb}/{ib}", self.role)

    def bins(self) -> list[Bin]:
        """Every bin of the family, in a stable order."""
        return [self.bin(k, i) for k in range(self.key_bins) for i in range(self.id_bins)]

    def bins_for_key(self, key: str) -> list[Bin]:
        """The bins a device fetches to see every update indexed under ``key``."""
        kb = _bucket(key, self.key_bins)
        return [self.bin(kb, i) for i in range(self.id_bins)]

    def bin_for(self, key: str, update_id: str) -> Bin:
        """The one bin that holds ``update_id``'s entry for ``key``."""
        return self.bin(_bucket(key, self.key_bins), _bucket(update_id, self.id_bins))

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
        key_bins, id_bins = self.counts.for_family(role) if _is_family(role) else (0, 0)
        return family_of(role, key_bins, id_bins)

    def kind_paths(self, kind_role: str) -> list[str]:
        """The path patterns ``targets`` delegates to a kind role."""
        if kind_role == "drivers":
            return ["drivers/*/*/*/*"]
        return [f"{kind_role}/*/*/*"]

    def vendor_paths(self, namespace: str) -> list[str]:
        """The path patterns ``drivers`` delegates to one vendor role."""
        return [f"drivers/{namespace}/*/*/*"]


def _is_family(role: str) -> bool:
    return role.startswith(VENDOR_PREFIX) or (role in KIND_ROLES and role != "drivers")


def family_of(role: str, key_bins: int, id_bins: int) -> Family:
    """The family ``role`` with the given bin counts (a device reads them from signed metadata).

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
    if not (1 <= key_bins <= MAX_BINS and 1 <= id_bins <= MAX_BINS):
        raise ValueError(f"bin counts of {role!r} out of range: {key_bins} x {id_bins}")
    return Family(role, prefix, key_bins, id_bins)


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


def bin_of_role(role: str, layout: CatalogLayout) -> Bin:
    """The ``Bin`` named ``role`` (``os.0a.3``, ``vendor.pci-8086.02.0``).

    Raises:
        ValueError: ``role`` is not a bin name.
    """
    family, kb, ib = role.rsplit(".", 2) if role.count(".") >= 2 else ("", "", "")
    try:
        return layout.family(family).bin(int(kb, 16), int(ib, 16))
    except ValueError as e:
        raise ValueError(f"{role!r} is not a bin") from e
