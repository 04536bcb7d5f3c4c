"""The signed JSON form: exact round trips, and untrusted input only ever yields ManifestError."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from manifest_helpers import (
    docs_json_example,
    docs_toml_examples,
    payload_dict,
    valid_dict,
    write_example,
)
from manifest_strategies import manifests

from tidings.errors import ManifestError
from tidings.manifest import (
    PayloadFile,
    UpdateManifest,
    Version,
    load_manifest,
    manifest_from_dict,
    manifest_to_dict,
    validate_manifest,
)


def test_valid_dict_reads_and_writes_back_the_same_dict() -> None:
    data = valid_dict()
    manifest = manifest_from_dict(data, source="m.json")
    assert manifest.applicability.driver is not None
    assert manifest.applicability.driver.driver_class == "Display"
    assert manifest_to_dict(manifest) == data


def test_documented_signed_form_parses_and_writes_back_identically() -> None:
    data = docs_json_example()
    manifest = manifest_from_dict(data, source="docs")
    assert manifest.payloads[0].name == "kb5031354.bin"
    assert manifest_to_dict(manifest) == data


def test_version_order_never_compares_with_other_types() -> None:
    with pytest.raises(TypeError):
        assert Version.parse("1") < "2"  # type: ignore[operator]


@pytest.mark.parametrize("example", docs_toml_examples())
def test_every_documented_example_round_trips_through_the_signed_form(
    tmp_path: Path, example: str
) -> None:
    authored = load_manifest(write_example(tmp_path, example))
    payloads = tuple(
        PayloadFile(s.name, 4, "a" * 64, s.piece_size, "b" * 64, 32)
        for s in authored.payload_sources
    )
    manifest = dataclasses.replace(authored.manifest, payloads=payloads)
    validate_manifest(manifest)
    wire = json.loads(json.dumps(manifest_to_dict(manifest)))
    assert manifest_from_dict(wire, source="m.json") == manifest


@settings(max_examples=300)
@given(manifests())
def test_random_valid_manifest_round_trips_exactly(manifest: UpdateManifest) -> None:
    data = manifest_to_dict(manifest)
    again = manifest_from_dict(json.loads(json.dumps(data)), source="m.json")
    assert again == manifest
    assert manifest_to_dict(again) == data  # also the exact version text, not just equality


def test_null_optional_fields_count_as_absent_and_omitted_ones_take_defaults() -> None:
    data = valid_dict()
    for key in ("description", "severity", "kb", "categories", "install", "eula"):
        del data[key]
    data["applicability"]["store"] = None
    manifest = manifest_from_dict(data, source="m.json")
    assert manifest.description == "" and manifest.eula is None
    assert manifest.severity == "unspecified" and manifest.install.can_uninstall


def test_validate_manifest_catches_a_hand_built_invalid_manifest() -> None:
    manifest = manifest_from_dict(valid_dict(), source="m.json")
    with pytest.raises(ManifestError, match=r"^publisher: kb\[0\]: expected a KB number"):
        validate_manifest(dataclasses.replace(manifest, kb=("kb1",)), source="publisher")
    with pytest.raises(ManifestError, match=r"^publisher: payloads: at least one payload"):
        validate_manifest(dataclasses.replace(manifest, payloads=()), source="publisher")
    with pytest.raises(ManifestError, match=r"^publisher: not a well-formed manifest value"):
        validate_manifest(dataclasses.replace(manifest, kind="driver"), source="publisher")  # type: ignore[arg-type]


def test_duplicate_payload_names_are_rejected() -> None:
    data = valid_dict()
    data["payloads"].append(payload_dict())
    with pytest.raises(ManifestError) as excinfo:
        manifest_from_dict(data, source="m.json")
    assert str(excinfo.value) == (
        'm.json: payloads[1].name: duplicate payload name "kb5031354.bin" (also payloads[0])'
    )
