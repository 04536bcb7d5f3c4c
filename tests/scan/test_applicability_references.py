"""Supersedence, prerequisites and bundles, including cycles and dangling references."""

from __future__ import annotations

from dataclasses import replace

import pytest
from scan_helpers import inventory, manifest, os_rule, uid

from tidings.manifest import Kind, UpdateManifest
from tidings.scan.applicability import ApplicabilityResult, Evaluated, evaluate


def os_update(n: int, **refs: tuple[int, ...]) -> UpdateManifest:
    return manifest(n, Kind.OS, os=os_rule(), **refs)  # type: ignore[arg-type]


def not_for_me(n: int, **refs: tuple[int, ...]) -> UpdateManifest:
    return manifest(n, Kind.OS, os=os_rule(product="other-os"), **refs)  # type: ignore[arg-type]


def verdict(result: ApplicabilityResult, n: int) -> Evaluated:
    found = result.get(uid(n))
    assert found is not None
    return found


def offered(result: ApplicabilityResult) -> list[str]:
    return [e.update_id for e in result.updates if e.is_applicable]


# --- supersedence -----------------------------------------------------------------------------


def test_applicable_update_supersedes_the_older_one() -> None:
    result = evaluate([os_update(1), os_update(2, supersedes=(1,))], inventory())
    assert offered(result) == [uid(2)]
    assert verdict(result, 1).is_superseded and verdict(result, 1).is_installable


def test_installed_update_supersedes_the_older_one() -> None:
    result = evaluate([os_update(1), os_update(2, supersedes=(1,))], inventory(installed=(2,)))
    assert offered(result) == []
    assert verdict(result, 1).is_superseded


def test_superseding_update_that_does_not_apply_leaves_the_old_one_offered() -> None:
    result = evaluate([os_update(1), not_for_me(2, supersedes=(1,))], inventory())
    assert offered(result) == [uid(1)]
    assert not verdict(result, 1).is_superseded


def test_supersedence_chain_hides_every_older_link() -> None:
    chain = [os_update(1), os_update(2, supersedes=(1,)), os_update(3, supersedes=(2,))]
    result = evaluate(chain, inventory())
    assert offered(result) == [uid(3)]
    assert verdict(result, 1).is_superseded and verdict(result, 2).is_superseded


def test_supersedence_chain_through_an_update_that_does_not_apply() -> None:
    chain = [os_update(1), not_for_me(2, supersedes=(1,)), os_update(3, supersedes=(2,))]
    assert offered(evaluate(chain, inventory())) == [uid(3)]


def test_superseded_id_outside_the_candidates_is_not_a_warning() -> None:
    result = evaluate([os_update(1, supersedes=(99,))], inventory())
    assert offered(result) == [uid(1)] and result.warnings == ()


def test_supersedence_cycle_is_ignored_and_reported() -> None:
    result = evaluate([os_update(1, supersedes=(2,)), os_update(2, supersedes=(1,))], inventory())
    assert offered(result) == [uid(1), uid(2)]
    assert result.warnings == (f"supersedence cycle: {uid(1)} -> {uid(2)} -> {uid(1)} (ignored)",)


def test_supersedence_cycle_does_not_stop_outside_edges() -> None:
    cands = [
        os_update(1, supersedes=(2,)),
        os_update(2, supersedes=(3,)),
        os_update(3, supersedes=(1, 4)),
        os_update(4),
        os_update(5, supersedes=(1,)),
    ]
    result = evaluate(cands, inventory())
    assert not verdict(result, 4).is_applicable  # superseded from inside the cycle
    assert verdict(result, 1).is_superseded  # by 5, from outside
    assert offered(result) == [uid(2), uid(3), uid(5)]
    (warning,) = result.warnings
    assert warning.startswith(f"supersedence cycle: {uid(1)} -> {uid(2)} -> {uid(3)} -> {uid(1)}")


def test_long_supersedence_chain_does_not_hit_recursion_limits() -> None:
    base = os_update(0)
    chain = [replace(base, id=uid(n), supersedes=(uid(n - 1),) if n else ()) for n in range(20_000)]
    result = evaluate(chain, inventory())
    assert offered(result) == [uid(19_999)]
    ring = [*chain[1:], replace(chain[0], supersedes=(uid(19_999),))]
    result = evaluate(ring, inventory())
    assert len(result.warnings) == 1 and "supersedence cycle" in result.warnings[0]


# --- prerequisites ----------------------------------------------------------------------------


def test_missing_prerequisite_blocks_and_is_listed() -> None:
    result = evaluate([os_update(1), os_update(2, prerequisites=(1,))], inventory())
    e = verdict(result, 2)
    assert not e.is_applicable and e.is_installable
    assert e.missing_prerequisites == (uid(1),)
    assert offered(result) == [uid(1)]
    assert result.warnings == ()


def test_installed_prerequisite_allows_the_update() -> None:
    result = evaluate([os_update(1), os_update(2, prerequisites=(1,))], inventory(installed=(1,)))
    assert offered(result) == [uid(2)]
    assert verdict(result, 2).missing_prerequisites == ()


def test_dangling_prerequisite_is_reported() -> None:
    result = evaluate([os_update(2, prerequisites=(1, 3))], inventory(installed=(3,)))
    assert verdict(result, 2).missing_prerequisites == (uid(1),)
    assert result.warnings == (
        f"dangling prerequisite: {uid(2)} requires {uid(1)}, which is neither a candidate"
        " nor installed",
    )


def test_update_blocked_only_by_a_prerequisite_is_withheld_so_a_scan_can_say_why() -> None:
    result = evaluate([os_update(2, prerequisites=(1,)), os_update(3)], inventory())
    assert [e.update_id for e in result.withheld] == [uid(2)]
    assert verdict(result, 2).is_withheld and not verdict(result, 3).is_withheld


def test_update_that_would_not_be_offered_anyway_is_not_withheld() -> None:
    """Not for this device, installed, or superseded by an offered update: the missing
    prerequisite is not why it is not offered."""
    result = evaluate(
        [
            not_for_me(2, prerequisites=(1,)),
            os_update(4, prerequisites=(1,)),
            os_update(5, prerequisites=(1,)),
            os_update(6, supersedes=(5,)),
        ],
        inventory(installed=(4,)),
    )
    assert result.withheld == ()


def test_prerequisite_cycle_is_reported() -> None:
    result = evaluate(
        [os_update(1, prerequisites=(2,)), os_update(2, prerequisites=(1,))], inventory()
    )
    assert offered(result) == []
    assert result.warnings == (
        f"prerequisite cycle: {uid(1)} -> {uid(2)} -> {uid(1)}"
        " (none is offered until one is installed)",
    )


# --- bundles ----------------------------------------------------------------------------------


def test_bundle_is_offered_and_hides_its_members() -> None:
    cands = [os_update(1), not_for_me(2), os_update(3, bundle=(1, 2))]
    result = evaluate(cands, inventory())
    assert offered(result) == [uid(3)]
    assert verdict(result, 1).bundle_parent == uid(3)
    assert verdict(result, 2).bundle_parent == uid(3)
    assert [e.update_id for e in result.members(uid(3))] == [uid(1), uid(2)]
    assert uid(1) not in [e.update_id for e in result.updates]


def test_bundle_with_no_applicable_member_is_not_offered() -> None:
    result = evaluate([not_for_me(1), os_update(3, bundle=(1,))], inventory())
    assert offered(result) == []
    assert verdict(result, 1).bundle_parent is None


def test_bundle_with_installed_members_only_is_not_offered() -> None:
    result = evaluate([os_update(1), os_update(3, bundle=(1,))], inventory(installed=(1,)))
    assert offered(result) == []
    assert [e.update_id for e in result.updates] == [uid(1)]


def test_bundle_that_does_not_apply_leaves_members_offered_alone() -> None:
    result = evaluate([os_update(1), not_for_me(3, bundle=(1,))], inventory())
    assert offered(result) == [uid(1)]


def test_nested_bundles() -> None:
    cands = [os_update(1), os_update(2, bundle=(1,)), os_update(3, bundle=(2,))]
    result = evaluate(cands, inventory())
    assert offered(result) == [uid(3)]
    assert verdict(result, 2).bundle_parent == uid(3)
    assert verdict(result, 1).bundle_parent == uid(2)


def test_member_of_two_bundles_names_the_lowest_id() -> None:
    cands = [os_update(1), os_update(3, bundle=(1,)), os_update(2, bundle=(1,))]
    result = evaluate(cands, inventory())
    assert offered(result) == [uid(2), uid(3)]
    assert verdict(result, 1).bundle_parent == uid(2)


def test_dangling_bundle_member_is_reported() -> None:
    result = evaluate([os_update(1), os_update(3, bundle=(1, 9))], inventory())
    assert offered(result) == [uid(3)]
    assert result.warnings == (
        f"dangling bundle member: {uid(3)} bundles {uid(9)}, which is not a candidate",
    )


def test_bundle_cycle_is_ignored_and_reported() -> None:
    cands = [os_update(1, bundle=(2,)), os_update(2, bundle=(1,))]
    result = evaluate(cands, inventory())
    assert offered(result) == []  # with the cycle ignored neither has a member
    assert result.warnings == (f"bundle cycle: {uid(1)} -> {uid(2)} -> {uid(1)} (ignored)",)


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_every_kind_of_problem_is_reported_whatever_the_order(order: tuple[int, ...]) -> None:
    cands = [
        os_update(1, supersedes=(2,), prerequisites=(7,)),
        os_update(2, supersedes=(1,), bundle=(8,)),
        os_update(3, prerequisites=(3 + 1,)),
    ]
    result = evaluate([cands[i] for i in order], inventory())
    assert [w.split(":")[0] for w in result.warnings] == [
        "dangling prerequisite",
        "dangling prerequisite",
        "supersedence cycle",
        "dangling bundle member",
    ]
