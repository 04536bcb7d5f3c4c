"""Records and hypothesis strategies for the search-criteria tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from random import Random

from hypothesis import strategies as st

from tidings.scan.criteria import Criteria, SearchFields, Term

UUID = "3f0a1c52-6a77-4c4e-9a53-2f1e0b3c4d5e"
OTHER_UUID = "0b1e2d3c-4f5a-4b6c-8d7e-9f0a1b2c3d4e"

BOOLEAN_TERMS = (
    "IsInstalled", "IsHidden", "IsAssigned", "IsPresent", "BrowseOnly", "RebootRequired",
)  # fmt: skip
CHOICES = {
    "Type": ("Software", "Driver"),
    "Kind": ("os", "app", "driver", "definitions", "store"),
    "DeploymentAction": ("Installation", "Uninstallation", "OptionalInstallation", "Detection"),
}
SPACES = (" ", "  ", "\t", "\n", "\r\n", " \t ")


@dataclass(frozen=True)
class Update:
    """A plain record that satisfies ``SearchFields``: a not-installed, visible app update."""

    update_type: str = "Software"
    kind: str = "app"
    is_installed: bool = False
    is_hidden: bool = False
    is_assigned: bool = True
    is_present: bool = False
    browse_only: bool = False
    reboot_required: bool = False
    update_id: str = UUID
    revision: int = 1
    category_ids: frozenset[str] = field(default_factory=lambda: frozenset({"security", "app"}))
    deployment_action: str = "Installation"


_FROZEN_RECORDS_ARE_SEARCH_FIELDS: SearchFields = Update()  # checked by mypy


def T(name: str, op: str, value: str | int) -> Term:
    """A term whose position does not matter (positions are excluded from equality)."""
    return Term(name, op, value)


def one_group(*terms: Term) -> Criteria:
    return Criteria((terms,))


# --- strategies ------------------------------------------------------------------------------

category_ids = st.text(
    st.characters(codec="utf-8", exclude_characters="'", exclude_categories=("Cc", "Cs")),
    min_size=1,
    max_size=20,
).filter(lambda s: s.isprintable() and s.lower() == s)

uuids = st.uuids().map(str)


@st.composite
def terms(draw: st.DrawFn) -> Term:
    """A valid term with canonical name and value (RevisionNumber is added by ``groups``)."""
    name = draw(st.sampled_from((*BOOLEAN_TERMS, *CHOICES, "UpdateID", "CategoryIDs")))
    if name == "CategoryIDs":
        return T(name, "contains", draw(category_ids))
    op = draw(st.sampled_from(("=", "!=")))
    if name in BOOLEAN_TERMS:
        return T(name, op, draw(st.sampled_from((0, 1))))
    if name == "UpdateID":
        return T(name, op, draw(uuids))
    return T(name, op, draw(st.sampled_from(CHOICES[name])))


@st.composite
def groups(draw: st.DrawFn) -> tuple[Term, ...]:
    """An AND-group; RevisionNumber comes only with an UpdateID= term, as WUA requires."""
    group = draw(st.lists(terms(), min_size=1, max_size=5))
    if draw(st.booleans()):
        revision = T("RevisionNumber", "=", draw(st.integers(0, 2**31 - 1)))
        group.insert(draw(st.integers(0, len(group))), revision)
        if not any(t.name == "UpdateID" and t.op == "=" for t in group):
            group.insert(draw(st.integers(0, len(group))), T("UpdateID", "=", draw(uuids)))
    return tuple(group)


criteria_trees = st.lists(groups(), min_size=1, max_size=4).map(lambda gs: Criteria(tuple(gs)))


class _Noise:
    """Random case, whitespace and redundant parentheses, from one drawn ``Random``.

    One draw per example rather than one per character keeps generation fast; the failing
    text is still printed in full by hypothesis.
    """

    def __init__(self, rng: Random) -> None:
        self.rng = rng

    def case(self, text: str) -> str:
        return "".join(
            ch.swapcase() if ch.isascii() and self.rng.random() < 0.5 else ch for ch in text
        )

    def space(self, *, required: bool) -> str:
        return self.rng.choice(SPACES if required else ("", *SPACES))

    def parens(self, text: str) -> str:
        for _ in range(self.rng.choice((0, 0, 1, 2))):
            text = f"({self.space(required=False)}{text}{self.space(required=False)})"
        return text

    def keyword(self, word: str) -> str:
        return f"{self.space(required=True)}{self.case(word)}{self.space(required=True)}"

    def term(self, term: Term) -> str:
        if isinstance(term.value, int):
            zeros = "0" * self.rng.randint(0, 2) if term.name == "RevisionNumber" else ""
            value = f"{zeros}{term.value}"
        else:
            value = f"'{self.case(term.value)}'"
        if term.op == "contains":
            op = f"{self.space(required=True)}{self.case('contains')}{self.space(required=True)}"
        else:
            op = f"{self.space(required=False)}{term.op}{self.space(required=False)}"
        return f"{self.case(term.name)}{op}{value}"


@st.composite
def noisy_spellings(draw: st.DrawFn, criteria: Criteria) -> str:
    """``criteria`` written with random case, whitespace and redundant parentheses."""
    noise = _Noise(draw(st.randoms(use_true_random=False)))
    disjuncts = []
    for group in criteria.groups:
        conjuncts = [noise.parens(noise.term(term)) for term in group]
        disjuncts.append(noise.parens(noise.keyword("and").join(conjuncts)))
    text = noise.keyword("or").join(disjuncts)
    if len(disjuncts) == 1:  # parentheses hold and-groups only, never an 'or'
        text = noise.parens(text)
    return noise.space(required=False) + text + noise.space(required=False)
