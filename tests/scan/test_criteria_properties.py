"""Properties of the criteria grammar: canonical text round-trips, hostile text fails cleanly."""

from __future__ import annotations

from criteria_helpers import criteria_trees, noisy_spellings
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tidings.scan.criteria import Criteria, CriteriaError, parse_criteria

# Pieces of the grammar, so that random text gets past the tokenizer and reaches the parser.
FRAGMENTS = (
    "IsInstalled", "type", "RevisionNumber", "UpdateID", "CategoryIDs", "Kind", "contains",
    "and", "OR", "=", "!=", "<", "(", ")", "'", "0", "1", "7", "'Software'", "'os'", "'x'",
    "'3f0a1c52-6a77-4c4e-9a53-2f1e0b3c4d5e'", " ", "\t", "\n",
)  # fmt: skip


@settings(max_examples=150)
@given(criteria_trees)
def test_canonical_text_of_any_valid_tree_parses_back_to_it(criteria: Criteria) -> None:
    assert parse_criteria(str(criteria)) == criteria


@settings(max_examples=150)
@given(st.data())
def test_case_whitespace_and_parentheses_do_not_change_the_tree(data: st.DataObject) -> None:
    criteria = data.draw(criteria_trees)
    text = data.draw(noisy_spellings(criteria))
    assert parse_criteria(text) == criteria


def check_fails_cleanly(text: str) -> None:
    try:
        parse_criteria(text)
    except CriteriaError as error:
        assert 0 <= error.position <= len(text)
        assert "\n" not in str(error) and "\r" not in str(error)
        assert str(error) == f"criteria: position {error.position}: {error.problem}"


@settings(max_examples=500)
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200))
@example("IsInstalled=\u00b2")  # a Unicode digit that int() would accept
@example("'\u2028'")
def test_any_text_parses_or_raises_only_criteria_error(text: str) -> None:
    check_fails_cleanly(text)


@settings(max_examples=500)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join))
def test_any_jumble_of_grammar_pieces_parses_or_raises_only_criteria_error(text: str) -> None:
    check_fails_cleanly(text)


@given(st.text(st.sampled_from("() "), min_size=1, max_size=5000))
def test_any_parenthesis_soup_raises_only_criteria_error(text: str) -> None:
    check_fails_cleanly(text)
