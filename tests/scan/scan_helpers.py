"""Shared test data for tidings.scan: a small factory of valid manifests and inventories."""

from __future__ import annotations

import datetime
from typing import Any

from tidings.manifest import (
    SCHEMA_VERSION,
    Applicability,
    Classification,
    DriverRule,
    InstallBehaviour,
    Kind,
    OsRule,
    PayloadFile,
    ProductRule,
    Reboot,
    Severity,
    StoreRule,
    UpdateManifest,
    Version,
    validate_manifest,
)
from tidings.scan.inventory_model import (
    HardwareDevice,
    InstalledProduct,
    Inventory,
    OsInfo,
    StorePackage,
)

V = Version.parse
D = datetime.date.fromisoformat

_DEFAULT_CLASSIFICATION = {
    Kind.OS: Classification.SECURITY,
    Kind.APP: Classification.UPDATE,
    Kind.DRIVER: Classification.DRIVER,
    Kind.DEFINITIONS: Classification.DEFINITIONS,
    Kind.STORE: Classification.UPDATE,
}
_PAYLOAD = PayloadFile(
    name="payload.bin",
    size=4,
    sha256="a" * 64,
    piece_size=16384,
    piece_map_sha256="b" * 64,
    piece_map_size=32,
)


def uid(n: int) -> str:
    """A canonical UUID for the small number ``n``: ``uid(7)`` -> ``...-000000000007``."""
    return f"00000000-0000-4000-8000-{n:012d}"


def manifest(
    n: int,
    kind: Kind = Kind.OS,
    *,
    title: str | None = None,
    revision: int = 1,
    classification: Classification | None = None,
    release_date: str = "2026-11-10",
    products: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    supersedes: tuple[int, ...] = (),
    prerequisites: tuple[int, ...] = (),
    bundle: tuple[int, ...] = (),
    os: OsRule | None = None,
    installed: tuple[ProductRule, ...] = (),
    not_installed: tuple[ProductRule, ...] = (),
    driver: DriverRule | None = None,
    store: StoreRule | None = None,
    reboot: Reboot = Reboot.NEVER,
    validate: bool = True,
) -> UpdateManifest:
    """A valid manifest with id ``uid(n)``; references are given as small numbers too.

    Kind-specific requirements get defaults: an app or definitions update without products
    gets ``products=("contoso-editor",)`` / ``("tidings-defender",)``.
    """
    if kind is Kind.APP and not products and not installed:
        products = ("contoso-editor",)
    if kind is Kind.DEFINITIONS and not products:
        products = ("tidings-defender",)
    m = UpdateManifest(
        schema=SCHEMA_VERSION,
        id=uid(n),
        revision=revision,
        kind=kind,
        title=title or f"update {n}",
        description="",
        classification=classification or _DEFAULT_CLASSIFICATION[kind],
        severity=Severity.UNSPECIFIED,
        kb=(),
        cves=(),
        release_date=D(release_date),
        products=products,
        categories=categories,
        supersedes=tuple(uid(s) for s in supersedes),
        prerequisites=tuple(uid(p) for p in prerequisites),
        bundle=tuple(uid(b) for b in bundle),
        applicability=Applicability(
            os=os, installed=installed, not_installed=not_installed, driver=driver, store=store
        ),
        install=InstallBehaviour(reboot=reboot),
        eula=None,
        payloads=() if bundle else (_PAYLOAD,),
    )
    if validate:
        validate_manifest(m, source=f"test manifest {n}")
    return m


def driver_rule(
    hardware_ids: tuple[str, ...] = (),
    compatible_ids: tuple[str, ...] = (),
    version: str = "1.0",
    date: str = "2026-01-01",
) -> DriverRule:
    return DriverRule(hardware_ids, compatible_ids, V(version), D(date))


def driver(n: int, version: str = "1.0", date: str = "2026-01-01", **ids: Any) -> UpdateManifest:
    """A driver manifest: ``driver(3, "2.0", hardware_ids=(...), compatible_ids=(...))``."""
    rule = driver_rule(ids.pop("hardware_ids", ()), ids.pop("compatible_ids", ()), version, date)
    return manifest(n, Kind.DRIVER, driver=rule, **ids)


def os_rule(**bounds: Any) -> OsRule:
    """An OS rule for ``tidings-os-11``; versions may be given as text."""
    for key in ("min_version", "max_version"):
        if isinstance(bounds.get(key), str):
            bounds[key] = V(bounds[key])
    bounds.setdefault("product", "tidings-os-11")
    return OsRule(**bounds)


def product_rule(product: str, low: str | None = None, high: str | None = None) -> ProductRule:
    return ProductRule(product, None if low is None else V(low), None if high is None else V(high))


OS11 = OsInfo(product="tidings-os-11", version=V("10.0.22631"), build=22631, architecture="x64")


def device(
    instance: str,
    hardware_ids: tuple[str, ...] = (),
    compatible_ids: tuple[str, ...] = (),
    driver_version: str | None = None,
    driver_date: str | None = None,
) -> HardwareDevice:
    return HardwareDevice(
        instance_id=instance,
        hardware_ids=hardware_ids,
        compatible_ids=compatible_ids,
        driver_version=None if driver_version is None else V(driver_version),
        driver_date=None if driver_date is None else D(driver_date),
    )


def inventory(
    *,
    os: OsInfo | None = OS11,
    products: dict[str, str] | None = None,
    devices: tuple[HardwareDevice, ...] = (),
    store: dict[str, str] | None = None,
    installed: tuple[int, ...] = (),
) -> Inventory:
    """An inventory; products and store packages as ``{name: version}``, installed as numbers."""
    return Inventory(
        os=os,
        products=tuple(InstalledProduct(p, V(v)) for p, v in (products or {}).items()),
        devices=devices,
        store=tuple(StorePackage(p, V(v)) for p, v in (store or {}).items()),
        installed_updates=frozenset(uid(i) for i in installed),
    )
