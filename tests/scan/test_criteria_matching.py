"""Evaluating parsed criteria against the search fields of one update (plain frozen records)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from criteria_helpers import OTHER_UUID, UUID, Update

from tidings.scan.criteria import parse_criteria

AVAILABLE = Update()
INSTALLED = Update(is_installed=True, is_present=True)
HIDDEN = Update(is_hidden=True)
DRIVER = Update(update_type="Driver", kind="driver", category_ids=frozenset({"driver"}))


def matches(criteria: str | None, update: Update) -> bool:
    return parse_criteria(criteria).matches(update)


def test_default_criteria_finds_only_updates_not_installed_and_not_hidden() -> None:
    assert matches(None, AVAILABLE)
    assert not matches(None, INSTALLED)
    assert not matches(None, HIDDEN)
    assert not matches("", replace(INSTALLED, is_hidden=True))


def test_every_term_of_an_and_group_must_hold() -> None:
    criteria = "IsInstalled=0 and Type='Software' and IsHidden=0"
    assert matches(criteria, AVAILABLE)
    assert not matches(criteria, DRIVER)
    assert not matches(criteria, HIDDEN)


def test_any_or_group_is_enough() -> None:
    criteria = "IsInstalled=1 or IsHidden=1"
    assert matches(criteria, INSTALLED)
    assert matches(criteria, HIDDEN)
    assert not matches(criteria, AVAILABLE)


def test_parenthesized_groups_select_software_and_drivers_alike() -> None:
    criteria = "(IsInstalled=0 and Type='Software') or (IsInstalled=0 and Type='Driver')"
    assert matches(criteria, AVAILABLE)
    assert matches(criteria, DRIVER)
    assert not matches(criteria, INSTALLED)


@pytest.mark.parametrize(
    ("criteria", "update"),
    [
        ("Type='SOFTWARE'", Update(update_type="Software")),
        ("Type='Software'", Update(update_type="software")),
        ("Kind='Definitions'", Update(kind="definitions")),
        (f"UpdateID='{UUID.upper()}'", Update(update_id=UUID)),
        (
            "DeploymentAction='optionalinstallation'",
            Update(deployment_action="OptionalInstallation"),
        ),
        ("CategoryIDs contains 'SECURITY'", Update(category_ids=frozenset({"security"}))),
    ],
)
def test_string_values_compare_case_insensitively(criteria: str, update: Update) -> None:
    assert matches(criteria, update)


def test_category_ids_contains_looks_for_one_member() -> None:
    update = Update(category_ids=frozenset({"security", "tidings-os-11", "os"}))
    assert matches("CategoryIDs contains 'tidings-os-11'", update)
    assert matches("CategoryIDs contains 'os' and CategoryIDs contains 'security'", update)
    assert not matches("CategoryIDs contains 'tidings-os'", update)
    assert not matches("CategoryIDs contains 'app'", update)


def test_not_equal_negates_booleans_and_strings() -> None:
    assert matches("IsHidden!=1 and Type!='Driver'", AVAILABLE)
    assert not matches("IsHidden!=0", AVAILABLE)
    assert matches(f"UpdateID!='{OTHER_UUID}'", AVAILABLE)
    assert not matches(f"UpdateID!='{UUID}'", AVAILABLE)
    assert matches("DeploymentAction!='Uninstallation'", AVAILABLE)


@pytest.mark.parametrize(
    ("term", "field"),
    [
        ("IsInstalled", "is_installed"),
        ("IsHidden", "is_hidden"),
        ("IsAssigned", "is_assigned"),
        ("IsPresent", "is_present"),
        ("BrowseOnly", "browse_only"),
        ("RebootRequired", "reboot_required"),
    ],
)
def test_each_boolean_term_reads_its_own_field(term: str, field: str) -> None:
    on = replace(AVAILABLE, **{field: True})  # type: ignore[arg-type]
    off = replace(AVAILABLE, **{field: False})  # type: ignore[arg-type]
    assert matches(f"{term}=1", on)
    assert not matches(f"{term}=1", off)
    assert matches(f"{term}=0", off)
    assert not matches(f"{term}!=0", off)


def test_revision_number_selects_one_revision_of_one_update() -> None:
    criteria = f"UpdateID='{UUID}' and RevisionNumber=3"
    assert matches(criteria, Update(update_id=UUID, revision=3))
    assert not matches(criteria, Update(update_id=UUID, revision=4))
    assert not matches(criteria, Update(update_id=OTHER_UUID, revision=3))


def test_kind_selects_our_update_kinds() -> None:
    assert matches("Kind='driver' and Type='Driver'", DRIVER)
    assert not matches("Kind='os'", DRIVER)
    assert matches("Kind='os' or Kind='driver'", DRIVER)


def test_contradictory_terms_in_one_group_match_nothing() -> None:
    criteria = "IsInstalled=0 and IsInstalled=1"
    assert not matches(criteria, AVAILABLE)
    assert not matches(criteria, INSTALLED)


def test_a_group_without_deployment_action_finds_only_installation_updates() -> None:
    optional = Update(deployment_action="OptionalInstallation")
    removal = Update(deployment_action="Uninstallation")
    assert not matches(None, optional)
    assert not matches("IsInstalled=0", removal)
    assert matches("IsInstalled=0 and DeploymentAction='OptionalInstallation'", optional)
    assert matches("DeploymentAction!='Installation'", removal)


def test_deployment_action_is_implied_per_group_not_per_criteria() -> None:
    optional = Update(deployment_action="OptionalInstallation")
    criteria = "DeploymentAction='Uninstallation' or IsInstalled=0"
    assert not matches(criteria, optional)
    assert matches(criteria, Update(deployment_action="Uninstallation", is_installed=True))
    assert matches(criteria, AVAILABLE)
