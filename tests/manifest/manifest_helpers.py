"""Shared test data for tidings.manifest: a valid manifest in each form and the docs examples."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[2] / "docs" / "manifest.md"
SHA_A = "a" * 64
SHA_B = "b" * 64

BASE_TOML = """\
schema = 1
id = "3f0a1c52-6a77-4c4e-9a53-2f1e0b3c4d5e"
revision = 1
kind = "os"
title = "2026-11 Cumulative Update for Tidings OS 11 (KB5031354)"
classification = "security"
severity = "critical"
kb = ["KB5031354"]
cves = ["CVE-2026-1234"]
release_date = 2026-11-10
products = ["tidings-os-11"]

[applicability.os]
product = "tidings-os-11"
architectures = ["x64", "arm64"]
min_build = 22000
max_build = 22631

[install]
reboot = "can-request"

[[payload]]
path = "payloads/kb5031354.bin"
"""


def docs_toml_examples() -> list[str]:
    """Every ```toml block of docs/manifest.md: the documented examples must load."""
    return re.findall(r"```toml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)


def docs_json_example() -> object:
    """The ```json block of docs/manifest.md: the documented signed form must parse."""
    (block,) = re.findall(r"```json\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    return json.loads(block)


def write_example(directory: Path, text: str, name: str = "kb5031.toml") -> Path:
    """Write a TOML manifest plus every payload/EULA file it names (each holding b"test")."""
    data = tomllib.loads(text)
    files = [p["path"] for p in data.get("payload", [])]
    if "file" in data.get("eula", {}):
        files.append(data["eula"]["file"])
    for relative in files:
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"test")
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def payload_dict(name: str = "kb5031354.bin") -> dict[str, Any]:
    return {
        "name": name,
        "size": 734003200,
        "sha256": SHA_A,
        "piece_size": 1048576,
        "piece_map_sha256": SHA_B,
        "piece_map_size": 22400,
    }


_VALID_DICT: dict[str, Any] = {
    "schema": 1,
    "id": "3f0a1c52-6a77-4c4e-9a53-2f1e0b3c4d5e",
    "revision": 1,
    "kind": "driver",
    "title": "Contoso - Display - 31.0.101.4502",
    "description": "line one\nline two",
    "classification": "driver",
    "severity": "unspecified",
    "kb": [],
    "cves": ["CVE-2026-1234"],
    "release_date": "2026-11-10",
    "products": ["tidings-os-11"],
    "categories": ["drivers"],
    "supersedes": ["0b5e8f7a-1c2d-4e3f-8a9b-0c1d2e3f4a5b"],
    "prerequisites": [],
    "bundle": [],
    "applicability": {
        "os": {
            "product": "tidings-os-11",
            "architectures": ["x64"],
            "min_version": "10.0",
            "max_version": None,
            "min_build": 22000,
            "max_build": None,
        },
        "installed": [{"product": "contoso-panel", "min_version": "1.0", "max_version": "2.0"}],
        "not_installed": [],
        "driver": {
            "hardware_ids": ["PCI\\VEN_8086&DEV_46A6"],
            "compatible_ids": ["PCI\\CC_0300"],
            "version": "31.0.101.4502",
            "date": "2026-09-01",
            "class": "Display",
            "vendor": "Contoso",
        },
        "store": None,
    },
    "install": {
        "reboot": "always",
        "can_uninstall": False,
        "needs_user_input": False,
        "impact": "normal",
    },
    "eula": {"text": "Terms.\n\tIndented."},
    "payloads": [payload_dict()],
}


def valid_dict() -> dict[str, Any]:
    """A fresh, valid signed-form dict (a driver, which exercises most of the schema)."""
    return copy.deepcopy(_VALID_DICT)
