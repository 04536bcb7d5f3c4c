"""Publisher, device and user text is printed as given, never read as Rich markup.

The threat: a publisher titles an update ``[/x]`` (valid in a manifest) and every command
that prints it dies with a traceback, ``revoke`` after it already revoked; or a title such as
``[link=...]`` is rendered as something other than what was published.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import invoke, set_line, tidings

from tidings.catalog.publisher import Publisher, PublishResult
from tidings.clock import FixedClock
from tidings.manifest import load_manifest

TITLES = [
    "[/x] Editor 2.5",
    "[bold]Editor[/bold] 2.5",
    "[link=https://example.com/x]Editor[/link] 2.5 :warning:",
]
APP = 1  # index of the app sample in sample_manifests


def bracketed_app(sample_manifests: list[Path], title: str) -> Path:
    """The app sample as revision 2, with ``title``, a bracketed description and file name."""
    manifest = sample_manifests[APP]
    set_line(manifest, "title", title)
    set_line(manifest, "description", f"{title} [/] [red]description")
    manifest.write_text(manifest.read_text().replace("revision = 1", "revision = 2"))
    return manifest.rename(manifest.with_name("[red]app.toml"))


@pytest.mark.parametrize("title", TITLES)
def test_bracketed_title_is_printed_literally_by_publish_updates_and_revoke(
    data_dir: Path, published: list[PublishResult], sample_manifests: list[Path], title: str
) -> None:
    manifest = bracketed_app(sample_manifests, title)
    update_id = published[APP].update_id

    publish = invoke("publish", data_dir, manifest)
    assert publish.code == 0, publish.stderr
    assert f"published [red]app.toml: {update_id} revision 2 replaces 1" in publish.stdout

    listed = invoke("updates", data_dir)
    assert listed.code == 0
    assert title in listed.stdout
    as_json = json.loads(invoke("updates", data_dir, "--json").stdout)
    assert title in [u["title"] for u in as_json["updates"]]

    revoke = invoke("revoke", data_dir, update_id)
    assert revoke.code == 0
    assert revoke.stdout.strip() == f"revoked {update_id} revision 2 ({title})"
    assert [u.state for u in Publisher(data_dir).updates() if u.id == update_id] == ["revoked"]


def test_error_quoting_bracketed_text_is_one_literal_line(tmp_path: Path) -> None:
    missing = tmp_path / "[/x]" / "[bold]data"
    result = tidings("updates", missing)
    assert result.code == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"error: {missing} does not exist: give the directory `tidings server init` created, "
        f"or create one with `tidings server init {missing}`"
    ]


def test_manifest_error_quoting_bracketed_value_is_one_literal_line(
    data_dir: Path, sample_manifests: list[Path]
) -> None:
    manifest = sample_manifests[APP]
    manifest.write_text(manifest.read_text().replace('kind = "app"', 'kind = "[/x]"'))
    result = invoke("publish", data_dir, manifest)
    assert result.code == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: ") and '"[/x]"' in result.stderr


@pytest.mark.parametrize("title", TITLES)
def test_scan_prints_a_bracketed_title_and_criteria_literally(
    enrolled: Path,
    data_dir: Path,
    sample_manifests: list[Path],
    clock: FixedClock,
    title: str,
) -> None:
    manifest = bracketed_app(sample_manifests, title)
    Publisher(data_dir, clock=clock).publish(load_manifest(manifest))

    table = tidings("scan", enrolled, columns=300)
    assert table.code == 0, table.stderr
    assert title in table.stdout

    as_json = json.loads(tidings("scan", enrolled, "--json").stdout)
    [app] = [u for u in as_json["updates"] if u["kind"] == "app"]
    assert (app["title"], app["description"]) == (title, f"{title} [/] [red]description")

    none = tidings("scan", enrolled, "--criteria", "CategoryIDs contains '[/x]'", columns=300)
    assert none.code == 0, none.stderr
    assert "with criteria \"CategoryIDs contains '[/x]'\"" in none.stdout

    bad = tidings("scan", enrolled, "--criteria", "Type='[bold]x[/bold]'")
    assert bad.code == 1
    assert "Traceback" not in bad.stderr
    assert bad.stderr.splitlines() == [
        "error: criteria: position 5: expected 'Software' or 'Driver' after '=', "
        "got '[bold]x[/bold]'"
    ]
