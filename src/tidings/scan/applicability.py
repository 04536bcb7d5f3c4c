"""Which updates apply to a device: applicability, supersedence, bundles, drivers (pure).

``evaluate(candidates, inventory)`` decides, for every candidate manifest, what Windows Update
Agent would: installed or not, installable, superseded, offered (applicable), chosen for
automatic install (assigned) or only offered on request (browse-only). No I/O: the
candidates come from the catalog and the inventory from ``tidings.scan.inventory``. The rules
are documented in docs/applicability.md; the helpers live in ``applicability_rules`` (rules per
update), ``applicability_drivers`` (device matching and ranking) and ``applicability_graph``
(cycles and reachability over supersedes / prerequisites / bundles).

Invariants:

- Publisher data never hangs or crashes the evaluation: cycles and dangling references become
  ``warnings``, and the cost stays O(candidates + references + device IDs).
- The result depends on the candidates as a set, not on their order.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tidings.manifest import Classification, Kind, Reboot, UpdateManifest, manifest_to_dict
from tidings.scan.applicability_drivers import DriverFit, best_per_device, fit_drivers
from tidings.scan.applicability_graph import (
    children_first,
    describe_cycles,
    reached_from,
    without_cycle_edges,
)
from tidings.scan.applicability_rules import (
    InventoryFacts,
    definitions_group,
    definitions_newness,
    installable,
    store_version_installed,
)
from tidings.scan.inventory_model import Inventory

_KIND_ORDER = {kind: number for number, kind in enumerate(Kind)}


@dataclass(frozen=True)
class Evaluated:
    """The verdict on one candidate update for one device."""

    manifest: UpdateManifest
    is_installed: bool  # id installed, or a driver/store version already there
    is_installable: bool  # every rule of the manifest holds for this inventory
    is_superseded: bool  # a superseding update is installed or applicable
    is_applicable: bool  # offered to the device on its own
    is_assigned: bool  # chosen for automatic install
    browse_only: bool  # optional: a feature, or a driver not the best for its device
    reboot_required: bool  # install.reboot == always
    device: str | None  # drivers: instance id of the device it is the best for
    missing_prerequisites: tuple[str, ...]
    bundle_parent: str | None  # an applicable bundle that offers this update
    match_rank: tuple[int, ...] | None  # drivers: (device_side, driver_side, position)
    is_withheld: bool = False  # would be offered but for missing prerequisites

    @property
    def update_type(self) -> str:
        """WUA's ``Type``: ``Driver`` for drivers, ``Software`` for everything else."""
        return "Driver" if self.manifest.kind is Kind.DRIVER else "Software"

    @property
    def kind(self) -> str:
        """The manifest's kind as text (``os``, ``app``, ``driver``, ...)."""
        return self.manifest.kind.value

    @property
    def update_id(self) -> str:
        """The update's id."""
        return self.manifest.id

    @property
    def revision(self) -> int:
        """The update's revision."""
        return self.manifest.revision

    @property
    def title(self) -> str:
        """The update's title."""
        return self.manifest.title

    @property
    def category_ids(self) -> frozenset[str]:
        """Lower-cased categories, products, classification and kind: what ``CategoryIDs``
        matches (as in WUA, where a classification such as Security Updates is a category)."""
        m = self.manifest
        ids = (*m.categories, *m.products, m.classification.value, m.kind.value)
        return frozenset(c.lower() for c in ids)

    @property
    def is_hidden(self) -> bool:
        """Always False here: hiding is device state, overlaid by the session layer."""
        return False

    @property
    def is_present(self) -> bool:
        """WUA's ``IsPresent``; here the same as ``is_installed``."""
        return self.is_installed

    @property
    def deployment_action(self) -> str:
        """WUA's ``DeploymentAction``: always ``Installation`` (no uninstall offers yet)."""
        return "Installation"


@dataclass(frozen=True)
class ApplicabilityResult:
    """The outcome of one evaluation.

    ``updates`` holds every candidate that is installed or applicable (installed ones too, so
    that ``IsInstalled=1`` searches work), sorted by kind then title. ``evaluated`` holds the
    verdict on every candidate (after duplicate removal), including the ones not offered and
    bundle members shown only through their bundle, for explanations.
    """

    updates: tuple[Evaluated, ...]
    warnings: tuple[str, ...]  # data problems: cycles, dangling references, duplicate ids
    evaluated: tuple[Evaluated, ...] = ()

    @property
    def withheld(self) -> tuple[Evaluated, ...]:
        """Candidates not offered only because a prerequisite is not installed, by title."""
        found = (e for e in self.evaluated if e.is_withheld)
        return tuple(sorted(found, key=lambda e: (e.title, e.update_id)))

    def get(self, update_id: str) -> Evaluated | None:
        """The verdict on ``update_id``, or None if it was not a candidate."""
        return next((e for e in self.evaluated if e.update_id == update_id), None)

    def members(self, bundle_id: str) -> tuple[Evaluated, ...]:
        """The candidates offered only through the bundle ``bundle_id``."""
        return tuple(e for e in self.evaluated if e.bundle_parent == bundle_id)


@dataclass
class _Verdict:
    """Working state for one candidate while ``evaluate`` runs."""

    installable: bool
    installed: bool
    missing: tuple[str, ...]
    eligible: bool  # applicable on its own rules, before supersedence and bundles
    withheld: bool  # eligible but for missing prerequisites
    superseded: bool = False
    applicable: bool = False
    bundle_parent: str | None = None


def _canonical(m: UpdateManifest) -> str:
    return json.dumps(manifest_to_dict(m), sort_keys=True)


def _deduplicate(
    candidates: Sequence[UpdateManifest], warnings: list[str]
) -> dict[str, UpdateManifest]:
    """One manifest per id: the highest revision (ties broken by content, for determinism)."""
    groups: dict[str, list[UpdateManifest]] = defaultdict(list)
    for m in candidates:
        groups[m.id].append(m)
    kept: dict[str, UpdateManifest] = {}
    for update_id in sorted(groups):
        versions = groups[update_id]
        if len(versions) == 1:
            kept[update_id] = versions[0]
            continue
        best = max(versions, key=lambda m: (m.revision, _canonical(m)))
        ignored = sorted(m.revision for m in versions)
        ignored.remove(best.revision)
        warnings.append(
            f"duplicate update id {update_id}: kept revision {best.revision}, ignored"
            f" revision(s) {', '.join(map(str, ignored))}"
        )
        kept[update_id] = best
    return kept


@dataclass
class RuleMemo:
    """Verdicts on each update's own rules, reused by the next evaluation for one inventory.

    ``_judge`` depends only on the manifest and the inventory. A long-lived session passes one
    memo to every ``evaluate``, and an incremental scan then judges only the new updates. A
    verdict is reused only for the very same manifest (the reader hands out the same objects
    for an unchanged index document; otherwise the contents are compared), never merely for
    the same id and revision. The memo forgets everything when the inventory changes, and
    keeps only the current candidates.
    """

    inventory: Inventory | None = None
    verdicts: dict[
        tuple[str, int], tuple[UpdateManifest, tuple[bool, bool, tuple[str, ...], bool, bool]]
    ] = field(default_factory=dict)

    def judged(
        self,
        by_id: dict[str, UpdateManifest],
        inventory: Inventory,
        judge: Callable[[UpdateManifest], _Verdict],
    ) -> dict[str, _Verdict]:
        """A fresh verdict per candidate, from the memo where it can."""
        if self.inventory != inventory:
            self.inventory, self.verdicts = inventory, {}
        known, fresh = self.verdicts, {}
        out = {}
        for update_id, m in by_id.items():
            key = (update_id, m.revision)
            seen = known.get(key)
            if seen is not None and (seen[0] is m or seen[0] == m):
                base = seen[1]
            else:
                v = judge(m)
                base = (v.installable, v.installed, v.missing, v.eligible, v.withheld)
            fresh[key] = (m, base)
            out[update_id] = _Verdict(*base)
        self.verdicts = fresh
        return out


def _judge(m: UpdateManifest, facts: InventoryFacts, fit: DriverFit | None) -> _Verdict:
    """The verdict from the update's own rules and the inventory alone."""
    installed_ids = facts.inventory.installed_updates
    missing = tuple(p for p in m.prerequisites if p not in installed_ids)
    can_install = installable(m, facts)
    installed = m.id in installed_ids
    needed = True
    if m.kind is Kind.DRIVER:
        can_install = can_install and fit is not None and bool(fit.matches)
        installed = installed or (fit is not None and fit.installed)
        needed = fit is not None and bool(fit.needed_by)
    elif m.kind is Kind.STORE:
        installed = installed or store_version_installed(m, facts)
    wanted = can_install and not installed and needed
    return _Verdict(
        can_install, installed, missing, wanted and not missing, wanted and bool(missing)
    )


def _check_prerequisites(
    by_id: dict[str, UpdateManifest], installed_ids: frozenset[str], warnings: list[str]
) -> None:
    """Warn about prerequisites that can never be met; they are still required."""
    edges: dict[str, list[str]] = {}
    for update_id, m in by_id.items():
        edges[update_id] = [p for p in m.prerequisites if p in by_id]
        for p in m.prerequisites:
            if p not in by_id and p not in installed_ids:
                warnings.append(
                    f"dangling prerequisite: {update_id} requires {p},"
                    " which is neither a candidate nor installed"
                )
    _, cycle_warnings = describe_cycles(
        "prerequisite", sorted(by_id), edges, "none is offered until one is installed"
    )
    warnings.extend(cycle_warnings)


def _apply_supersedence(
    by_id: dict[str, UpdateManifest], verdicts: dict[str, _Verdict], warnings: list[str]
) -> None:
    """Mark every candidate reachable over ``supersedes`` from an installed or eligible one.

    Reachability makes chains work (A supersedes B supersedes C: an applicable A hides C even
    when B does not apply). Edges inside a cycle are ignored. A superseded id that is not a
    candidate is normal (old updates leave the catalog) and not warned about.
    """
    ids = sorted(by_id)
    all_edges = {i: [s for s in by_id[i].supersedes if s in by_id] for i in ids}
    components, cycle_warnings = describe_cycles("supersedence", ids, all_edges, "ignored")
    warnings.extend(cycle_warnings)
    edges = without_cycle_edges(all_edges, components)
    live = [i for i in ids if verdicts[i].installed or verdicts[i].eligible]
    for update_id in reached_from(live, edges):
        verdicts[update_id].superseded = True
    _supersede_older_definitions(by_id, verdicts)


def _supersede_older_definitions(
    by_id: dict[str, UpdateManifest], verdicts: dict[str, _Verdict]
) -> None:
    """Per product set, only the newest installed-or-offerable definitions update counts."""
    groups: dict[frozenset[str], list[UpdateManifest]] = defaultdict(list)
    for update_id, m in by_id.items():
        v = verdicts[update_id]
        if m.kind is Kind.DEFINITIONS and (v.installed or (v.eligible and not v.superseded)):
            groups[definitions_group(m)].append(m)
    for group in groups.values():
        newest = max(group, key=definitions_newness)
        for m in group:
            if m is not newest and not verdicts[m.id].installed:
                verdicts[m.id].superseded = True


def _apply_bundles(
    by_id: dict[str, UpdateManifest], verdicts: dict[str, _Verdict], warnings: list[str]
) -> None:
    """Offer a bundle when it and one member apply; its members are then shown only through it."""
    ids = sorted(by_id)
    all_edges: dict[str, list[str]] = {}
    for update_id in ids:
        bundle = by_id[update_id].bundle
        all_edges[update_id] = [b for b in bundle if b in by_id]
        for member in bundle:
            if member not in by_id:
                warnings.append(
                    f"dangling bundle member: {update_id} bundles {member},"
                    " which is not a candidate"
                )
    components, cycle_warnings = describe_cycles("bundle", ids, all_edges, "ignored")
    warnings.extend(cycle_warnings)
    edges = without_cycle_edges(all_edges, components)
    for update_id in children_first(ids, edges):
        v = verdicts[update_id]
        v.applicable = v.eligible and not v.superseded
        if by_id[update_id].bundle:
            v.applicable = v.applicable and any(verdicts[c].applicable for c in edges[update_id])
    for update_id in ids:
        if verdicts[update_id].applicable:
            for member in edges[update_id]:
                if verdicts[member].bundle_parent is None:
                    verdicts[member].bundle_parent = update_id
    for v in verdicts.values():
        if v.bundle_parent is not None:
            v.applicable = False


def evaluate(
    candidates: Sequence[UpdateManifest], inventory: Inventory, memo: RuleMemo | None = None
) -> ApplicabilityResult:
    """Decide which candidate updates are installed, offered and assigned on this device.

    Args:
        candidates: manifests from the catalog (any order; duplicates of an id allowed).
        inventory: what the device has.
        memo: verdicts of an earlier evaluation to reuse (same results, less work).

    Returns:
        The verdicts and the data problems found. Never raises for bad references.
    """
    warnings: list[str] = []
    by_id = _deduplicate(candidates, warnings)
    facts = InventoryFacts.of(inventory)
    drivers = [m for m in by_id.values() if m.kind is Kind.DRIVER]
    fits = fit_drivers(drivers, inventory.devices)
    verdicts = (memo or RuleMemo()).judged(
        by_id, inventory, lambda m: _judge(m, facts, fits.get(m.id))
    )
    _check_prerequisites(by_id, inventory.installed_updates, warnings)
    _apply_supersedence(by_id, verdicts, warnings)
    _apply_bundles(by_id, verdicts, warnings)
    offered = {m.id: m for m in drivers if verdicts[m.id].applicable}
    best = best_per_device(fits, offered)
    evaluated = []
    for update_id, m in by_id.items():
        v = verdicts[update_id]
        chosen = best.get(update_id)
        fit = fits.get(update_id)
        rank = None
        if chosen is not None:
            rank = chosen.rank
        elif fit is not None and fit.matches:
            rank = min(match.rank for match in (fit.needed_by or fit.matches))
        browse_only = m.classification is Classification.FEATURE or (
            m.kind is Kind.DRIVER and chosen is None
        )
        evaluated.append(
            Evaluated(
                manifest=m,
                is_installed=v.installed,
                is_installable=v.installable,
                is_superseded=v.superseded,
                is_applicable=v.applicable,
                is_assigned=v.applicable and not browse_only,
                browse_only=browse_only,
                reboot_required=m.install.reboot is Reboot.ALWAYS,
                device=None if chosen is None else inventory.devices[chosen.device].instance_id,
                missing_prerequisites=v.missing,
                bundle_parent=v.bundle_parent,
                match_rank=rank,
                # Superseded or in an offered bundle: it would not be offered anyway.
                is_withheld=v.withheld and not v.superseded and v.bundle_parent is None,
            )
        )
    updates = sorted(
        (e for e in evaluated if e.is_installed or e.is_applicable),
        key=lambda e: (_KIND_ORDER[e.manifest.kind], e.title, e.update_id),
    )
    return ApplicabilityResult(tuple(updates), tuple(warnings), tuple(evaluated))
