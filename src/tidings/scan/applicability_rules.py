"""The per-update applicability rules against one inventory (pure).

``InventoryFacts`` indexes an ``Inventory`` once (products and store packages by lower-cased
name) so that each rule costs O(rules of the manifest), whatever the inventory's size. Names
of products, store packages and architectures compare case-insensitively.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass

from tidings.manifest import Kind, OsRule, ProductRule, UpdateManifest, Version
from tidings.scan.inventory_model import Inventory, OsInfo


@dataclass(frozen=True)
class InventoryFacts:
    """An inventory indexed for the rules: versions by lower-cased product / package name."""

    inventory: Inventory
    products: dict[str, tuple[Version, ...]]
    store: dict[str, tuple[Version, ...]]

    @classmethod
    def of(cls, inventory: Inventory) -> InventoryFacts:
        products: dict[str, list[Version]] = defaultdict(list)
        for product in inventory.products:
            products[product.product.lower()].append(product.version)
        store: dict[str, list[Version]] = defaultdict(list)
        for package in inventory.store:
            store[package.package.lower()].append(package.version)
        return cls(
            inventory,
            {k: tuple(v) for k, v in products.items()},
            {k: tuple(v) for k, v in store.items()},
        )


def os_rule_holds(rule: OsRule, os: OsInfo | None) -> bool:
    """The OS is known, the same product, an allowed architecture, within every inclusive bound."""
    if os is None or rule.product.lower() != os.product.lower():
        return False
    if rule.architectures and os.architecture.lower() not in {
        a.lower() for a in rule.architectures
    }:
        return False
    if rule.min_version is not None and os.version < rule.min_version:
        return False
    if rule.max_version is not None and os.version > rule.max_version:
        return False
    if rule.min_build is not None and os.build < rule.min_build:
        return False
    return rule.max_build is None or os.build <= rule.max_build


def product_rule_matches(rule: ProductRule, facts: InventoryFacts) -> bool:
    """Some installed product of that name has ``min_version <= version < max_version``."""
    for version in facts.products.get(rule.product.lower(), ()):
        if rule.min_version is not None and version < rule.min_version:
            continue
        if rule.max_version is not None and version >= rule.max_version:
            continue
        return True
    return False


def installable(m: UpdateManifest, facts: InventoryFacts) -> bool:
    """Every rule of ``m`` that does not depend on other updates or devices holds.

    That is the OS rule, every ``installed`` rule, no ``not_installed`` rule, for an app or a
    definitions update with no ``installed`` rule one of its ``products`` installed (antivirus
    definitions are for the engines a device runs), and for a store update its package
    installed (any version: the store only updates packages a device has). The driver rule is
    judged per device by ``applicability_drivers``.
    """
    rules = m.applicability
    if rules.os is not None and not os_rule_holds(rules.os, facts.inventory.os):
        return False
    if not all(product_rule_matches(r, facts) for r in rules.installed):
        return False
    if any(product_rule_matches(r, facts) for r in rules.not_installed):
        return False
    by_product = m.kind in (Kind.APP, Kind.DEFINITIONS)
    needs_product = by_product and not rules.installed and bool(m.products)
    if needs_product and not any(p.lower() in facts.products for p in m.products):
        return False
    if rules.store is not None:
        return rules.store.package.lower() in facts.store
    return True


def store_version_installed(m: UpdateManifest, facts: InventoryFacts) -> bool:
    """A store update whose package is already installed at the offered version or newer."""
    rule = m.applicability.store
    if rule is None:
        return False
    return any(v >= rule.version for v in facts.store.get(rule.package.lower(), ()))


def definitions_group(m: UpdateManifest) -> frozenset[str]:
    """The product set that groups definitions updates: only the newest of a group applies."""
    return frozenset(p.lower() for p in m.products)


def definitions_newness(m: UpdateManifest) -> tuple[datetime.date, int, str, str]:
    """Order of definitions updates in one group: release date, then revision, then title."""
    return (m.release_date, m.revision, m.title, m.id)
