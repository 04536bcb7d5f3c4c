"""Hypothesis properties: random catalogs with arbitrary references always evaluate, the same
way whatever their order, and every cycle is reported."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from scan_helpers import device, driver, inventory, manifest, os_rule, uid

from tidings.manifest import Kind, UpdateManifest
from tidings.scan.applicability import ApplicabilityResult, RuleMemo, evaluate
from tidings.scan.inventory_model import Inventory

POOL = 14  # ids 0..13; candidates use some, the rest are dangling references
refs = st.lists(st.integers(0, POOL - 1), unique=True, max_size=3)


@st.composite
def catalogs(draw: st.DrawFn) -> tuple[list[UpdateManifest], Inventory]:
    numbers = draw(st.lists(st.integers(0, POOL - 1), unique=True, min_size=1, max_size=10))
    candidates = []
    for n in numbers:
        for revision in draw(st.lists(st.integers(1, 3), unique=True, min_size=1, max_size=2)):

            def others(n: int = n) -> tuple[int, ...]:
                return tuple(r for r in draw(refs) if r != n)

            kind = draw(st.sampled_from([Kind.OS, Kind.DEFINITIONS]))
            candidates.append(
                manifest(
                    n,
                    kind,
                    revision=revision,
                    os=os_rule(product=draw(st.sampled_from(["tidings-os-11", "other-os"]))),
                    release_date=draw(st.sampled_from(["2026-01-01", "2026-02-01"])),
                    supersedes=others(),
                    prerequisites=others(),
                    bundle=others(),
                )
            )
    installed = tuple(draw(st.lists(st.integers(0, POOL - 1), unique=True, max_size=4)))
    return candidates, inventory(installed=installed)


def on_cycles(candidates: list[UpdateManifest], attribute: str) -> set[str]:
    """Reference: ids from which some path over ``attribute`` edges leads back to themselves."""
    kept: dict[str, UpdateManifest] = {}
    for m in sorted(candidates, key=lambda m: m.revision):
        kept[m.id] = m  # the highest revision wins
    edges = {i: [r for r in getattr(m, attribute) if r in kept] for i, m in kept.items()}
    cyclic = set()
    for start in edges:
        seen: set[str] = set()
        todo = list(edges[start])
        while todo:
            node = todo.pop()
            if node == start:
                cyclic.add(start)
                break
            if node not in seen:
                seen.add(node)
                todo.extend(edges[node])
    return cyclic


def check_invariants(result: ApplicabilityResult) -> None:
    for e in result.evaluated:
        if e.is_applicable:
            assert e.is_installable and not e.is_installed and not e.is_superseded
            assert e.missing_prerequisites == () and e.bundle_parent is None
        if e.is_assigned:
            assert e.is_applicable and not e.browse_only
    assert all(e.is_installed or e.is_applicable for e in result.updates)
    assert len({e.update_id for e in result.evaluated}) == len(result.evaluated)


@settings(deadline=None, max_examples=150)  # hangs are caught by pytest-timeout
@given(catalogs(), st.randoms(use_true_random=False))
def test_random_catalogs_evaluate_deterministically_and_report_every_cycle(
    catalog: tuple[list[UpdateManifest], Inventory], rng: random.Random
) -> None:
    candidates, inv = catalog
    result = evaluate(candidates, inv)
    check_invariants(result)
    for attribute, label in [
        ("supersedes", "supersedence"),
        ("prerequisites", "prerequisite"),
        ("bundle", "bundle"),
    ]:
        reported = " ".join(w for w in result.warnings if w.startswith(f"{label} cycle:"))
        for update_id in on_cycles(candidates, attribute):
            assert update_id in reported, (label, update_id, result.warnings)
        if not on_cycles(candidates, attribute):
            assert not reported
    shuffled = list(candidates)
    rng.shuffle(shuffled)
    assert evaluate(shuffled, inv) == result


device_ids = st.sampled_from(["ID_A", "ID_B", "ID_C", "ID_D", "ID_E"])
id_lists = st.lists(device_ids, unique=True, max_size=3).map(tuple)


@st.composite
def driver_setups(draw: st.DrawFn) -> tuple[list[UpdateManifest], Inventory]:
    devices = tuple(
        device(
            f"dev{i}",
            draw(id_lists),
            draw(id_lists),
            driver_version=draw(st.none() | st.sampled_from(["1.0", "2.0", "3.0"])),
        )
        for i in range(draw(st.integers(0, 4)))
    )
    drivers = []
    for n in range(draw(st.integers(1, 8))):
        hardware = draw(id_lists)
        compatible = draw(id_lists.filter(lambda c, h=hardware: bool(c or h)))
        drivers.append(
            driver(
                n,
                draw(st.sampled_from(["1.0", "2.0", "3.0", "4.0"])),
                draw(st.sampled_from(["2026-01-01", "2026-06-01"])),
                hardware_ids=hardware,
                compatible_ids=compatible,
            )
        )
    return drivers, inventory(devices=devices)


@settings(deadline=None, max_examples=150)  # hangs are caught by pytest-timeout
@given(driver_setups(), st.randoms(use_true_random=False))
def test_at_most_one_driver_is_assigned_per_device(
    setup: tuple[list[UpdateManifest], Inventory], rng: random.Random
) -> None:
    drivers, inv = setup
    result = evaluate(drivers, inv)
    check_invariants(result)
    per_device = Counter(e.device for e in result.updates if e.is_assigned)
    assert all(count == 1 for count in per_device.values())
    assert None not in per_device
    by_instance = {d.instance_id: d for d in inv.devices}
    for e in result.updates:
        if e.is_applicable:
            rule = e.manifest.applicability.driver
            assert rule is not None
            matching = [
                d
                for d in inv.devices
                if {i.lower() for i in (*d.hardware_ids, *d.compatible_ids)}
                & {i.lower() for i in (*rule.hardware_ids, *rule.compatible_ids)}
            ]
            assert any(
                d.driver_version is None or d.driver_version < rule.version for d in matching
            )
        if e.is_assigned:
            assert e.device in by_instance
    if any(e.is_applicable for e in result.updates):
        assert per_device  # some device needs an offered driver, so one is assigned
    shuffled = list(drivers)
    rng.shuffle(shuffled)
    assert evaluate(shuffled, inv) == result


def test_large_catalog_evaluates() -> None:
    # ~10^4 candidates with references everywhere: must finish (no timing asserted).
    base = manifest(0, Kind.OS, os=os_rule())
    candidates = [
        replace(
            base,
            id=uid(n),
            supersedes=(uid((n * 7 + 1) % 10_000),),
            prerequisites=(uid((n * 13 + 5) % 10_000),) if n % 3 == 0 else (),
            bundle=(uid((n * 3 + 2) % 10_000),) if n % 50 == 0 else (),
        )
        for n in range(10_000)
    ]
    result = evaluate(candidates, inventory(installed=tuple(range(0, 10_000, 2))))
    check_invariants(result)
    assert len(result.evaluated) == 10_000


def _verdicts(result: ApplicabilityResult) -> list[tuple[object, ...]]:
    return sorted(
        (e.update_id, e.revision, e.is_installed, e.is_applicable, e.is_superseded,
         e.is_assigned, e.missing_prerequisites, e.bundle_parent)
        for e in result.evaluated
    )  # fmt: skip


@settings(max_examples=150)
@given(catalogs(), catalogs(), st.booleans())
def test_a_reused_rule_memo_never_changes_a_verdict(
    first: tuple[list[UpdateManifest], Inventory],
    second: tuple[list[UpdateManifest], Inventory],
    same_inventory: bool,
) -> None:
    """A long-lived session reuses verdicts across scans; stale ones must never leak through."""
    memo = RuleMemo()
    evaluate(first[0], first[1], memo)
    inventory = first[1] if same_inventory else second[1]
    reused = evaluate([*first[0][:3], *second[0]], inventory, memo)
    fresh = evaluate([*first[0][:3], *second[0]], inventory)
    assert _verdicts(reused) == _verdicts(fresh)
    assert reused.updates == fresh.updates and reused.warnings == fresh.warnings
