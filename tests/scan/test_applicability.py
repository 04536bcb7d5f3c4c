"""Applicability rules per update: OS, installed products, store, app, definitions, result shape."""

from __future__ import annotations

from typing import Any

import pytest
from scan_helpers import (
    OS11,
    V,
    device,
    driver,
    inventory,
    manifest,
    os_rule,
    product_rule,
    uid,
)

from tidings.manifest import Classification, Kind, Reboot, StoreRule
from tidings.scan.applicability import ApplicabilityResult, Evaluated, evaluate
from tidings.scan.inventory_model import InstalledProduct, Inventory, OsInfo


def verdict(result: ApplicabilityResult, n: int) -> Evaluated:
    found = result.get(uid(n))
    assert found is not None
    return found


def applies(m: Any, inv: Inventory) -> bool:
    return verdict(evaluate([m], inv), int(m.id[-12:])).is_applicable


# --- OS rule: every bound inclusive, architectures empty = any --------------------------------

OS_CASES = [
    ("same product, no bounds", {}, True),
    ("product compares case-insensitively", {"product": "Tidings-OS-11"}, True),
    ("other product", {"product": "tidings-os-10"}, False),
    ("arch listed", {"architectures": ("x64", "arm64")}, True),
    ("arch not listed", {"architectures": ("arm64",)}, False),
    ("arch empty means any", {"architectures": ()}, True),
    ("min_version equal is inside", {"min_version": "10.0.22631"}, True),
    ("max_version equal is inside", {"max_version": "10.0.22631"}, True),
    ("below min_version", {"min_version": "10.0.22632"}, False),
    ("above max_version", {"max_version": "10.0.22630"}, False),
    ("trailing zeros do not matter", {"max_version": "10.0.22631.0"}, True),
    ("min_build equal is inside", {"min_build": 22631}, True),
    ("max_build equal is inside", {"max_build": 22631}, True),
    ("below min_build", {"min_build": 22632}, False),
    ("above max_build", {"max_build": 22630}, False),
    ("inside a build range", {"min_build": 22000, "max_build": 23000}, True),
]


@pytest.mark.parametrize(
    ("rule", "expected"), [c[1:] for c in OS_CASES], ids=[c[0] for c in OS_CASES]
)
def test_os_rule_bounds_are_inclusive(rule: dict[str, Any], expected: bool) -> None:
    m = manifest(1, Kind.OS, os=os_rule(**rule))
    assert applies(m, inventory()) is expected
    assert verdict(evaluate([m], inventory()), 1).is_installable is expected


def test_os_rule_never_holds_without_a_known_os() -> None:
    assert not applies(manifest(1, os=os_rule()), inventory(os=None))


def test_os_rule_architecture_compares_case_insensitively() -> None:
    arm = OsInfo("tidings-os-11", V("10.0"), 1, "ARM64")
    assert applies(manifest(1, os=os_rule(architectures=("arm64",))), inventory(os=arm))


# --- installed / not_installed: min inclusive, max exclusive ----------------------------------

PRODUCT_CASES = [
    ("any version", ("contoso-editor",), True),
    ("case-insensitive name", ("Contoso-Editor",), True),
    ("min equal is inside", ("contoso-editor", "2.1"), True),
    ("above min", ("contoso-editor", "2.0"), True),
    ("below min", ("contoso-editor", "2.2"), False),
    ("max is exclusive", ("contoso-editor", "1.0", "2.1"), False),
    ("below max", ("contoso-editor", "1.0", "2.1.1"), True),
    ("not installed at all", ("other-app",), False),
]


@pytest.mark.parametrize(
    ("rule", "expected"), [c[1:] for c in PRODUCT_CASES], ids=[c[0] for c in PRODUCT_CASES]
)
def test_installed_rule_min_inclusive_max_exclusive(rule: tuple[str, ...], expected: bool) -> None:
    inv = inventory(products={"contoso-editor": "2.1"})
    m = manifest(1, Kind.APP, installed=(product_rule(*rule),))
    assert applies(m, inv) is expected


@pytest.mark.parametrize(
    ("rule", "expected"), [c[1:] for c in PRODUCT_CASES], ids=[c[0] for c in PRODUCT_CASES]
)
def test_not_installed_rule_is_the_negation(rule: tuple[str, ...], expected: bool) -> None:
    inv = inventory(products={"contoso-editor": "2.1"})
    m = manifest(1, Kind.OS, os=os_rule(), not_installed=(product_rule(*rule),))
    assert applies(m, inv) is not expected


def test_every_installed_rule_must_match() -> None:
    inv = inventory(products={"a-app": "1.0", "b-app": "1.0"})
    both = (product_rule("a-app"), product_rule("b-app"))
    assert applies(manifest(1, Kind.APP, installed=both), inv)
    assert not applies(manifest(1, Kind.APP, installed=(*both, product_rule("c-app"))), inv)


def test_any_of_several_installed_versions_can_match() -> None:
    inv = Inventory(
        os=OS11,
        products=(
            InstalledProduct("contoso-editor", V("1.0")),
            InstalledProduct("contoso-editor", V("3.0")),
        ),
    )
    assert applies(manifest(1, Kind.APP, installed=(product_rule("contoso-editor", "2.0"),)), inv)


# --- app updates without an installed rule need one of their products ------------------------


@pytest.mark.parametrize(
    ("installed_products", "expected"),
    [({"contoso-editor": "0.1"}, True), ({}, False), ({"CONTOSO-EDITOR": "9"}, True)],
)
def test_app_without_installed_rule_needs_a_product(
    installed_products: dict[str, str], expected: bool
) -> None:
    m = manifest(1, Kind.APP, products=("contoso-editor",))
    assert applies(m, inventory(products=installed_products)) is expected


def test_app_is_installed_only_by_update_id() -> None:
    m = manifest(1, Kind.APP)
    result = evaluate([m], inventory(products={"contoso-editor": "99"}, installed=(1,)))
    assert verdict(result, 1).is_installed
    assert not verdict(result, 1).is_applicable
    assert [e.update_id for e in result.updates] == [uid(1)]


# --- store: only updates to installed packages with a lower version ---------------------------

STORE_CASES = [
    ("installed lower", {"Contoso.Notes": "2.1.0.0"}, True, False),
    ("package name case-insensitive", {"contoso.notes": "2.1"}, True, False),
    ("installed equal", {"Contoso.Notes": "2.3"}, False, True),
    ("installed newer", {"Contoso.Notes": "3.0"}, False, True),
    ("not installed", {}, False, False),
]


@pytest.mark.parametrize(
    ("store", "applicable", "installed"),
    [c[1:] for c in STORE_CASES],
    ids=[c[0] for c in STORE_CASES],
)
def test_store_offers_only_updates_to_installed_older_packages(
    store: dict[str, str], applicable: bool, installed: bool
) -> None:
    m = manifest(1, Kind.STORE, store=StoreRule("Contoso.Notes", V("2.3.0.0")))
    e = verdict(evaluate([m], inventory(store=store)), 1)
    assert (e.is_applicable, e.is_installed) == (applicable, installed)


# --- definitions: only the newest per product set ---------------------------------------------


def test_only_the_newest_definitions_update_applies() -> None:
    old = manifest(1, Kind.DEFINITIONS, release_date="2026-11-01", title="defs 1")
    new = manifest(2, Kind.DEFINITIONS, release_date="2026-11-02", title="defs 2")
    other = manifest(3, Kind.DEFINITIONS, release_date="2026-10-01", products=("other-av",))
    engines = inventory(products={"tidings-defender": "1.0", "other-av": "4.2"})
    result = evaluate([old, new, other], engines)
    assert verdict(result, 2).is_applicable and verdict(result, 2).is_assigned
    assert verdict(result, 1).is_superseded and not verdict(result, 1).is_applicable
    assert verdict(result, 3).is_applicable  # another product set: its own newest


def test_definitions_for_an_engine_the_device_lacks_do_not_apply() -> None:
    defs = manifest(1, Kind.DEFINITIONS, products=("other-av",))
    result = evaluate([defs], inventory(products={"tidings-defender": "1.0"}))
    assert not verdict(result, 1).is_installable
    assert result.updates == ()


@pytest.mark.parametrize(
    ("first", "second", "winner"),
    [
        ({"release_date": "2026-11-02", "revision": 1}, {"release_date": "2026-11-01"}, 1),
        ({"revision": 2}, {"revision": 1}, 1),
        ({"title": "b"}, {"title": "a"}, 1),
    ],
    ids=["release date first", "then revision", "then title"],
)
def test_definitions_newness_order(
    first: dict[str, Any], second: dict[str, Any], winner: int
) -> None:
    a = manifest(1, Kind.DEFINITIONS, **first)
    b = manifest(2, Kind.DEFINITIONS, **second)
    result = evaluate([b, a], inventory(products={"tidings-defender": "1.0"}))
    assert [e.update_id for e in result.updates] == [uid(winner)]


def test_an_installed_newer_definitions_update_hides_older_ones() -> None:
    old = manifest(1, Kind.DEFINITIONS, release_date="2026-11-01")
    new = manifest(2, Kind.DEFINITIONS, release_date="2026-11-02")
    defender = {"tidings-defender": "1.0"}
    result = evaluate([old, new], inventory(products=defender, installed=(2,)))
    assert verdict(result, 1).is_superseded
    assert [(e.update_id, e.is_installed) for e in result.updates] == [(uid(2), True)]


def test_definitions_not_installable_do_not_hide_older_ones() -> None:
    old = manifest(1, Kind.DEFINITIONS, release_date="2026-11-01")
    new = manifest(2, Kind.DEFINITIONS, release_date="2026-11-02", os=os_rule(product="other-os"))
    result = evaluate([old, new], inventory(products={"tidings-defender": "1.0"}))
    assert verdict(result, 1).is_applicable


# --- result shape and the properties the search matcher uses ----------------------------------


def test_result_holds_installed_and_applicable_sorted_by_kind_then_title() -> None:
    cands = [
        manifest(1, Kind.APP, title="b app"),
        manifest(2, Kind.OS, os=os_rule(), title="z os"),
        manifest(3, Kind.APP, title="a app"),
        manifest(4, Kind.OS, os=os_rule(product="nope"), title="not applicable"),
        manifest(5, Kind.OS, os=os_rule(product="nope"), title="installed anyway"),
    ]
    result = evaluate(cands, inventory(products={"contoso-editor": "1"}, installed=(5,)))
    assert [e.title for e in result.updates] == ["installed anyway", "z os", "a app", "b app"]
    assert len(result.evaluated) == 5
    assert result.warnings == ()


def test_evaluated_exposes_search_properties() -> None:
    m = manifest(
        1,
        Kind.OS,
        os=os_rule(),
        products=("tidings-os-11",),
        categories=("Cumulative",),
        reboot=Reboot.ALWAYS,
        revision=7,
    )
    e = verdict(evaluate([m], inventory()), 1)
    assert (e.kind, e.update_type, e.update_id, e.revision) == ("os", "Software", uid(1), 7)
    assert e.category_ids == frozenset({"cumulative", "tidings-os-11", "security", "os"})
    assert e.reboot_required and not e.is_hidden and not e.is_present
    assert e.deployment_action == "Installation"
    assert e.is_assigned and not e.browse_only
    assert e.device is None and e.match_rank is None and e.bundle_parent is None


def test_can_request_reboot_is_not_required() -> None:
    m = manifest(1, Kind.OS, os=os_rule(), reboot=Reboot.CAN_REQUEST)
    assert not verdict(evaluate([m], inventory()), 1).reboot_required


def test_feature_updates_are_browse_only() -> None:
    m = manifest(1, Kind.OS, os=os_rule(), classification=Classification.FEATURE)
    e = verdict(evaluate([m], inventory()), 1)
    assert e.is_applicable and e.browse_only and not e.is_assigned


def test_driver_update_type_is_driver() -> None:
    d = driver(1, hardware_ids=("PCI\\VEN_1",))
    inv = inventory(devices=(device("dev", ("PCI\\VEN_1",)),))
    e = verdict(evaluate([d], inv), 1)
    assert (e.update_type, e.kind) == ("Driver", "driver")


def test_duplicate_ids_keep_the_highest_revision_and_warn() -> None:
    r1 = manifest(1, Kind.OS, os=os_rule(), revision=1, title="rev 1")
    r3 = manifest(1, Kind.OS, os=os_rule(), revision=3, title="rev 3")
    r2 = manifest(1, Kind.OS, os=os_rule(), revision=2, title="rev 2")
    result = evaluate([r1, r3, r2], inventory())
    assert [e.title for e in result.updates] == ["rev 3"]
    assert result.warnings == (
        f"duplicate update id {uid(1)}: kept revision 3, ignored revision(s) 1, 2",
    )


def test_empty_candidates_and_inventory() -> None:
    assert evaluate([], Inventory()) == ApplicabilityResult((), (), ())
