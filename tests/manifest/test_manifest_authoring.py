"""TOML authoring: valid manifests load; every mistake is one exact line naming file and field."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest
from manifest_helpers import BASE_TOML, docs_toml_examples, write_example

from tidings.errors import ManifestError
from tidings.manifest import Kind, Reboot, UpdateManifest, Version, load_manifest


def error_for(path: Path) -> str:
    with pytest.raises(ManifestError) as excinfo:
        load_manifest(path)
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_base_os_manifest_loads_with_defaults_filled_in(tmp_path: Path) -> None:
    authored = load_manifest(write_example(tmp_path, BASE_TOML))
    m = authored.manifest
    assert authored.source == "kb5031.toml"
    assert m.identity == ("3f0a1c52-6a77-4c4e-9a53-2f1e0b3c4d5e", 1)
    assert m.kind is Kind.OS and m.install.reboot is Reboot.CAN_REQUEST
    assert m.release_date == datetime.date(2026, 11, 10)
    assert m.applicability.os is not None and m.applicability.os.max_build == 22631
    assert m.description == "" and m.payloads == () and m.eula is None
    (source,) = authored.payload_sources
    assert source.name == "kb5031354.bin" and source.piece_size == 1_048_576
    assert source.path == (tmp_path / "payloads" / "kb5031354.bin").resolve()
    assert source.path.is_absolute() and source.sha256 is None and source.size is None


@pytest.mark.parametrize("example", docs_toml_examples())
def test_every_documented_example_loads(tmp_path: Path, example: str) -> None:
    authored = load_manifest(write_example(tmp_path, example))
    assert authored.manifest.title


def test_one_documented_example_per_kind() -> None:
    kinds = {
        line for e in docs_toml_examples() for line in e.splitlines() if line.startswith("kind")
    }
    assert kinds == {f'kind = "{k}"' for k in Kind}


def test_documented_examples_load_their_rules(tmp_path: Path) -> None:
    by_kind: dict[Kind, UpdateManifest] = {}
    for index, example in enumerate(docs_toml_examples()):
        directory = tmp_path / str(index)
        directory.mkdir()
        m = load_manifest(write_example(directory, example)).manifest
        by_kind.setdefault(m.kind, m)
    driver = by_kind[Kind.DRIVER].applicability.driver
    assert driver is not None and driver.driver_class == "Display"
    assert driver.hardware_ids[0] == "PCI\\VEN_8086&DEV_46A6&SUBSYS_00000000"
    assert driver.version == Version.parse("31.0.101.4502")
    store = by_kind[Kind.STORE].applicability.store
    assert store is not None and str(store.version) == "2.3.0.0"
    app = by_kind[Kind.APP]
    assert app.eula is not None and app.eula.text == "test"  # read from eula.txt
    assert app.applicability.installed[0].max_version == Version.parse("1.4.2")


def _edit(old: str, new: str) -> str:
    assert old in BASE_TOML
    return BASE_TOML.replace(old, new, 1)


BAD: list[tuple[str, str, str]] = [
    (
        "non_integer_build",
        _edit("min_build = 22000", 'min_build = "abc"'),
        'applicability.os.min_build: expected an integer, got "abc"',
    ),
    (
        "unknown_kind",
        _edit('kind = "os"', 'kind = "firmware"'),
        'kind: expected one of os, app, driver, definitions, store, got "firmware"',
    ),
    (
        "bad_uuid",
        _edit('id = "3f0a1c52-6a77-4c4e-9a53-2f1e0b3c4d5e"', 'id = "123"'),
        'id: expected a UUID, got "123"',
    ),
    ("typo_top_level", _edit("title =", "titel ="), "titel: unknown field"),
    (
        "typo_nested",
        _edit("min_build =", "min_biuld ="),
        "applicability.os.min_biuld: unknown field",
    ),
    (
        "typo_table",
        _edit("[applicability.os]", "[applicability.oss]"),
        "applicability.oss: unknown field",
    ),
    (
        "typo_payload",
        _edit(
            'path = "payloads/kb5031354.bin"', 'path = "payloads/kb5031354.bin"\npeice_size = 16384'
        ),
        "payload[0].peice_size: unknown field",
    ),
    (
        "bool_is_not_int",
        _edit("revision = 1", "revision = true"),
        "revision: expected an integer, got true",
    ),
    (
        "float_is_not_int",
        _edit("revision = 1", "revision = 1.5"),
        "revision: expected an integer, got 1.5",
    ),
    (
        "quoted_date",
        _edit("release_date = 2026-11-10", 'release_date = "2026-11-10"'),
        'release_date: expected a date such as 2026-11-10, got "2026-11-10" '
        "(a TOML date is written without quotes)",
    ),
    (
        "datetime_not_date",
        _edit("release_date = 2026-11-10", "release_date = 2026-11-10T10:00:00"),
        "release_date: expected a date such as 2026-11-10, got 2026-11-10T10:00:00",
    ),
    (
        "newer_schema",
        _edit("schema = 1", "schema = 2\nfuture_field = 1"),
        "schema: unsupported schema version 2 (this build reads 1)",
    ),
    ("missing_title", _edit("title = ", "# title = "), "title: missing required field"),
    (
        "bad_reboot",
        _edit('reboot = "can-request"', 'reboot = "sometimes"'),
        'install.reboot: expected one of never, always, can-request, got "sometimes"',
    ),
    (
        "build_range_reversed",
        _edit("max_build = 22631", "max_build = 21000"),
        "applicability.os.max_build: must not be smaller than min_build 22000",
    ),
    (
        "os_kind_without_os_rule",
        _edit("[applicability.os]", "[applicability.x]")
        .replace("[applicability.x]\nproduct", "[[applicability.installed]]\nproduct")
        .replace('architectures = ["x64", "arm64"]\nmin_build = 22000\nmax_build = 22631\n', ""),
        'applicability.os: required when kind is "os"',
    ),
    (
        "driver_rule_on_os",
        BASE_TOML + '[applicability.driver]\ncompatible_ids = ["PCI\\\\CC_0300"]'
        '\nversion = "1.0"\ndate = 2026-01-01\n',
        'applicability.driver: allowed only when kind is "driver"',
    ),
    (
        "self_supersedence",
        _edit("products =", 'supersedes = ["3f0a1c52-6a77-4c4e-9a53-2f1e0b3c4d5e"]\nproducts ='),
        "supersedes[0]: an update cannot supersede itself",
    ),
    (
        "no_payload",
        BASE_TOML.split("[[payload]]")[0],
        'payload: at least one payload is required unless "bundle" lists member updates',
    ),
    (
        "payload_escapes",
        _edit('path = "payloads/kb5031354.bin"', 'path = "../outside.bin"'),
        "payload[0].path: escapes the manifest's directory",
    ),
    (
        "payload_escapes_after_descending",
        _edit('path = "payloads/kb5031354.bin"', 'path = "payloads/../../outside.bin"'),
        "payload[0].path: escapes the manifest's directory",
    ),
    (
        "payload_absolute",
        _edit('path = "payloads/kb5031354.bin"', 'path = "/etc/passwd"'),
        "payload[0].path: must be relative to the manifest's directory",
    ),
    (
        "payload_missing",
        BASE_TOML + '[[payload]]\npath = "payloads/missing.bin"\n',
        "payload[1].path: file not found",
    ),
    (
        "payload_is_directory",
        _edit('path = "payloads/kb5031354.bin"', 'path = "payloads"'),
        "payload[0].path: not a regular file",
    ),
    (
        "payload_without_path",
        BASE_TOML + '[[payload]]\nname = "x.bin"\n',
        "payload[1].path: missing required field",
    ),
    (
        "payload_nul_in_path",
        _edit('path = "payloads/kb5031354.bin"', 'path = "payloads/a\\u0000.bin"'),
        "payload[0].path: contains a line break or another control or invisible character "
        "at position 10",
    ),
    (
        "payload_unsafe_name",
        _edit(
            'path = "payloads/kb5031354.bin"', 'path = "payloads/kb5031354.bin"\nname = "../x.bin"'
        ),
        'payload[0].name: not a safe file name (no path separators, control characters or :*?"<>|)'
        ', got "../x.bin"',
    ),
    (
        "payload_bad_sha",
        _edit('path = "payloads/kb5031354.bin"', 'path = "payloads/kb5031354.bin"\nsha256 = "xyz"'),
        'payload[0].sha256: expected 64 lowercase hex digits, got "xyz"',
    ),
    (
        "payload_negative_size",
        _edit('path = "payloads/kb5031354.bin"', 'path = "payloads/kb5031354.bin"\nsize = -1'),
        "payload[0].size: expected an integer from 0 to 9223372036854775807, got -1",
    ),
    (
        "payload_bad_piece_size",
        _edit(
            'path = "payloads/kb5031354.bin"',
            'path = "payloads/kb5031354.bin"\npiece_size = 1000000',
        ),
        "payload[0].piece_size: expected a power of two from 16384 to 16777216 bytes, got 1000000",
    ),
    (
        "duplicate_payload_name",
        BASE_TOML + '[[payload]]\npath = "payloads/../payloads/kb5031354.bin"\n',
        'payload[1].name: duplicate payload name "kb5031354.bin" (also payload[0])',
    ),
    (
        "eula_text_and_file",
        BASE_TOML + '[eula]\ntext = "x"\nfile = "eula.txt"\n',
        'eula.file: give either "text" or "file", not both',
    ),
    ("eula_empty_table", BASE_TOML + "[eula]\n", 'eula: needs "text" or "file"'),
    (
        "eula_file_escapes",
        BASE_TOML + '[eula]\nfile = "../eula.txt"\n',
        "eula.file: escapes the manifest's directory",
    ),
    ("toml_syntax", "schema = 1\nid = \n", "line 2, column 6: invalid TOML (Invalid value)"),
    (
        "toml_duplicate_key",
        "schema = 1\nschema = 1\n",
        "line 2, column 11: invalid TOML (Cannot overwrite a value)",
    ),
    ("toml_too_deep", "schema = " + "[" * 100_000, "invalid TOML (nested too deeply)"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_manifest_yields_exactly_one_line_naming_file_field_and_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    (tmp_path / "payloads").mkdir()
    (tmp_path / "payloads" / "kb5031354.bin").write_bytes(b"test")
    (tmp_path / "kb5031.toml").write_text(text, encoding="utf-8")
    assert error_for(tmp_path / "kb5031.toml") == f"kb5031.toml: {expected}"


def test_the_documented_example_message_literally(tmp_path: Path) -> None:
    path = write_example(tmp_path, BASE_TOML.replace("min_build = 22000", 'min_build = "abc"'))
    assert (
        error_for(path) == 'kb5031.toml: applicability.os.min_build: expected an integer, got "abc"'
    )


def test_unknown_field_is_rejected_so_typos_never_pass(tmp_path: Path) -> None:
    path = write_example(
        tmp_path, BASE_TOML.replace("[install]\n", "[install]\ncan_unistall = false\n")
    )
    assert error_for(path) == "kb5031.toml: install.can_unistall: unknown field"


def test_symlink_leading_outside_the_manifest_directory_is_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "secret.bin"
    outside.write_bytes(b"secret")
    directory = tmp_path / "update"
    path = write_example(directory, BASE_TOML)
    (directory / "payloads" / "kb5031354.bin").unlink()
    (directory / "payloads" / "kb5031354.bin").symlink_to(outside)
    assert error_for(path) == "kb5031.toml: payload[0].path: escapes the manifest's directory"


def test_symlinked_directory_leading_outside_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "kb5031354.bin").write_bytes(b"x")
    directory = tmp_path / "update"
    directory.mkdir()
    (directory / "payloads").symlink_to(tmp_path / "elsewhere")
    (directory / "kb5031.toml").write_text(BASE_TOML, encoding="utf-8")
    assert error_for(directory / "kb5031.toml").endswith("escapes the manifest's directory")


def test_symlink_inside_the_directory_is_followed_and_named_after_the_link(tmp_path: Path) -> None:
    path = write_example(tmp_path, BASE_TOML)
    real = tmp_path / "payloads" / "real.bin"
    (tmp_path / "payloads" / "kb5031354.bin").rename(real)
    (tmp_path / "payloads" / "kb5031354.bin").symlink_to(real)
    (source,) = load_manifest(path).payload_sources
    assert source.name == "kb5031354.bin" and source.path == real.resolve()


def test_symlink_loop_is_a_manifest_error(tmp_path: Path) -> None:
    path = write_example(tmp_path, BASE_TOML)
    payload = tmp_path / "payloads" / "kb5031354.bin"
    payload.unlink()
    payload.symlink_to(tmp_path / "payloads" / "loop.bin")
    (tmp_path / "payloads" / "loop.bin").symlink_to(payload)
    assert error_for(path).startswith("kb5031.toml: payload[0].path: ")


def test_missing_manifest_file_is_a_manifest_error(tmp_path: Path) -> None:
    assert error_for(tmp_path / "nope.toml") == "nope.toml: file not found"


def test_directory_as_manifest_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "dir.toml").mkdir()
    assert error_for(tmp_path / "dir.toml") == "dir.toml: not a regular file"


def test_fifo_as_manifest_is_rejected_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.toml")
    assert error_for(tmp_path / "fifo.toml") == "fifo.toml: not a regular file"


def test_oversized_manifest_is_rejected_before_parsing(tmp_path: Path) -> None:
    (tmp_path / "big.toml").write_bytes(b"#" * (1024 * 1024 + 1))
    assert error_for(tmp_path / "big.toml") == "big.toml: larger than 1048576 bytes"


def test_non_utf8_manifest_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "latin.toml").write_bytes('title = "caf\xe9"\n'.encode("latin-1"))
    assert (
        error_for(tmp_path / "latin.toml") == "latin.toml: not UTF-8 text (bad byte at offset 12)"
    )


def test_byte_order_mark_from_windows_editors_is_accepted(tmp_path: Path) -> None:
    path = write_example(tmp_path, BASE_TOML)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_manifest(path).manifest.kind is Kind.OS


def test_eula_file_is_read_and_bounded(tmp_path: Path) -> None:
    path = write_example(tmp_path, BASE_TOML + '[eula]\nfile = "eula.txt"\n')
    (tmp_path / "eula.txt").write_text("Licence.\n\tTerms.\n", encoding="utf-8")
    eula = load_manifest(path).manifest.eula
    assert eula is not None and eula.text == "Licence.\n\tTerms.\n"
    (tmp_path / "eula.txt").write_bytes(b"x" * 200_001)
    assert error_for(path) == "kb5031.toml: eula.file: larger than 200000 bytes"
    (tmp_path / "eula.txt").write_bytes(b"\xff")
    assert error_for(path) == "kb5031.toml: eula.file: not UTF-8 text (bad byte at offset 0)"
    (tmp_path / "eula.txt").write_text("ok\x1b[2J", encoding="utf-8")
    assert error_for(path) == (
        "kb5031.toml: eula.file: contains a control or invisible character at position 2"
    )


def test_payload_name_sha_size_and_piece_size_are_taken_from_the_author(tmp_path: Path) -> None:
    extra = 'name = "update.bin"\nsha256 = "' + "c" * 64 + '"\nsize = 4\npiece_size = 16384\n'
    path = write_example(tmp_path, BASE_TOML + extra)
    (source,) = load_manifest(path).payload_sources
    assert (source.name, source.sha256, source.size, source.piece_size) == (
        "update.bin", "c" * 64, 4, 16384,
    )  # fmt: skip


def test_bundle_needs_no_payloads(tmp_path: Path) -> None:
    text = BASE_TOML.split("[[payload]]")[0].replace(
        "products =", 'bundle = ["0b5e8f7a-1c2d-4e3f-8a9b-0c1d2e3f4a5b"]\nproducts ='
    )
    authored = load_manifest(write_example(tmp_path, text))
    assert authored.payload_sources == () and len(authored.manifest.bundle) == 1


def test_file_name_with_a_line_break_still_gives_one_line(tmp_path: Path) -> None:
    assert error_for(tmp_path / "evil\nname.toml") == '"evil\\nname.toml": file not found'
