"""A typed reader over untrusted nested tables, raising one-line ``ManifestError``\\s.

Both the TOML authoring form and the signed JSON form are, once decoded, nested dicts and
lists of plain values. ``FieldReader`` pulls typed, bounded fields out of one table and names
the dotted field path in every error (``applicability.os.min_build``), so the same field rules
serve both forms. The two forms differ only in how a date is written (a TOML date or an ISO
``"YYYY-MM-DD"`` string) and in the word for a table ("table" or "object"), which ``Style``
selects.

Invariants: unknown keys are rejected when a table is opened, so typos never pass silently; a
reader never raises anything but ``ManifestError``; rendered values are truncated and escaped
so that every message is exactly one line.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Collection, Mapping
from enum import StrEnum
from typing import Literal, NoReturn, TypeVar

from tidings.errors import ManifestError
from tidings.manifest.model import Version

Style = Literal["toml", "json"]
Check = Callable[[str], "str | None"]
"""A format check on a string: returns the problem text, or None when the string is fine."""

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")

MAX_ITEMS = 1000
MAX_SHOWN_CHARS = 60
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MISSING = object()


def render(value: object, style: Style) -> str:
    """Show an offending value in a message: JSON-ish, short and on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if len(value) > MAX_SHOWN_CHARS:
            return f"{json.dumps(value[:MAX_SHOWN_CHARS])}... ({len(value)} characters)"
        return json.dumps(value)
    if isinstance(value, int):
        return str(value) if value.bit_length() <= 64 else "a very large integer"
    if isinstance(value, float):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return table_word(style)
    return f"a value of type {type(value).__name__}"


def table_word(style: Style) -> str:
    """``a table`` in TOML speak, ``an object`` in JSON speak."""
    return "a table" if style == "toml" else "an object"


def join_path(path: str, key: str) -> str:
    """``applicability`` + ``os`` -> ``applicability.os``; odd keys are shown quoted."""
    shown = key if _PLAIN_KEY.fullmatch(key) else render(key, "json")
    return f"{path}.{shown}" if path else shown


def check_text(
    value: str, *, max_len: int, multiline: bool = False, allow_empty: bool = False
) -> str | None:
    """The length and character rules shared by every string field; returns the problem."""
    if len(value) > max_len:
        return f"longer than {max_len} characters (got {len(value)})"
    if not value and not allow_empty:
        return "must not be empty"
    plain = value.replace("\n", "").replace("\r", "").replace("\t", "") if multiline else value
    if not plain.isprintable():
        allowed = "\n\r\t" if multiline else ""
        bad = next(i for i, ch in enumerate(value) if not ch.isprintable() and ch not in allowed)
        what = "a control" if multiline else "a line break or another control"
        return f"contains {what} or invisible character at position {bad}"
    return None


class _Invalid(Exception):
    """A value is wrong; the reader adds the source and the field path."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class FieldReader:
    """Typed access to the fields of one table, each error naming ``source`` and the path."""

    __slots__ = ("_data", "path", "source", "style")

    def __init__(
        self,
        data: Mapping[str, object],
        *,
        source: str,
        path: str,
        style: Style,
        fields: Collection[str],
    ) -> None:
        """Open a table and reject any key not in ``fields``.

        Raises:
            ManifestError: a key is not a string or is not one of ``fields``.
        """
        self._data = data
        self.source = source
        self.path = path
        self.style = style
        for key in data:
            if not isinstance(key, str):
                self.fail_at(path, f"field names must be strings, got {render(key, style)}")
            if key not in fields:
                self.fail_at(join_path(path, key), "unknown field")

    @classmethod
    def open(
        cls, data: object, *, source: str, path: str, style: Style, fields: Collection[str]
    ) -> FieldReader:
        """Open ``data`` as a table, or fail naming ``path`` when it is not one.

        Raises:
            ManifestError: ``data`` is not a table or has unknown keys.
        """
        if not isinstance(data, Mapping):
            where = path or "manifest"
            raise ManifestError(
                source, where, f"expected {table_word(style)}, got {render(data, style)}"
            )
        return cls(data, source=source, path=path, style=style, fields=fields)

    # --- plumbing -------------------------------------------------------------------------

    def field(self, key: str) -> str:
        """The dotted path of ``key`` in this table."""
        return join_path(self.path, key)

    def fail_at(self, field: str, problem: str) -> NoReturn:
        """Raise a ``ManifestError`` about the full dotted ``field`` path.

        Raises:
            ManifestError: always.
        """
        raise ManifestError(self.source, field, problem)

    def fail_item(self, key: str, index: int, problem: str) -> NoReturn:
        """Raise a ``ManifestError`` about item ``index`` of the array ``key``.

        Raises:
            ManifestError: always.
        """
        self.fail_at(f"{self.field(key)}[{index}]", problem)

    def fail(self, key: str, problem: str) -> NoReturn:
        """Raise a ``ManifestError`` about ``key`` in this table.

        Raises:
            ManifestError: always.
        """
        self.fail_at(self.field(key), problem)

    def has(self, key: str) -> bool:
        """Whether ``key`` is present with a value (JSON null counts as absent)."""
        return self._data.get(key) is not None

    def _get(self, key: str, optional: bool) -> object:
        value = self._data.get(key, _MISSING)
        if value is None and optional:
            return _MISSING
        if value is _MISSING and not optional:
            self.fail(key, "missing required field")
        return value

    def _expected(self, what: str, value: object) -> _Invalid:
        return _Invalid(f"expected {what}, got {render(value, self.style)}")

    # --- value converters (raise _Invalid) ------------------------------------------------

    def _as_text(
        self, value: object, max_len: int, multiline: bool, allow_empty: bool, check: Check | None
    ) -> str:
        if not isinstance(value, str):
            raise self._expected("a string", value)
        problem = check_text(value, max_len=max_len, multiline=multiline, allow_empty=allow_empty)
        if problem is None and check is not None:
            problem = check(value)
        if problem is not None:
            raise _Invalid(problem)
        return value

    def _as_int(self, value: object, low: int, high: int) -> int:
        # bool is an int subclass in Python but never an integer in a manifest.
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._expected("an integer", value)
        if not low <= value <= high:
            raise self._expected(f"an integer from {low} to {high}", value)
        return value

    def _as_version(self, value: object) -> Version:
        if not isinstance(value, str):
            raise self._expected("a dotted numeric version such as 10.0.22631.2428", value)
        try:
            return Version.parse(value)
        except ValueError as e:
            raise _Invalid(str(e)) from None

    def _as_date(self, value: object) -> datetime.date:
        if self.style == "toml":
            if type(value) is datetime.date:
                return value
            problem = f"expected a date such as 2026-11-10, got {render(value, self.style)}"
            if isinstance(value, str):
                problem += " (a TOML date is written without quotes)"
            raise _Invalid(problem)
        if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
            raise self._expected('a date "YYYY-MM-DD"', value)
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            raise _Invalid(f"not a valid calendar date: {render(value, self.style)}") from None

    # --- typed getters --------------------------------------------------------------------

    def _read(self, key: str, convert: Callable[[object], T], default: T | None) -> T:
        """Convert the value of ``key``; required unless ``default`` is given."""
        value = self._get(key, optional=default is not None)
        if value is _MISSING:
            assert default is not None  # _get only returns _MISSING for optional fields
            return default
        try:
            return convert(value)
        except _Invalid as e:
            self.fail(key, e.problem)

    def text(
        self,
        key: str,
        *,
        max_len: int = 200,
        default: str | None = None,
        multiline: bool = False,
        allow_empty: bool = False,
        check: Check | None = None,
    ) -> str:
        """A string field; required unless ``default`` is given.

        Raises:
            ManifestError: missing, not a string, too long, empty, or fails ``check``.
        """
        return self._read(
            key, lambda v: self._as_text(v, max_len, multiline, allow_empty, check), default
        )

    def maybe_text(
        self, key: str, *, max_len: int = 200, multiline: bool = False, check: Check | None = None
    ) -> str | None:
        """An optional string field: ``None`` when absent.

        Raises:
            ManifestError: present but not a valid string.
        """
        if not self.has(key):
            return None
        return self.text(key, max_len=max_len, multiline=multiline, check=check)

    def integer(self, key: str, *, low: int, high: int, default: int | None = None) -> int:
        """An integer field from ``low`` to ``high`` inclusive; ``true``/``false`` are refused.

        Raises:
            ManifestError: missing, not an integer (a bool is not one), or out of range.
        """
        return self._read(key, lambda v: self._as_int(v, low, high), default)

    def maybe_integer(self, key: str, *, low: int, high: int) -> int | None:
        """An optional integer field: ``None`` when absent.

        Raises:
            ManifestError: present but not an integer in range.
        """
        return self.integer(key, low=low, high=high) if self.has(key) else None

    def boolean(self, key: str, *, default: bool) -> bool:
        """A ``true``/``false`` field.

        Raises:
            ManifestError: present but not a boolean.
        """

        def convert(value: object) -> bool:
            if not isinstance(value, bool):
                raise self._expected("true or false", value)
            return value

        return self._read(key, convert, default)

    def choice(self, key: str, enum: type[E], *, default: E | None = None) -> E:
        """A field holding one of an enum's values.

        Raises:
            ManifestError: missing, or not one of the values.
        """

        def convert(value: object) -> E:
            for member in enum:
                if isinstance(value, str) and value == member.value:
                    return member
            raise self._expected(f"one of {', '.join(m.value for m in enum)}", value)

        return self._read(key, convert, default)

    def version(self, key: str) -> Version:
        """A required dotted numeric version written as a string.

        Raises:
            ManifestError: missing or not a valid version.
        """
        return self._read(key, self._as_version, None)

    def maybe_version(self, key: str) -> Version | None:
        """An optional version: ``None`` when absent.

        Raises:
            ManifestError: present but not a valid version.
        """
        return self.version(key) if self.has(key) else None

    def date(self, key: str) -> datetime.date:
        """A required calendar date (a TOML date, or ``"YYYY-MM-DD"`` in JSON).

        Raises:
            ManifestError: missing or not a date.
        """
        return self._read(key, self._as_date, None)

    def _array(self, key: str, max_items: int) -> list[object] | tuple[object, ...]:
        value = self._get(key, optional=True)
        if value is _MISSING:
            return ()
        if not isinstance(value, list | tuple):
            self.fail(key, f"expected an array, got {render(value, self.style)}")
        if len(value) > max_items:
            self.fail(key, f"more than {max_items} items (got {len(value)})")
        return value

    def texts(
        self,
        key: str,
        *,
        max_len: int = 200,
        check: Check | None = None,
        max_items: int = MAX_ITEMS,
    ) -> tuple[str, ...]:
        """An array of distinct strings, empty when absent.

        Raises:
            ManifestError: not an array, too many items, a bad item, or a duplicate item.
        """
        items: list[str] = []
        seen: set[str] = set()
        for index, value in enumerate(self._array(key, max_items)):
            where = f"{self.field(key)}[{index}]"
            try:
                item = self._as_text(value, max_len, False, False, check)
            except _Invalid as e:
                self.fail_at(where, e.problem)
            if item in seen:
                self.fail_at(where, f"duplicate item {render(item, self.style)}")
            seen.add(item)
            items.append(item)
        return tuple(items)

    def table(self, key: str, *, fields: Collection[str]) -> FieldReader | None:
        """A sub-table, ``None`` when absent.

        Raises:
            ManifestError: present but not a table, or it has unknown keys.
        """
        value = self._get(key, optional=True)
        if value is _MISSING:
            return None
        return FieldReader.open(
            value, source=self.source, path=self.field(key), style=self.style, fields=fields
        )

    def tables(
        self, key: str, *, fields: Collection[str], max_items: int = MAX_ITEMS
    ) -> tuple[FieldReader, ...]:
        """An array of sub-tables (TOML ``[[key]]``), empty when absent.

        Raises:
            ManifestError: not an array, too many items, or an item is not a valid table.
        """
        return tuple(
            FieldReader.open(
                value,
                source=self.source,
                path=f"{self.field(key)}[{index}]",
                style=self.style,
                fields=fields,
            )
            for index, value in enumerate(self._array(key, max_items))
        )
