"""Hostile input to manifest_from_dict: every wrong value is one ManifestError line, never a crash.

A device parses this form out of signed metadata (docs/architecture.md, "Trust model"), and
signatures do not make a publisher's bytes well-formed: wrong types, oversized strings and lists,
bools posing as integers, bad hashes and path tricks in payload names must all be refused cleanly.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from manifest_helpers import valid_dict
from manifest_strategies import json_values

from tidings.errors import ManifestError
from tidings.manifest import manifest_from_dict

DELETE = object()
UUID = "3f0a1c52-6a77-4c4e-9a53-2f1e0b3c4d5e"
PIECE = "expected a power of two from 16384 to 16777216 bytes"
HEX = "expected 64 lowercase hex digits"
UNSAFE = 'not a safe file name (no path separators, control characters or :*?"<>|)'
DOTS = "not a safe file name (no leading dot, no trailing dot or space)"
LINE_BREAK = "contains a line break or another control or invisible character at position"
VERSION = "expected a dotted numeric version such as 10.0.22631.2428"


def mutated(path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    data = valid_dict()
    target: Any = data
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


def error_for(data: object) -> str:
    with pytest.raises(ManifestError) as excinfo:
        manifest_from_dict(data, source="m.json")
    message = str(excinfo.value)
    assert "\n" not in message and "\r" not in message
    return message


CASES: list[tuple[tuple[str | int, ...], object, str]] = [
    # schema first, so a newer manifest is never half-understood
    (("schema",), 2, "schema: unsupported schema version 2 (this build reads 1)"),
    (("schema",), "1", 'schema: expected an integer, got "1"'),
    (("schema",), True, "schema: expected an integer, got true"),
    (("schema",), DELETE, "schema: missing required field"),
    # bool is not an int, float is not an int
    (("revision",), True, "revision: expected an integer, got true"),
    (("revision",), 1.0, "revision: expected an integer, got 1.0"),
    (("revision",), 0, "revision: expected an integer from 1 to 2147483647, got 0"),
    (
        ("revision",),
        10**400,
        "revision: expected an integer from 1 to 2147483647, got a very large integer",
    ),
    (("revision",), None, "revision: expected an integer, got null"),
    (
        ("payloads", 0, "size"),
        -1,
        "payloads[0].size: expected an integer from 0 to 9223372036854775807, got -1",
    ),
    (("payloads", 0, "size"), False, "payloads[0].size: expected an integer, got false"),
    (
        ("payloads", 0, "piece_map_size"),
        -5,
        "payloads[0].piece_map_size: expected an integer from 0 to 9223372036854775807, got -5",
    ),
    (
        ("payloads", 0, "piece_size"),
        1000,
        f"payloads[0].piece_size: {PIECE}, got 1000",
    ),
    (
        ("payloads", 0, "piece_size"),
        2**25,
        f"payloads[0].piece_size: {PIECE}, got 33554432",
    ),
    (("install", "can_uninstall"), 1, "install.can_uninstall: expected true or false, got 1"),
    (
        ("install", "can_uninstall"),
        "true",
        'install.can_uninstall: expected true or false, got "true"',
    ),
    # bad hashes
    (
        ("payloads", 0, "sha256"),
        "A" * 64,
        f'payloads[0].sha256: {HEX}, got "{"A" * 60}"... (64 characters)',
    ),
    (
        ("payloads", 0, "sha256"),
        "ab",
        'payloads[0].sha256: expected 64 lowercase hex digits, got "ab"',
    ),
    (
        ("payloads", 0, "piece_map_sha256"),
        "g" * 64,
        f'payloads[0].piece_map_sha256: {HEX}, got "{"g" * 60}"... (64 characters)',
    ),
    # path tricks in payload names
    (
        ("payloads", 0, "name"),
        "../evil.bin",
        f'payloads[0].name: {UNSAFE}, got "../evil.bin"',
    ),
    (
        ("payloads", 0, "name"),
        "a\\b.bin",
        f'payloads[0].name: {UNSAFE}, got "a\\\\b.bin"',
    ),
    (
        ("payloads", 0, "name"),
        "..",
        f'payloads[0].name: {DOTS}, got ".."',
    ),
    (
        ("payloads", 0, "name"),
        ".bashrc",
        f'payloads[0].name: {DOTS}, got ".bashrc"',
    ),
    (
        ("payloads", 0, "name"),
        "a\x00b",
        f"payloads[0].name: {LINE_BREAK} 1",
    ),
    (
        ("payloads", 0, "name"),
        "C:evil",
        f'payloads[0].name: {UNSAFE}, got "C:evil"',
    ),
    (
        ("payloads", 0, "name"),
        "con.txt",
        'payloads[0].name: not a safe file name (not a reserved device name), got "con.txt"',
    ),
    (("payloads", 0, "name"), "x" * 201, "payloads[0].name: longer than 200 characters (got 201)"),
    (("payloads", 0, "name"), "", "payloads[0].name: must not be empty"),
    # wrong types at every level
    (("applicability",), [], "applicability: expected an object, got an array"),
    (
        ("applicability", "os"),
        "tidings-os-11",
        'applicability.os: expected an object, got "tidings-os-11"',
    ),
    (
        ("applicability", "installed"),
        {},
        "applicability.installed: expected an array, got an object",
    ),
    (
        ("applicability", "installed", 0),
        "contoso",
        'applicability.installed[0]: expected an object, got "contoso"',
    ),
    (
        ("applicability", "installed", 0, "min_version"),
        1,
        f"applicability.installed[0].min_version: {VERSION}, got 1",
    ),
    (
        ("applicability", "driver", "hardware_ids"),
        "PCI\\VEN_1",
        'applicability.driver.hardware_ids: expected an array, got "PCI\\\\VEN_1"',
    ),
    (
        ("applicability", "driver", "hardware_ids", 0),
        7,
        "applicability.driver.hardware_ids[0]: expected a string, got 7",
    ),
    (("payloads",), {"name": "x"}, "payloads: expected an array, got an object"),
    (("payloads", 0), 3, "payloads[0]: expected an object, got 3"),
    (("eula",), "Terms", 'eula: expected an object, got "Terms"'),
    (("kb",), "KB1", 'kb: expected an array, got "KB1"'),
    (("title",), ["a"], "title: expected a string, got an array"),
    (
        ("kind",),
        "firmware",
        'kind: expected one of os, app, driver, definitions, store, got "firmware"',
    ),
    (("kind",), None, "kind: expected one of os, app, driver, definitions, store, got null"),
    # unknown fields at every level
    (("titel",), "x", "titel: unknown field"),
    (("applicability", "os", "min_buidl"), 1, "applicability.os.min_buidl: unknown field"),
    (("payloads", 0, "path"), "../x", "payloads[0].path: unknown field"),
    (("install", "reboot\nnow"), 1, 'install."reboot\\nnow": unknown field'),
    # oversized strings and lists
    (("title",), "t" * 301, "title: longer than 300 characters (got 301)"),
    (("description",), "d" * 20_001, "description: longer than 20000 characters (got 20001)"),
    (("eula", "text"), "e" * 200_001, "eula.text: longer than 200000 characters (got 200001)"),
    (("categories",), ["c"] * 1001, "categories: more than 1000 items (got 1001)"),
    (("payloads",), [{}] * 1001, "payloads: more than 1000 items (got 1001)"),
    (
        ("applicability", "installed"),
        [{}] * 1001,
        "applicability.installed: more than 1000 items (got 1001)",
    ),
    (("categories",), ["a", "a"], 'categories[1]: duplicate item "a"'),
    (
        ("title",),
        "two\nlines",
        f"title: {LINE_BREAK} 3",
    ),
    (
        ("title",),
        "\u202eevil",
        f"title: {LINE_BREAK} 0",
    ),
    (
        ("eula", "text"),
        "ok\x1b[2J",
        "eula.text: contains a control or invisible character at position 2",
    ),
    (("title",), "", "title: must not be empty"),
    # formats
    (("id",), "123", 'id: expected a UUID, got "123"'),
    (("id",), UUID.upper(), f'id: expected a UUID in lowercase, got "{UUID.upper()}"'),
    (("kb",), ["5031354"], 'kb[0]: expected a KB number such as KB5031354, got "5031354"'),
    (("cves",), ["CVE-26-1"], 'cves[0]: expected a CVE id such as CVE-2026-1234, got "CVE-26-1"'),
    (("release_date",), "2026-1-1", 'release_date: expected a date "YYYY-MM-DD", got "2026-1-1"'),
    (("release_date",), "20261110", 'release_date: expected a date "YYYY-MM-DD", got "20261110"'),
    (("release_date",), "2026-02-30", 'release_date: not a valid calendar date: "2026-02-30"'),
    (
        ("applicability", "driver", "version"),
        "31.01",
        f'applicability.driver.version: {VERSION}, got "31.01"',
    ),
    (
        ("applicability", "os", "architectures"),
        ["mips"],
        'applicability.os.architectures[0]: expected one of x86, x64, arm64, got "mips"',
    ),
    (
        ("products",),
        ["bad name"],
        'products[0]: expected a name of letters, digits and . _ + - (at most 128), got "bad name"',
    ),
    # ranges and consistency
    (
        ("applicability", "os", "max_build"),
        1,
        "applicability.os.max_build: must not be smaller than min_build 22000",
    ),
    (
        ("applicability", "installed", 0, "max_version"),
        "1.0.0",
        "applicability.installed[0].max_version: "
        "must be greater than min_version 1.0 (it is exclusive)",
    ),
    (("applicability", "driver"), None, 'applicability.driver: required when kind is "driver"'),
    (
        ("applicability", "store"),
        {"package": "Contoso.Notes", "version": "2.3"},
        'applicability.store: allowed only when kind is "store"',
    ),
    (("supersedes",), [UUID], "supersedes[0]: an update cannot supersede itself"),
    (("prerequisites",), [UUID], "prerequisites[0]: an update cannot require itself"),
    (("bundle",), [UUID], "bundle[0]: a bundle cannot contain itself"),
    (
        ("payloads",),
        [],
        'payloads: at least one payload is required unless "bundle" lists member updates',
    ),
]


@pytest.mark.parametrize(("path", "value", "expected"), CASES)
def test_hostile_value_is_rejected_with_exact_message(
    path: tuple[str | int, ...], value: object, expected: str
) -> None:
    assert error_for(mutated(path, value)) == f"m.json: {expected}"


@pytest.mark.parametrize("data", [None, [], "manifest", 1, True, b"{}"])
def test_top_level_that_is_not_an_object_is_rejected(data: object) -> None:
    assert error_for(data).startswith("m.json: manifest: expected an object, got ")


def test_non_string_key_is_rejected() -> None:
    data: dict[Any, Any] = valid_dict()
    data[1] = "x"
    assert error_for(data) == "m.json: field names must be strings, got 1"


def test_store_kind_needs_store_rule_and_driver_rule_is_then_refused() -> None:
    data = mutated(("kind",), "store")
    assert error_for(data) == 'm.json: applicability.store: required when kind is "store"'
    data["applicability"]["store"] = {"package": "Contoso.Notes", "version": "2.3"}
    assert error_for(data) == 'm.json: applicability.driver: allowed only when kind is "driver"'


def test_app_and_definitions_need_products() -> None:
    data = mutated(("kind",), "definitions")
    data["applicability"]["driver"] = None
    data["products"] = []
    assert error_for(data) == 'm.json: products: must not be empty when kind is "definitions"'
    data["kind"] = "app"
    data["applicability"]["installed"] = []
    assert error_for(data) == (
        'm.json: products: kind "app" needs an entry here or in applicability.installed'
    )


def test_driver_rule_needs_a_hardware_or_compatible_id() -> None:
    data = mutated(("applicability", "driver", "hardware_ids"), [])
    manifest = manifest_from_dict(data, source="m.json")
    assert manifest.applicability.driver is not None
    data["applicability"]["driver"]["compatible_ids"] = []
    assert error_for(data) == (
        "m.json: applicability.driver.hardware_ids: "
        "hardware_ids and compatible_ids must not both be empty"
    )


def test_huge_hostile_value_is_truncated_in_the_message() -> None:
    message = error_for(mutated(("id",), "x" * 1_000_000))
    assert len(message) < 200


@settings(max_examples=300)
@given(json_values)
def test_arbitrary_json_never_raises_anything_but_manifest_error(data: object) -> None:
    try:
        manifest_from_dict(data, source="m.json")
    except ManifestError as e:
        assert "\n" not in str(e)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


_ALL_PATHS = _paths(valid_dict())


@settings(max_examples=500)
@given(st.sampled_from(_ALL_PATHS), json_values)
def test_any_field_replaced_by_any_json_value_yields_manifest_or_manifest_error(
    path: tuple[Any, ...], value: object
) -> None:
    data = mutated(path, copy.deepcopy(value))
    try:
        manifest_from_dict(data, source="m.json")
    except ManifestError as e:
        assert "\n" not in str(e) and str(e).startswith("m.json: ")
