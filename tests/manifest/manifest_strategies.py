"""Hypothesis strategies: random *valid* manifests, and arbitrary JSON-ish values."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tidings.manifest import (
    SCHEMA_VERSION,
    Applicability,
    Classification,
    DriverRule,
    Eula,
    Impact,
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
)
from tidings.manifest._parse import check_payload_name

_PRINTABLE = st.characters(
    exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"), include_characters=" "
)
lines = st.text(_PRINTABLE, min_size=1, max_size=30).filter(str.isprintable)
multiline = st.text(st.one_of(_PRINTABLE, st.sampled_from("\n\t\r")), max_size=60)
names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,20}", fullmatch=True)
uuids = st.uuids().map(str)
shas = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
versions = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=6).map(
    lambda parts: Version(tuple(parts))
)
hardware_ids = st.from_regex(r"[!-~]{1,40}", fullmatch=True)
payload_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,20}(\.[a-z0-9]{1,4})?", fullmatch=True)
payload_names = payload_names.filter(lambda n: check_payload_name(n) is None)


def unique(elements: st.SearchStrategy[str], max_size: int = 4) -> st.SearchStrategy[Any]:
    return st.lists(elements, unique=True, max_size=max_size).map(tuple)


@st.composite
def version_range(draw: st.DrawFn, *, exclusive: bool) -> tuple[Version | None, Version | None]:
    low, high = draw(st.none() | versions), draw(st.none() | versions)
    if low is not None and high is not None:
        low, high = min(low, high), max(low, high)
        if exclusive and low == high:
            high = None
    return low, high


@st.composite
def product_rules(draw: st.DrawFn) -> ProductRule:
    low, high = draw(version_range(exclusive=True))
    return ProductRule(draw(names), low, high)


@st.composite
def os_rules(draw: st.DrawFn) -> OsRule:
    low, high = draw(version_range(exclusive=False))
    builds = sorted(draw(st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=2)))
    min_build = draw(st.sampled_from([None, builds[0]]))
    max_build = draw(st.sampled_from([None, builds[1]]))
    archs = draw(unique(st.sampled_from(["x86", "x64", "arm64"]), 3))
    return OsRule(draw(names), archs, low, high, min_build, max_build)


@st.composite
def driver_rules(draw: st.DrawFn) -> DriverRule:
    hw, compatible = draw(unique(hardware_ids)), draw(unique(hardware_ids))
    if not hw and not compatible:
        hw = ("PCI\\VEN_8086&DEV_46A6",)
    vendor = draw(st.just("") | lines)
    return DriverRule(
        hw, compatible, draw(versions), draw(st.dates()), draw(st.just("") | lines), vendor
    )


install_behaviours = st.builds(
    InstallBehaviour,
    reboot=st.sampled_from(list(Reboot)),
    can_uninstall=st.booleans(),
    needs_user_input=st.booleans(),
    impact=st.sampled_from(list(Impact)),
)
payload_files = st.builds(
    PayloadFile,
    name=payload_names,
    size=st.integers(0, 2**63 - 1),
    sha256=shas,
    piece_size=st.sampled_from([2**n for n in range(14, 25)]),
    piece_map_sha256=shas,
    piece_map_size=st.integers(0, 2**63 - 1),
)


@st.composite
def manifests(draw: st.DrawFn) -> UpdateManifest:
    """A random manifest that obeys every rule of docs/manifest.md."""
    kind = draw(st.sampled_from(list(Kind)))
    update_id = draw(uuids)
    others = unique(uuids.filter(lambda u: u != update_id))
    products = draw(unique(names))
    installed = draw(st.lists(product_rules(), max_size=3).map(tuple))
    if kind == Kind.DEFINITIONS and not products:
        products = ("tidings-defender",)
    if kind == Kind.APP and not (products or installed):
        installed = (ProductRule("contoso-editor"),)
    os_rule = draw(os_rules()) if kind == Kind.OS else draw(st.none() | os_rules())
    applicability = Applicability(
        os=os_rule,
        installed=installed,
        not_installed=draw(st.lists(product_rules(), max_size=2).map(tuple)),
        driver=draw(driver_rules()) if kind == Kind.DRIVER else None,
        store=StoreRule(draw(names), draw(versions)) if kind == Kind.STORE else None,
    )
    bundle = draw(others)
    payloads = draw(
        st.lists(payload_files, min_size=0 if bundle else 1, max_size=3, unique_by=lambda p: p.name)
    )
    return UpdateManifest(
        schema=SCHEMA_VERSION,
        id=update_id,
        revision=draw(st.integers(1, 2**31 - 1)),
        kind=kind,
        title=draw(lines),
        description=draw(multiline),
        classification=draw(st.sampled_from(list(Classification))),
        severity=draw(st.sampled_from(list(Severity))),
        kb=draw(unique(st.from_regex(r"KB[0-9]{1,10}", fullmatch=True))),
        cves=draw(unique(st.from_regex(r"CVE-[0-9]{4}-[0-9]{4,8}", fullmatch=True))),
        release_date=draw(st.dates()),
        products=products,
        categories=draw(unique(lines)),
        supersedes=draw(others),
        prerequisites=draw(others),
        bundle=bundle,
        applicability=applicability,
        install=draw(install_behaviours),
        eula=draw(st.none() | multiline.filter(bool).map(Eula)),
        payloads=tuple(payloads),
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
