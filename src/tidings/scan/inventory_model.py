"""What a device knows about itself: the inventory that decides which updates apply (pure).

Providers (``inventory.py``) read these facts from the machine or from an inventory TOML
file; applicability and the catalog index only ever see these values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from tidings.manifest import Version


@dataclass(frozen=True)
class OsInfo:
    """The operating system."""

    product: str  # e.g. "tidings-os-11" (lower-case product id, as in manifests)
    version: Version  # e.g. 10.0.22631
    build: int  # e.g. 22631
    architecture: str  # "x86", "x64" or "arm64"


@dataclass(frozen=True)
class InstalledProduct:
    """An installed product or app."""

    product: str
    version: Version


@dataclass(frozen=True)
class HardwareDevice:
    """One device node: its IDs, most specific first, and the driver it has now."""

    instance_id: str  # stable per device, e.g. "PCI\\VEN_8086&DEV_46A6\\3&11583659&0&10"
    hardware_ids: tuple[str, ...]  # ordered, most specific first
    compatible_ids: tuple[str, ...] = ()  # ordered, after the hardware IDs
    driver_version: Version | None = None  # installed driver, if any
    driver_date: date | None = None


@dataclass(frozen=True)
class StorePackage:
    """An installed store package."""

    package: str  # package family name, e.g. "Contoso.Notes"
    version: Version


@dataclass(frozen=True)
class Inventory:
    """Everything applicability needs to know about a device."""

    os: OsInfo | None = None
    products: tuple[InstalledProduct, ...] = ()
    devices: tuple[HardwareDevice, ...] = ()
    store: tuple[StorePackage, ...] = ()
    installed_updates: frozenset[str] = field(default_factory=frozenset)  # update ids
