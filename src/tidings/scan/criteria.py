"""The search-criteria grammar of ``IUpdateSearcher.Search``, parsed and evaluated (pure).

A criteria string such as ``IsInstalled=0 and Type='Software'`` selects updates the way
Windows Update Agent's searcher does (docs/architecture.md, "The flow"). This module owns the
grammar: a hand-written tokenizer and recursive-descent parser, the tree they produce (a disjunction
of conjunctions, ``Criteria``), its canonical serialization, and the matcher that evaluates the tree
against the fields of one update (``SearchFields``). The grammar is described for users in
docs/search.md.

Invariants: ``parse_criteria`` never raises anything but ``CriteriaError``, whose message is
one line naming the 0-based position, what was expected and what was found; input is bounded
(characters, terms, nesting); ``parse_criteria(str(c)) == c`` for every parsed ``c``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NoReturn, Protocol

from tidings.errors import CriteriaError

DEFAULT_CRITERIA = "IsInstalled=0 and IsHidden=0"
MAX_CRITERIA_CHARS = 4096  # characters
MAX_TERMS = 256
MAX_NESTING = 32  # levels of parentheses
REVISION_MAX = 2**31 - 1  # a revision number is a signed 32-bit LONG in WUA
IMPLIED_DEPLOYMENT_ACTION = "Installation"  # in every group that does not name one (WUA)
MAX_SHOWN_CHARS = 40  # characters of an offending token quoted in a message

_SPACE = frozenset(" \t\r\n\f\v")
_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_OPERATOR_CHARS = frozenset("=!<>")
_KEYWORDS = frozenset({"and", "or", "contains"})
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class SearchFields(Protocol):
    """What an evaluated update exposes to the matcher (docs/search.md maps each term)."""

    @property
    def update_type(self) -> str: ...  # "Software" or "Driver"
    @property
    def kind(self) -> str: ...  # "os" | "app" | "driver" | "definitions" | "store"
    @property
    def is_installed(self) -> bool: ...
    @property
    def is_hidden(self) -> bool: ...
    @property
    def is_assigned(self) -> bool: ...
    @property
    def is_present(self) -> bool: ...
    @property
    def browse_only(self) -> bool: ...
    @property
    def reboot_required(self) -> bool: ...
    @property
    def update_id(self) -> str: ...  # canonical lowercase UUID
    @property
    def revision(self) -> int: ...
    @property
    def category_ids(self) -> frozenset[str]: ...  # lower-case
    @property
    def deployment_action(self) -> str: ...  # "Installation" | "Uninstallation" | ...


@dataclass(frozen=True)
class Term:
    """One comparison, e.g. ``IsInstalled=0``; ``position`` is where its name starts."""

    name: str  # canonical case, e.g. "IsInstalled"
    op: str  # "=", "!=" or "contains"
    value: str | int  # canonical: 0/1 for booleans, lower-case UUIDs and category ids
    position: int = field(default=0, compare=False)

    def __str__(self) -> str:
        shown = str(self.value) if isinstance(self.value, int) else f"'{self.value}'"
        if self.op == "contains":
            return f"{self.name} contains {shown}"
        return f"{self.name}{self.op}{shown}"


@dataclass(frozen=True)
class Criteria:
    """A parsed criteria string: an OR of AND-groups, as WUA allows (docs/search.md).

    Build one with ``parse_criteria``; a hand-built tree must use canonical names and values
    for ``str`` to round-trip.
    """

    groups: tuple[tuple[Term, ...], ...]

    def __post_init__(self) -> None:
        if not self.groups or not all(self.groups):
            raise ValueError("Criteria needs at least one group and no empty group")

    def matches(self, update: SearchFields) -> bool:
        """Whether ``update`` satisfies every term of at least one group.

        As in WUA, a group without a ``DeploymentAction`` term implies
        ``DeploymentAction='Installation'``.
        """
        return any(_group_matches(group, update) for group in self.groups)

    def __str__(self) -> str:
        if len(self.groups) == 1:
            return " and ".join(map(str, self.groups[0]))
        return " or ".join(_group_text(group) for group in self.groups)


def _group_text(group: tuple[Term, ...]) -> str:
    text = " and ".join(map(str, group))
    return f"({text})" if len(group) > 1 else text


def parse_criteria(text: str | None) -> Criteria:
    """Parse a WUA-style criteria string; ``None``, empty or blank means ``DEFAULT_CRITERIA``.

    Args:
        text: e.g. ``"IsInstalled=0 and Type='Software' or IsHidden=1"``.

    Returns:
        The tree, with canonical term names and values.

    Raises:
        CriteriaError: the text is too long, has an unknown term, a wrong operator or value,
            an unterminated string, unbalanced or empty parentheses, an ``or`` inside
            parentheses, a ``RevisionNumber`` without ``UpdateID=``, too many terms, or
            trailing input.
    """
    if text is not None and len(text) > MAX_CRITERIA_CHARS:
        problem = f"criteria too long: at most {MAX_CRITERIA_CHARS} characters, got {len(text)}"
        raise CriteriaError(MAX_CRITERIA_CHARS, problem)
    if text is None or all(ch in _SPACE for ch in text):
        text = DEFAULT_CRITERIA
    groups = _Parser(text).parse()
    _check_revision_numbers(groups)
    return Criteria(groups)


def _check_revision_numbers(groups: tuple[tuple[Term, ...], ...]) -> None:
    # WUA: "RevisionNumber ... can only be used with UpdateID" (in the same AND group).
    for group in groups:
        has_id = any(t.name == "UpdateID" and t.op == "=" for t in group)
        for term in group:
            if term.name == "RevisionNumber" and not has_id:
                problem = "RevisionNumber can only be used with UpdateID='...' in the same group"
                raise CriteriaError(term.position, problem)


# --- terms: names, operators, values, evaluation -----------------------------------------------

_Reader = Callable[["_Token", str], "str | int"]
_Compare = Callable[[object, "str | int"], bool]


@dataclass(frozen=True)
class _TermSpec:
    name: str
    ops: tuple[str, ...]
    read: _Reader
    get: Callable[[SearchFields], object]
    compare: _Compare


def _fail(token: _Token, problem: str) -> NoReturn:
    raise CriteriaError(token.position, problem)


def _read_bool(token: _Token, op: str) -> int:
    if token.kind == "word" and token.text in ("0", "1"):
        return int(token.text)
    hint = " (write 0 or 1 without quotes)" if token.kind == "string" else ""
    _fail(token, f"expected 0 or 1 after '{op}', got {token.shown()}{hint}")


def _read_revision(token: _Token, op: str) -> int:
    text = token.text
    digits = token.kind == "word" and text.isascii() and text.isdigit()
    if digits and len(text.lstrip("0")) <= len(str(REVISION_MAX)) and int(text) <= REVISION_MAX:
        return int(text)
    what = f"a revision number from 0 to {REVISION_MAX}"
    _fail(token, f"expected {what} after '{op}', got {token.shown()}{_unquoted_hint(token)}")


def _unquoted_hint(token: _Token) -> str:
    return " (write numbers without quotes)" if token.kind == "string" else ""


def _quoted_hint(token: _Token) -> str:
    return " (values are written in single quotes)" if token.kind == "word" else ""


def _choice_reader(*choices: str) -> _Reader:
    canonical = {choice.lower(): choice for choice in choices}
    listed = " or ".join(f"'{c}'" for c in choices)
    if len(choices) > 2:
        listed = "one of " + ", ".join(f"'{c}'" for c in choices)

    def read(token: _Token, op: str) -> str:
        if token.kind == "string" and token.text.lower() in canonical:
            return canonical[token.text.lower()]
        _fail(token, f"expected {listed} after '{op}', got {token.shown()}{_quoted_hint(token)}")

    return read


def _read_uuid(token: _Token, op: str) -> str:
    if token.kind == "string" and _UUID.fullmatch(token.text.lower()):
        return token.text.lower()
    what = "a quoted UUID such as '3f0a1c52-6a77-4c4e-9a53-2f1e0b3c4d5e'"
    _fail(token, f"expected {what} after '{op}', got {token.shown()}{_quoted_hint(token)}")


def _read_category(token: _Token, op: str) -> str:
    if token.kind == "string" and token.text:
        return token.text.lower()
    what = "a non-empty quoted category id"
    _fail(token, f"expected {what} after '{op}', got {token.shown()}{_quoted_hint(token)}")


def _same_bool(actual: object, value: str | int) -> bool:
    return bool(actual) == bool(value)


def _same_text(actual: object, value: str | int) -> bool:
    return str(actual).lower() == str(value).lower()


def _same_int(actual: object, value: str | int) -> bool:
    return actual == value


def _contains(actual: object, value: str | int) -> bool:
    # SearchFields.category_ids is lower-case by contract; values are lowered when parsed.
    return isinstance(actual, frozenset) and str(value).lower() in actual


_EQ = ("=", "!=")
_SPECS = (
    _TermSpec("Type", _EQ, _choice_reader("Software", "Driver"), lambda u: u.update_type,
              _same_text),
    _TermSpec("Kind", _EQ, _choice_reader("os", "app", "driver", "definitions", "store"),
              lambda u: u.kind, _same_text),
    _TermSpec("IsInstalled", _EQ, _read_bool, lambda u: u.is_installed, _same_bool),
    _TermSpec("IsHidden", _EQ, _read_bool, lambda u: u.is_hidden, _same_bool),
    _TermSpec("IsAssigned", _EQ, _read_bool, lambda u: u.is_assigned, _same_bool),
    _TermSpec("IsPresent", _EQ, _read_bool, lambda u: u.is_present, _same_bool),
    _TermSpec("BrowseOnly", _EQ, _read_bool, lambda u: u.browse_only, _same_bool),
    _TermSpec("RebootRequired", _EQ, _read_bool, lambda u: u.reboot_required, _same_bool),
    _TermSpec("UpdateID", _EQ, _read_uuid, lambda u: u.update_id, _same_text),
    _TermSpec("RevisionNumber", ("=",), _read_revision, lambda u: u.revision, _same_int),
    _TermSpec("CategoryIDs", ("contains",), _read_category, lambda u: u.category_ids,
              _contains),
    _TermSpec("DeploymentAction", _EQ,
              _choice_reader("Installation", "Uninstallation", "OptionalInstallation",
                             "Detection"),
              lambda u: u.deployment_action, _same_text),
)  # fmt: skip
_TERMS = {spec.name.lower(): spec for spec in _SPECS}
TERM_NAMES = tuple(spec.name for spec in _SPECS)


def _group_matches(group: tuple[Term, ...], update: SearchFields) -> bool:
    # MS-UAMG 3.38.4.11: "If this criterion is not specified, the search operation MUST
    # return only updates with a DeploymentAction of 'Installation'" (per and-group).
    names_action = any(term.name == "DeploymentAction" for term in group)
    if not names_action and update.deployment_action.lower() != IMPLIED_DEPLOYMENT_ACTION.lower():
        return False
    return all(_term_matches(term, update) for term in group)


def _term_matches(term: Term, update: SearchFields) -> bool:
    spec = _TERMS[term.name.lower()]
    result = spec.compare(spec.get(update), term.value)
    return not result if term.op == "!=" else result


# --- tokenizer ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "string", "op", "(", ")" or "end"
    text: str  # for a string, the characters between the quotes
    position: int

    def shown(self) -> str:
        """The token as a message quotes it: short, escaped, on one line."""
        if self.kind == "end":
            return "end of input"
        text = self.text
        clipped = "".join(
            ch if ch.isprintable() else repr(ch)[1:-1] for ch in text[:MAX_SHOWN_CHARS]
        )
        if len(text) > MAX_SHOWN_CHARS:
            clipped = f"{clipped}..."
        return f"'{clipped}'"

    def is_keyword(self, word: str) -> bool:
        return self.kind == "word" and self.text.lower() == word


def _tokens(text: str) -> Iterator[_Token]:
    """Yield tokens lazily, so the leftmost error is the one reported."""
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _SPACE:
            i += 1
        if i == n:
            yield _Token("end", "", n)
            return
        ch = text[i]
        if ch in "()":
            yield _Token(ch, ch, i)
            end = i + 1
        elif ch == "'":
            end = _string_end(text, i)
            yield _Token("string", text[i + 1 : end - 1], i)
        elif ch in _WORD_CHARS or ch in _OPERATOR_CHARS or _is_negative_number(text, i):
            chars = _OPERATOR_CHARS if ch in _OPERATOR_CHARS else _WORD_CHARS
            end = i + 1
            while end < n and text[end] in chars:
                end += 1
            yield _Token("word" if chars is _WORD_CHARS else "op", text[i:end], i)
        else:
            shown = _Token("op", ch, i).shown()
            raise CriteriaError(i, f"expected a term, an operator or a value, got {shown}")
        i = end


def _is_negative_number(text: str, i: int) -> bool:
    # WUA's integers may be negative ("-1"): read it as one value, to name it in the error.
    return text.startswith("-", i) and i + 1 < len(text) and text[i + 1] in "0123456789"


def _string_end(text: str, start: int) -> int:
    """The index just after the closing quote of the string opened at ``start``."""
    close = text.find("'", start + 1)
    if close < 0:
        raise CriteriaError(start, "unterminated string: no closing ' for this quote")
    for offset, ch in enumerate(text[start + 1 : close], start + 1):
        if not ch.isprintable():
            shown = repr(ch)[1:-1]
            raise CriteriaError(offset, f"control character '{shown}' inside a quoted value")
    if text.startswith("'", close + 1):
        # WUA has no escape for a quote: '' would silently split the value in two.
        raise CriteriaError(close, "a quoted value cannot contain ' ('' is not an escape)")
    return close + 1


# --- parser ------------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the grammar of MS-UAMG 3.38.4.11 (EBNF in docs/search.md).

    ``criteria := group ('or' group)*``, ``group := factor ('and' factor)*``,
    ``factor := term | '(' group ')'``: parentheses hold and-groups only, so an ``or`` can
    only ever be at the top level.
    """

    def __init__(self, text: str) -> None:
        self._tokens = _tokens(text)
        self._token = next(self._tokens)
        self._terms = 0
        self._depth = 0

    def parse(self) -> tuple[tuple[Term, ...], ...]:
        groups = [self._group(after=None)]
        while self._token.is_keyword("or"):
            self._advance()
            groups.append(self._group(after="or"))
        token = self._token
        if token.kind == ")":
            _fail(token, "unbalanced ')': there is no '(' for it to close")
        if token.kind != "end":
            _fail(token, f"expected 'and', 'or' or end of input, got {token.shown()}")
        return tuple(groups)

    def _advance(self) -> _Token:
        token = self._token
        if token.kind != "end":
            self._token = next(self._tokens)
        return token

    def _group(self, after: str | None) -> tuple[Term, ...]:
        terms = self._factor(after)
        while self._token.is_keyword("and"):
            self._advance()
            terms += self._factor(after="and")
        return terms

    def _factor(self, after: str | None) -> tuple[Term, ...]:
        token = self._token
        if token.kind == "(":
            return self._parenthesized()
        if token.kind == "word" and token.text.lower() not in _KEYWORDS:
            return (self._term(),)
        where = f" after '{after}'" if after else ""
        _fail(token, f"expected a term or '('{where}, got {token.shown()}")

    def _parenthesized(self) -> tuple[Term, ...]:
        opening = self._advance()
        if self._depth == MAX_NESTING:
            _fail(opening, f"parentheses nested too deeply: at most {MAX_NESTING} levels")
        if self._token.kind == ")":
            _fail(self._token, "empty group '()': expected a term inside the parentheses")
        self._depth += 1
        terms = self._group(after="(")
        self._depth -= 1
        closing = self._token
        if closing.is_keyword("or"):
            # WUA: "OR can be used only at the top level of the search criteria."
            _fail(closing, "'or' is only allowed at the top level, not inside parentheses")
        if closing.kind != ")":
            where = f"to close the '(' at position {opening.position}"
            _fail(closing, f"expected ')' {where}, got {closing.shown()}")
        self._advance()
        return terms

    def _term(self) -> Term:
        name = self._advance()
        spec = _TERMS.get(name.text.lower())
        if spec is None:
            _fail(name, f"unknown term {name.shown()}: expected one of {', '.join(TERM_NAMES)}")
        self._terms += 1
        if self._terms > MAX_TERMS:
            _fail(name, f"too many terms: at most {MAX_TERMS}")
        operator = self._token
        op = operator.text.lower()
        if operator.kind not in ("op", "word") or op not in spec.ops:
            expected = " or ".join(f"'{o}'" for o in spec.ops)
            _fail(operator, f"expected {expected} after '{spec.name}', got {operator.shown()}")
        self._advance()
        value = spec.read(self._advance(), op)
        return Term(spec.name, op, value, name.position)
