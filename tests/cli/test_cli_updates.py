"""``tidings updates`` and every ``--json``: whole ids, a word for an empty catalog, one schema.

Threats: an id cut or wrapped by a narrow terminal and pasted into ``revoke`` (or a script);
an empty listing a new user cannot tell from a broken one; JSON whose field names differ
from the Python API's, so scripts and programs disagree about what a field is called.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from cli_helpers import invoke, tidings

from tidings.catalog.lookup import Located
from tidings.catalog.publisher import PublishResult
from tidings.cli.json_views import SCHEMA
from tidings.scan.session import ScanStats, Update


def test_updates_never_truncates_or_wraps_an_id_in_a_narrow_terminal(
    data_dir: Path, published: list[PublishResult]
) -> None:
    result = tidings("updates", data_dir, columns=40)
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    for p in published:
        assert any(line.startswith(p.update_id + " ") for line in lines), result.stdout
    assert len(lines) == 1 + len(published)  # a header, then one line per update


def test_updates_of_an_empty_catalog_says_so_and_how_to_publish(data_dir: Path) -> None:
    result = invoke("updates", data_dir)
    assert (result.code, result.stdout) == (
        0,
        f"the catalog has no updates; publish one with `tidings publish {data_dir} update.toml`\n",
    )
    assert json.loads(invoke("updates", data_dir, "--json").stdout) == {
        "schema": SCHEMA,
        "updates": [],
    }


def test_updates_json_uses_the_python_api_field_names(
    data_dir: Path, published: list[PublishResult]
) -> None:
    result = invoke("updates", data_dir, "--json")
    assert result.code == 0
    document = json.loads(result.stdout)
    assert document["schema"] == 1
    api_fields = [f.name for f in dataclasses.fields(Located)]
    assert all(list(u) == api_fields for u in document["updates"])
    assert sorted(u["id"] for u in document["updates"]) == sorted(p.update_id for p in published)


def test_scan_json_uses_the_python_api_field_names(enrolled: Path) -> None:
    result = invoke("scan", enrolled, "--json")
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["schema"] == 1
    assert list(document["stats"]) == [f.name for f in dataclasses.fields(ScanStats)]
    for update in document["updates"]:
        assert [name for name in update if not hasattr(Update, name)] == []
    [driver] = [u for u in document["updates"] if u["kind"] == "driver"]
    assert driver["update_type"] == "Driver" and isinstance(driver["kb_ids"], list)
