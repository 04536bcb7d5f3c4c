"""``tidings agent inventory`` and the empty scan: a user can see what the device reported.

Threat: a device that is offered nothing because its inventory is wrong (a typo in
``inventory.toml``, hardware not found) looks exactly like a device with nothing to do.
"""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import invoke, tidings

from tidings.scan.samples import SAMPLE_DEVICES
from tidings.scan.session import INVENTORY_FILE

OS_ONLY = """
[os]
product = "tidings-os-11"
version = "10.0.22631"
build = 22631
architecture = "x64"
"""


def test_inventory_shows_the_override_files_parts_and_where_each_came_from(
    enrolled: Path,
) -> None:
    text = invoke("agent", "inventory", enrolled)
    assert text.code == 0, text.stderr
    lines = text.stdout.splitlines()
    assert "os, from inventory.toml:" in lines
    assert "  tidings-os-11 version 10.0.22631 build 22631 x64" in lines
    assert "  PCI\\VEN_8086&DEV_46A6\\3&11583659&0&10" in lines
    assert (
        "    hardware IDs: PCI\\VEN_8086&DEV_46A6&SUBSYS_00000000 PCI\\VEN_8086&DEV_46A6" in lines
    )
    assert "    driver: 30.0.101.1000 (2025-01-01)" in lines
    assert "  Contoso.Notes 2.1.0.0" in lines

    document = json.loads(invoke("agent", "inventory", enrolled, "--json").stdout)
    assert document["schema"] == 1
    assert document["os"] == {
        "product": "tidings-os-11",
        "version": "10.0.22631",
        "build": 22631,
        "architecture": "x64",
    }
    assert [p["product"] for p in document["products"]] == ["contoso-editor", "tidings-defender"]
    assert document["devices"][0]["compatible_ids"] == ["PCI\\VEN_8086&CC_0300", "PCI\\CC_0300"]
    assert document["sources"] == dict.fromkeys(
        ("os", "products", "devices", "store"), INVENTORY_FILE
    )


def test_parts_the_override_file_leaves_out_come_from_the_machine(enrolled: Path) -> None:
    (enrolled / INVENTORY_FILE).write_text(OS_ONLY)
    document = json.loads(invoke("agent", "inventory", enrolled, "--json").stdout)
    assert document["sources"] == {
        "os": INVENTORY_FILE,
        "products": "machine",
        "devices": "machine",
        "store": "machine",
    }
    assert document["os"]["product"] == "tidings-os-11"


def test_a_bad_inventory_file_is_one_line_naming_the_field(enrolled: Path) -> None:
    (enrolled / INVENTORY_FILE).write_text(OS_ONLY.replace('"x64"', '"[/x]"'))
    result = invoke("agent", "inventory", enrolled)
    assert result.code == 1
    assert result.stderr.splitlines() == [
        'error: inventory.toml: os.architecture: expected one of x86, x64, arm64, got "[/x]"'
    ]


def test_a_scan_that_finds_nothing_says_what_it_looked_at(enrolled: Path) -> None:
    (enrolled / INVENTORY_FILE).write_text(SAMPLE_DEVICES["kiosk"])
    result = tidings("scan", enrolled, columns=300)
    assert result.code == 0, result.stderr
    last = result.stdout.splitlines()[-1]
    assert last.startswith("no updates apply: searched ")
    assert "index bins for this device's OS tidings-os-10 x64" in last
    assert 'with criteria "IsInstalled=0 and IsHidden=0"' in last
    assert last.endswith(f"See what this device reports with `tidings agent inventory {enrolled}`")
