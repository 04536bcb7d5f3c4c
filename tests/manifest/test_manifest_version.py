"""Version: dotted numeric versions parse strictly, print back exactly and order numerically."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.manifest import Version

parts_lists = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=6)


@pytest.mark.parametrize("text", ["10.0.22631.2428", "31.0.101.4502", "2.3", "0", "4294967295"])
def test_valid_version_prints_back_exactly(text: str) -> None:
    assert str(Version.parse(text)) == text


def test_trailing_zeros_are_equal_but_text_is_kept() -> None:
    short, long = Version.parse("2.3"), Version.parse("2.3.0.0")
    assert short == long
    assert hash(short) == hash(long)
    assert str(long) == "2.3.0.0"
    assert not short < long and short <= long and short >= long


def test_components_compare_numerically_not_as_text() -> None:
    assert Version.parse("2.9") < Version.parse("2.10")
    assert Version.parse("10.0.22631.2428") > Version.parse("10.0.22000.9999")
    assert Version.parse("1.0.1") > Version.parse("1")


@pytest.mark.parametrize(
    "text",
    [
        "", "1.", ".1", "1..2", "01", "1.02", "+1", "-1", " 1", "1 ", "1\n", "1_0", "1.2.3.4.5.6.7",
        "4294967296", "99999999999", "\u0661", "1.2a", "v1.2", "1,2", "0x10",
    ],
)  # fmt: skip
def test_malformed_version_is_rejected_with_one_line_value_error(text: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        Version.parse(text)
    assert "\n" not in str(excinfo.value)


def test_constructor_rejects_out_of_range_parts_and_bools() -> None:
    for parts in [(), (1, 2, 3, 4, 5, 6, 7), (-1,), (2**32,), (True,)]:
        with pytest.raises(ValueError):
            Version(parts)


def test_comparing_with_a_non_version_is_not_equal() -> None:
    assert Version.parse("1") != "1"


@given(parts_lists)
def test_parse_of_str_round_trips(parts: list[int]) -> None:
    version = Version(tuple(parts))
    again = Version.parse(str(version))
    assert again == version and again.parts == version.parts


def _strip(parts: list[int]) -> list[int]:
    while len(parts) > 1 and parts[-1] == 0:
        parts = parts[:-1]
    return parts


@given(parts_lists, parts_lists)
def test_order_is_numeric_tuple_order_ignoring_trailing_zeros(a: list[int], b: list[int]) -> None:
    va, vb = Version(tuple(a)), Version(tuple(b))
    ka, kb = _strip(a), _strip(b)
    assert (va < vb) == (ka < kb)
    assert (va == vb) == (ka == kb)
    assert (va > vb) == (ka > kb)
    assert (va <= vb) == (ka <= kb) and (va >= vb) == (ka >= kb)
    if va == vb:
        assert hash(va) == hash(vb)


@given(st.text(max_size=30))
def test_arbitrary_text_parses_or_raises_value_error(text: str) -> None:
    try:
        version = Version.parse(text)
    except ValueError:
        return
    assert str(version) == text
