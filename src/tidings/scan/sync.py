"""Catalog sync: from a device's inventory to the verified manifests that might apply to it.

Only the bins the inventory selects are read, and from them only the index documents of the
inventory's own keys (docs/catalog.md, "How a device finds its updates"): for an OS, the keys
``<product>/<arch>`` and ``<product>/any``; for each installed product, its app and
definitions keys; for each store package, its key; for each hardware and compatible ID, its
key in its vendor's family, if that vendor has a role at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tidings.catalog.index import (
    ANY_ARCH,
    IndexKey,
    hardware_key,
    key_text,
    os_key,
    product_key,
    store_key,
)
from tidings.catalog.layout import Bin, Family, bin_family
from tidings.manifest import Kind
from tidings.scan.inventory_model import Inventory
from tidings.trust.catalog_reader import BinEntry, CatalogReader

Progress = Callable[[str, int, int], None]  # (step, done, total)


@dataclass(frozen=True)
class SyncResult:
    """What a sync found and what it cost."""

    entries: tuple[BinEntry, ...]  # one per (update id), the highest revision seen
    warnings: tuple[str, ...]
    bins: tuple[str, ...]  # bins the inventory selected
    bins_verified: tuple[str, ...]  # bins verified (and downloaded if changed) this time
    documents_fetched: tuple[str, ...]  # index documents downloaded this time


def inventory_keys(inventory: Inventory) -> list[IndexKey]:
    """The index keys a device looks up, in a stable order, without duplicates."""
    keys: list[IndexKey] = []
    if inventory.os is not None:
        keys += [
            os_key(inventory.os.product, inventory.os.architecture),
            os_key(inventory.os.product, ANY_ARCH),
        ]
    for product in inventory.products:
        keys += [
            product_key(Kind.APP, product.product),
            product_key(Kind.DEFINITIONS, product.product),
        ]
    keys += [store_key(p.package) for p in inventory.store]
    for device in inventory.devices:
        keys += [hardware_key(i) for i in (*device.hardware_ids, *device.compatible_ids)]
    return list(dict.fromkeys(keys))


def sync_catalog(
    reader: CatalogReader, inventory: Inventory, *, progress: Progress | None = None
) -> SyncResult:
    """Refresh the catalog and read every bin the inventory selects.

    Raises:
        IntegrityError: any metadata failed verification (nothing from it is used).
        TransportError: the service could not be reached.
    """
    report = progress or (lambda step, done, total: None)
    report("metadata", 0, 1)
    reader.refresh()
    report("metadata", 1, 1)
    selected = _selected_bins(reader, inventory_keys(inventory))
    found: list[BinEntry] = []
    warnings: list[str] = []
    for done, (bin_, keys) in enumerate(selected, 1):
        entries, problems = reader.bin_entries(bin_, keys)
        warnings += problems
        found += entries
        report("indexes", done, len(selected))
    best, conflicts = newest_per_update(found)
    reader.forget_unused()
    return SyncResult(
        tuple(best),
        tuple(dict.fromkeys([*warnings, *conflicts])),
        tuple(b.role for b, _ in selected),
        tuple(reader.bins_fetched),
        tuple(reader.documents_fetched),
    )


def newest_per_update(entries: list[BinEntry]) -> tuple[list[BinEntry], list[str]]:
    """One entry per update id: its newest revision.

    Only one signer may speak for an update: if roles of different families (two driver
    vendors) offer different manifests under one id, a vendor could replace another's driver
    with a "newer revision", so the id is dropped with a warning instead.
    """
    best: dict[str, BinEntry] = {}
    families: dict[str, BinEntry] = {}
    conflicts: dict[str, str] = {}
    for entry in entries:
        uid = entry.manifest.id
        first = families.setdefault(uid, entry)
        if (
            first is not entry
            and first.role != entry.role
            and bin_family(first.role) != bin_family(entry.role)
            and first.manifest != entry.manifest
        ):
            conflicts[uid] = (
                f"update {uid} is offered differently by {first.role} and {entry.role}: ignored"
            )
        seen = best.get(uid)
        if seen is None or entry.manifest.revision > seen.manifest.revision:
            best[uid] = entry
    return [e for uid, e in best.items() if uid not in conflicts], list(conflicts.values())


def _selected_bins(reader: CatalogReader, keys: list[IndexKey]) -> list[tuple[Bin, list[str]]]:
    """The bins that index ``keys``, each with the keys (``key_text``) to read from it."""
    top = reader.top_targets()
    kind_roles = set(reader.delegated_roles(top))
    families: dict[str, Family | None] = {}
    vendors: set[str] | None = None
    selected: dict[str, tuple[Bin, list[str]]] = {}
    for key in keys:
        if key.family not in families:
            if key.family.startswith("vendor."):
                if vendors is None:
                    drivers = reader.role("drivers", "targets") if "drivers" in kind_roles else None
                    vendors = set(reader.delegated_roles(drivers)) if drivers else set()
                families[key.family] = (
                    reader.family(key.family, "drivers") if key.family in vendors else None
                )
            else:
                families[key.family] = (
                    reader.family(key.family, "targets") if key.family in kind_roles else None
                )
        family = families[key.family]
        if family is not None:
            bin_ = family.bin_for_key(key.key)
            selected.setdefault(bin_.role, (bin_, []))[1].append(key_text(key))
    return [selected[name] for name in sorted(selected)]
