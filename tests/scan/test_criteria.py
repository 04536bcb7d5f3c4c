"""The search-criteria grammar: the trees valid criteria parse to, and the one-line errors.

Criteria strings come from users, scripts and other applications over the local API
(docs/architecture.md, "The flow"), so every mistake must be one ``CriteriaError`` naming the
position, what was expected and what was found.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from criteria_helpers import OTHER_UUID, UUID, T, one_group

from tidings.errors import UsageError
from tidings.scan.criteria import (
    DEFAULT_CRITERIA,
    MAX_CRITERIA_CHARS,
    MAX_NESTING,
    MAX_TERMS,
    Criteria,
    CriteriaError,
    Term,
    parse_criteria,
)

NOT_INSTALLED = T("IsInstalled", "=", 0)
NOT_HIDDEN = T("IsHidden", "=", 0)
SOFTWARE = T("Type", "=", "Software")
DRIVER = T("Type", "=", "Driver")

VALID = [
    # The examples of the WUA documentation for IUpdateSearcher.Search.
    (
        "IsInstalled=0 and Type='Software' and IsHidden=0",
        one_group(NOT_INSTALLED, SOFTWARE, NOT_HIDDEN),
    ),
    (
        "IsInstalled=1 or IsHidden=1",
        Criteria(((T("IsInstalled", "=", 1),), (T("IsHidden", "=", 1),))),
    ),
    (
        "(IsInstalled=0 and Type='Software') or (IsInstalled=0 and Type='Driver')",
        Criteria(((NOT_INSTALLED, SOFTWARE), (NOT_INSTALLED, DRIVER))),
    ),
    (
        "IsInstalled=0 and Type='Software' or IsInstalled=0 and Type='Driver'",
        Criteria(((NOT_INSTALLED, SOFTWARE), (NOT_INSTALLED, DRIVER))),
    ),
    ("IsInstalled=0 and DeploymentAction='OptionalInstallation'",
     one_group(NOT_INSTALLED, T("DeploymentAction", "=", "OptionalInstallation"))),
    ("IsAssigned=1 and IsPresent=0 and BrowseOnly=0 and RebootRequired=1",
     one_group(T("IsAssigned", "=", 1), T("IsPresent", "=", 0), T("BrowseOnly", "=", 0),
               T("RebootRequired", "=", 1))),
    (f"UpdateID='{UUID}' and RevisionNumber=3",
     one_group(T("UpdateID", "=", UUID), T("RevisionNumber", "=", 3))),
    (f"RevisionNumber=3 and UpdateID='{UUID}'",
     one_group(T("RevisionNumber", "=", 3), T("UpdateID", "=", UUID))),
    (f"UpdateID!='{UUID}'", one_group(T("UpdateID", "!=", UUID))),
    ("CategoryIDs contains 'security'", one_group(T("CategoryIDs", "contains", "security"))),
    ("Kind='definitions' and IsHidden!=1",
     one_group(T("Kind", "=", "definitions"), T("IsHidden", "!=", 1))),
    # Case: names, keywords and values are case-insensitive and come out canonical.
    ("isinstalled=0 AND type='SOFTWARE' Or ISHIDDEN=1",
     Criteria(((NOT_INSTALLED, SOFTWARE), (T("IsHidden", "=", 1),)))),
    (f"UPDATEID='{UUID.upper()}' and revisionnumber=0",
     one_group(T("UpdateID", "=", UUID), T("RevisionNumber", "=", 0))),
    ("CATEGORYIDS CONTAINS 'Tidings-OS-11'",
     one_group(T("CategoryIDs", "contains", "tidings-os-11"))),
    ("kind='OS' and deploymentaction='detection'",
     one_group(T("Kind", "=", "os"), T("DeploymentAction", "=", "Detection"))),
    # Whitespace is flexible, and a revision may have leading zeros.
    ("  IsInstalled = 0\tand\n\tIsHidden=0  ", one_group(NOT_INSTALLED, NOT_HIDDEN)),
    (f"UpdateID = '{UUID}' and RevisionNumber = 007",
     one_group(T("UpdateID", "=", UUID), T("RevisionNumber", "=", 7))),
    # Parentheses around and-groups, around terms and around the whole criteria.
    ("((IsInstalled=0))", one_group(NOT_INSTALLED)),
    ("(IsInstalled=0) and (IsHidden=0)", one_group(NOT_INSTALLED, NOT_HIDDEN)),
    ("(IsInstalled=0 and IsHidden=0) and Type='Driver'",
     one_group(NOT_INSTALLED, NOT_HIDDEN, DRIVER)),
    ("((Type='Driver')) or (Kind='os') or Kind='app'",
     Criteria(((DRIVER,), (T("Kind", "=", "os"),), (T("Kind", "=", "app"),)))),
    # The same term twice is evaluated as written, even when contradictory.
    ("IsInstalled=0 and IsInstalled=1", one_group(NOT_INSTALLED, T("IsInstalled", "=", 1))),
    # No criteria means WUA's default.
    ("", one_group(NOT_INSTALLED, NOT_HIDDEN)),
    (" \t\n", one_group(NOT_INSTALLED, NOT_HIDDEN)),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[t for t, _ in VALID])
def test_valid_criteria_parse_to_the_expected_tree(text: str, expected: Criteria) -> None:
    assert parse_criteria(text) == expected


def test_no_criteria_means_not_installed_and_not_hidden() -> None:
    assert DEFAULT_CRITERIA == "IsInstalled=0 and IsHidden=0"
    assert parse_criteria(None) == parse_criteria(DEFAULT_CRITERIA)


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[t for t, _ in VALID])
def test_canonical_text_parses_back_to_the_same_tree(text: str, expected: Criteria) -> None:
    assert parse_criteria(str(parse_criteria(text))) == expected


def test_canonical_text_parenthesizes_and_groups_only_inside_an_or() -> None:
    parsed = parse_criteria(" isinstalled = 0 AND type = 'software' or (ishidden=1) ")
    assert str(parsed) == "(IsInstalled=0 and Type='Software') or IsHidden=1"
    assert str(parse_criteria("(CategoryIDs  CONTAINS 'X')")) == "CategoryIDs contains 'x'"


def test_terms_remember_where_they_start_but_equality_ignores_it() -> None:
    parsed = parse_criteria("IsInstalled=0 and  Type='Driver'")
    assert [t.position for t in parsed.groups[0]] == [0, 19]
    assert Term("Type", "=", "Driver", position=19) == Term("Type", "=", "Driver", position=3)


NESTED_OR = "'or' is only allowed at the top level, not inside parentheses"
NEEDS_UPDATE_ID = "RevisionNumber can only be used with UpdateID='...' in the same group"
TERM_LIST = (
    "Type, Kind, IsInstalled, IsHidden, IsAssigned, IsPresent, BrowseOnly, RebootRequired, "
    "UpdateID, RevisionNumber, CategoryIDs, DeploymentAction"
)
UUID_EXAMPLE = "a quoted UUID such as '3f0a1c52-6a77-4c4e-9a53-2f1e0b3c4d5e'"

INVALID = [
    # Bad values for the term.
    ("IsInstalled=2", 12, "expected 0 or 1 after '=', got '2'"),
    ("IsInstalled=0 and IsHidden=yes", 27, "expected 0 or 1 after '=', got 'yes'"),
    ("IsHidden!='1'", 10, "expected 0 or 1 after '!=', got '1' (write 0 or 1 without quotes)"),
    ("IsInstalled=", 12, "expected 0 or 1 after '=', got end of input"),
    ("IsInstalled=0and IsHidden=0", 12, "expected 0 or 1 after '=', got '0and'"),
    ("Type='Firmware'", 5, "expected 'Software' or 'Driver' after '=', got 'Firmware'"),
    ("Type=Software", 5,
     "expected 'Software' or 'Driver' after '=', got 'Software' (values are written in single "
     "quotes)"),
    ("Kind='OSes'", 5,
     "expected one of 'os', 'app', 'driver', 'definitions', 'store' after '=', got 'OSes'"),
    ("DeploymentAction='Install'", 17,
     "expected one of 'Installation', 'Uninstallation', 'OptionalInstallation', 'Detection' "
     "after '=', got 'Install'"),
    ("UpdateID='x' and RevisionNumber=3", 9, f"expected {UUID_EXAMPLE} after '=', got 'x'"),
    ("UpdateID='{" + UUID + "}'", 9,
     f"expected {UUID_EXAMPLE} after '=', got '{{{UUID}}}'"),
    (f"UpdateID='{UUID}' and RevisionNumber=-1", 67,
     "expected a revision number from 0 to 2147483647 after '=', got '-1'"),
    ("IsInstalled=-0", 12, "expected 0 or 1 after '=', got '-0'"),
    ("IsInstalled=0 - 1", 14, "expected a term, an operator or a value, got '-'"),
    (f"UpdateID='{UUID}' and RevisionNumber=2147483648", 67,
     "expected a revision number from 0 to 2147483647 after '=', got '2147483648'"),
    (f"UpdateID='{UUID}' and RevisionNumber='3'", 67,
     "expected a revision number from 0 to 2147483647 after '=', got '3' (write numbers "
     "without quotes)"),
    ("CategoryIDs contains ''", 21, "expected a non-empty quoted category id after 'contains', "
     "got ''"),
    # Unknown terms and operators the term does not take.
    ("Foo=1", 0, f"unknown term 'Foo': expected one of {TERM_LIST}"),
    ("IsInstalled=0 and Title='x'", 18, f"unknown term 'Title': expected one of {TERM_LIST}"),
    ("IsInstalled<1", 11, "expected '=' or '!=' after 'IsInstalled', got '<'"),
    ("IsInstalled==1", 11, "expected '=' or '!=' after 'IsInstalled', got '=='"),
    ("IsInstalled contains 1", 12, "expected '=' or '!=' after 'IsInstalled', got 'contains'"),
    ("IsInstalled", 11, "expected '=' or '!=' after 'IsInstalled', got end of input"),
    ("CategoryIDs='x'", 11, "expected 'contains' after 'CategoryIDs', got '='"),
    (f"UpdateID='{UUID}' and RevisionNumber!=3", 66,
     "expected '=' after 'RevisionNumber', got '!='"),
    # Strings.
    ("Type='Software", 5, "unterminated string: no closing ' for this quote"),
    ("IsInstalled=0 and Type='Soft''ware'", 28, "a quoted value cannot contain ' ('' is not an "
     "escape)"),
    ("CategoryIDs contains 'a\nb'", 23, "control character '\\n' inside a quoted value"),
    ("IsInstalled=0 ; IsHidden=0", 14, "expected a term, an operator or a value, got ';'"),
    # Structure: dangling keywords, trailing input, parentheses.
    ("IsInstalled=0 and", 17, "expected a term or '(' after 'and', got end of input"),
    ("IsInstalled=0 or", 16, "expected a term or '(' after 'or', got end of input"),
    ("and IsInstalled=0", 0, "expected a term or '(', got 'and'"),
    ("IsInstalled=0 and or IsHidden=0", 18, "expected a term or '(' after 'and', got 'or'"),
    ("IsInstalled=0 IsHidden=0", 14, "expected 'and', 'or' or end of input, got 'IsHidden'"),
    ("=0", 0, "expected a term or '(', got '='"),
    ("()", 1, "empty group '()': expected a term inside the parentheses"),
    ("IsInstalled=0 and ()", 19, "empty group '()': expected a term inside the parentheses"),
    ("(IsInstalled=0", 14, "expected ')' to close the '(' at position 0, got end of input"),
    ("((IsInstalled=0) and IsHidden=0", 31,
     "expected ')' to close the '(' at position 0, got end of input"),
    ("IsInstalled=0)", 13, "unbalanced ')': there is no '(' for it to close"),
    (")", 0, "expected a term or '(', got ')'"),
    ("(IsInstalled=0))", 15, "unbalanced ')': there is no '(' for it to close"),
    ("(IsInstalled=0 IsHidden=0)", 15, "expected ')' to close the '(' at position 0, got "
     "'IsHidden'"),
    # 'or' nested inside an and-group.
    ("IsInstalled=0 and (Type='Software' or Type='Driver')", 35, NESTED_OR),
    ("(Type='Software' or Type='Driver') and IsInstalled=0", 17, NESTED_OR),
    ("IsHidden=0 or IsInstalled=0 and ((Type='Driver' or Kind='os'))", 48, NESTED_OR),
    # WUA's grammar puts only and-groups in parentheses: a parenthesized 'or' is nested too.
    ("(IsInstalled=1 or IsHidden=1)", 15, NESTED_OR),
    ("((Type='Driver') or (Kind='os' or Kind='app'))", 17, NESTED_OR),
    # RevisionNumber only in the same and-group as UpdateID=.
    ("RevisionNumber=3", 0, NEEDS_UPDATE_ID),
    (f"UpdateID!='{UUID}' and RevisionNumber=3", 53, NEEDS_UPDATE_ID),
    (f"UpdateID='{UUID}' or RevisionNumber=3", 51, NEEDS_UPDATE_ID),
]  # fmt: skip


@pytest.mark.parametrize(("text", "position", "problem"), INVALID, ids=[t for t, *_ in INVALID])
def test_invalid_criteria_are_one_line_naming_position_and_problem(
    text: str, position: int, problem: str
) -> None:
    with pytest.raises(CriteriaError) as caught:
        parse_criteria(text)
    assert (caught.value.position, caught.value.problem) == (position, problem)
    assert str(caught.value) == f"criteria: position {position}: {problem}"


def test_criteria_error_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"^criteria: position 12: expected 0 or 1"):
        parse_criteria("IsInstalled=2")


def test_revision_number_with_update_id_in_a_parenthesized_part_of_its_group_is_valid() -> None:
    parsed = parse_criteria(f"(UpdateID='{UUID}') and RevisionNumber=3")
    assert parsed == one_group(T("UpdateID", "=", UUID), T("RevisionNumber", "=", 3))


def test_each_or_group_needs_its_own_update_id_for_revision_number() -> None:
    text = f"UpdateID='{UUID}' and RevisionNumber=3 or UpdateID='{OTHER_UUID}' and RevisionNumber=1"
    assert len(parse_criteria(text).groups) == 2
    with pytest.raises(CriteriaError, match=NEEDS_UPDATE_ID):
        parse_criteria(f"UpdateID='{UUID}' and RevisionNumber=3 or RevisionNumber=1")


# --- bounds -----------------------------------------------------------------------------------


def test_over_long_criteria_is_refused_before_parsing() -> None:
    text = "IsInstalled=0 and " * 300
    with pytest.raises(CriteriaError) as caught:
        parse_criteria(text)
    assert caught.value.position == MAX_CRITERIA_CHARS
    assert caught.value.problem == (
        f"criteria too long: at most {MAX_CRITERIA_CHARS} characters, got {len(text)}"
    )


def test_criteria_of_exactly_the_maximum_length_is_accepted() -> None:
    text = "IsInstalled=0"
    text += " " * (MAX_CRITERIA_CHARS - len(text))
    assert parse_criteria(text) == one_group(NOT_INSTALLED)


def test_too_many_terms_are_refused_at_the_first_term_over_the_limit() -> None:
    term = "IsHidden=0"
    within = " and ".join([term] * MAX_TERMS)
    assert len(parse_criteria(within).groups[0]) == MAX_TERMS
    over = " or ".join([term] * (MAX_TERMS + 1))
    with pytest.raises(CriteriaError) as caught:
        parse_criteria(over)
    assert caught.value.position == over.rindex(term)
    assert caught.value.problem == f"too many terms: at most {MAX_TERMS}"


def test_deeply_nested_parentheses_are_refused_not_a_recursion_error() -> None:
    ok = "(" * MAX_NESTING + "IsHidden=0" + ")" * MAX_NESTING
    assert parse_criteria(ok) == one_group(NOT_HIDDEN)
    deep = "(" * 2000 + "IsHidden=0" + ")" * 2000
    with pytest.raises(CriteriaError) as caught:
        parse_criteria(deep)
    assert caught.value.position == MAX_NESTING
    assert caught.value.problem == f"parentheses nested too deeply: at most {MAX_NESTING} levels"


def test_long_offending_values_are_shortened_in_the_message() -> None:
    with pytest.raises(CriteriaError) as caught:
        parse_criteria(f"Type='{'x' * 500}'")
    assert caught.value.problem == f"expected 'Software' or 'Driver' after '=', got '{'x' * 40}...'"


# --- docs/search.md stays true ----------------------------------------------------------------

SEARCH_DOC = Path(__file__).parents[2] / "docs" / "search.md"


def test_every_error_in_the_search_doc_is_the_message_parse_criteria_gives() -> None:
    rows = re.findall(r"^\| `([^`]+)` \| `(criteria: [^`]+)` \|$", SEARCH_DOC.read_text(), re.M)
    assert len(rows) >= 10
    for text, message in rows:
        with pytest.raises(CriteriaError) as caught:
            parse_criteria(text)
        assert str(caught.value).startswith(message.removesuffix("...")), text


def test_every_example_in_the_search_doc_parses() -> None:
    doc = SEARCH_DOC.read_text()
    examples = doc[doc.index("## Examples") : doc.index("## Differences")]
    texts = re.findall(r"^\| `([^`]+)` \|", examples, re.M)
    assert "IsInstalled=1 or IsHidden=1" in texts
    for text in texts:
        assert parse_criteria(str(parse_criteria(text))) == parse_criteria(text)
