"""Which index keys an update is filed under, and so which bins hold it (pure).

A device looks up the same keys from its inventory (docs/catalog.md, "How a device finds its
updates"); the two sides must agree, so both call ``inventory keys`` through this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from tidings.catalog.layout import (
    Bin,
    CatalogLayout,
    hardware_namespace,
    normalize_hardware_id,
    vendor_role,
)
from tidings.manifest import Kind, UpdateManifest

ANY_ARCH = "any"


@dataclass(frozen=True)
class IndexKey:
    """One key an update is filed under: the family (a kind or vendor role) and the key text."""

    family: str
    key: str


def os_key(product: str, arch: str) -> IndexKey:
    """The key of an OS product on an architecture (``any`` for every architecture)."""
    return IndexKey("os", f"{product.lower()}/{arch.lower()}")


def product_key(kind: Kind, product: str) -> IndexKey:
    """The key of an installed product, for app and definitions updates."""
    family = "definitions" if kind is Kind.DEFINITIONS else "apps"
    return IndexKey(family, product.lower())


def store_key(package: str) -> IndexKey:
    """The key of a store package family name."""
    return IndexKey("store", package.lower())


def hardware_key(hardware_id: str) -> IndexKey:
    """The key of one hardware or compatible ID, in its vendor's family."""
    normalized = normalize_hardware_id(hardware_id)
    return IndexKey(vendor_role(hardware_namespace(normalized)), normalized)


def index_keys(manifest: UpdateManifest) -> list[IndexKey]:
    """Every key ``manifest`` is filed under, most specific first, without duplicates."""
    rules = manifest.applicability
    keys: list[IndexKey] = []
    if manifest.kind is Kind.OS and rules.os is not None:
        archs = rules.os.architectures or (ANY_ARCH,)
        keys += [os_key(rules.os.product, arch) for arch in archs]
    elif manifest.kind in (Kind.APP, Kind.DEFINITIONS):
        products = [*manifest.products, *(rule.product for rule in rules.installed)]
        keys += [product_key(manifest.kind, p) for p in products]
    elif manifest.kind is Kind.STORE and rules.store is not None:
        keys.append(store_key(rules.store.package))
    elif manifest.kind is Kind.DRIVER and rules.driver is not None:
        ids = [*rules.driver.hardware_ids, *rules.driver.compatible_ids]
        keys += [hardware_key(hwid) for hwid in ids]
    return list(dict.fromkeys(keys))


def key_text(key: IndexKey) -> str:
    """How a key is written in an entry's signed ``keys`` list: ``family:key``."""
    return f"{key.family}:{key.key}"


def parse_key_text(text: str) -> IndexKey:
    """The key ``key_text`` wrote (families never contain ``:``)."""
    family, _, key = text.partition(":")
    return IndexKey(family, key)


def filing(manifest: UpdateManifest, layout: CatalogLayout) -> dict[Bin, list[str]]:
    """The bins that index ``manifest`` (the first is its home, holding its payloads), each
    with the keys (``key_text``) it is filed under there."""
    filed: dict[Bin, list[str]] = {}
    for key in index_keys(manifest):
        bin_ = layout.family(key.family).bin_for_key(key.key)
        filed.setdefault(bin_, []).append(key_text(key))
    return filed
