"""What ``tidings scan`` prints: whole numbers and ids, the reason for a withheld update, and
nothing that a terminal would execute.

Threats: a size, KB id or version cut to ``3,221,225,4…`` at 80 columns or in a pipe (the
user copies a wrong number, or cannot tell two updates apart); a device told "no updates
apply, check your inventory" when an update does apply but waits for a prerequisite that is
not published; and publisher or service text (ESC sequences, line breaks) rewriting the
user's terminal or forging a line of output.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from cli_helpers import set_line, tidings

from tidings.agent.ledger import Ledger
from tidings.catalog.publisher import Publisher
from tidings.clock import FixedClock
from tidings.manifest import load_manifest
from tidings.scan.session import INVENTORY_FILE

DOCS = Path(__file__).parents[2] / "docs"
APP = 1  # index of the app sample in sample_manifests
LONG_TITLE = (
    "Contoso Editor 2.5.0.31337 Security and Quality Rollup for Tidings OS 11 x64 and arm64 "
    "(replaces 2.4.1, build 31.0.101.4502)"
)
SECURITY_NOT_INSTALLED = "CategoryIDs contains 'security' and IsInstalled=0"


def test_scan_table_at_80_columns_in_a_pipe_keeps_sizes_kb_ids_and_titles_whole(
    enrolled: Path, data_dir: Path, sample_manifests: list[Path], clock: FixedClock
) -> None:
    manifest = set_line(sample_manifests[APP], "title", LONG_TITLE)
    manifest.write_text(manifest.read_text().replace("revision = 1", "revision = 2"))
    Publisher(data_dir, clock=clock).publish(load_manifest(manifest))

    table = tidings("scan", enrolled, columns=80)

    assert table.code == 0, table.stderr
    assert "…" not in table.stdout
    assert table.stdout.splitlines()[0].split() == [
        "kind", "classification", "KB", "size", "flags", "title"
    ]  # fmt: skip
    found = json.loads(tidings("scan", enrolled, "--json").stdout)["updates"]
    assert LONG_TITLE in [u["title"] for u in found]
    for update in found:
        assert f"{update['download_size']:,}" in table.stdout
        assert update["title"] in table.stdout
        for kb in update["kb_ids"]:
            assert kb in table.stdout


def docs_block(name: str, marker: str) -> str:
    """The ```toml block of docs/NAME that contains ``marker``."""
    blocks = re.findall(r"```toml\n(.*?)```", (DOCS / name).read_text(), flags=re.DOTALL)
    (block,) = [b for b in blocks if marker in b]
    return str(block)


def test_update_withheld_for_an_unpublished_prerequisite_is_named_with_the_reason(
    enrolled: Path, data_dir: Path, tmp_path: Path, clock: FixedClock
) -> None:
    """docs/manifest.md's OS example, published alone, on docs/applicability.md's device."""
    example = docs_block("manifest.md", 'prerequisites = ["')
    source = tmp_path / "os-example"
    for payload in tomllib.loads(example)["payload"]:
        (source / payload["path"]).parent.mkdir(parents=True, exist_ok=True)
        (source / payload["path"]).write_bytes(b"test")
    # Same id as the sample catalog's OS update: published as its next revision.
    (source / "update.toml").write_text(re.sub(r"(?m)^revision = \d+$", "revision = 9", example))
    authored = load_manifest(source / "update.toml")
    Publisher(data_dir, clock=clock).publish(authored)
    (enrolled / INVENTORY_FILE).write_text(docs_block("applicability.md", "[os]"))
    [prerequisite] = authored.manifest.prerequisites

    result = tidings("scan", enrolled, "--criteria", SECURITY_NOT_INSTALLED)

    assert result.code == 0, result.stderr
    assert (
        f"1 update applies but is withheld: '{authored.manifest.title}' needs prerequisite "
        f"{prerequisite}, which is neither published nor installed"
    ) in result.stdout.splitlines()
    assert "agent inventory" not in result.stdout
    assert "no updates apply" not in result.stdout


def test_empty_scan_still_points_at_the_inventory_when_nothing_is_withheld(
    enrolled: Path,
) -> None:
    result = tidings("scan", enrolled, "--criteria", "Kind='os' and IsInstalled=1")
    assert result.code == 0, result.stderr
    assert "withheld" not in result.stdout
    assert f"See what this device reports with `tidings agent inventory {enrolled}`" in (
        result.stdout
    )


HOSTILE = "Editor \x1b[31mred\x1b[0m\nerror: forged line\r\x1b]0;title\x07"


def test_control_characters_in_a_title_reach_neither_stream(
    enrolled: Path,
    sample_manifests: list[Path],
    clock: FixedClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A manifest that skipped the publisher's checks: the device still prints it safely."""
    import dataclasses

    from tidings.cli.scan_cmd import _print_table
    from tidings.scan.applicability import evaluate
    from tidings.scan.inventory import collect_inventory
    from tidings.scan.samples import SAMPLE_DEVICES
    from tidings.scan.session import ScanStats, SearchResult, Update, Withheld

    (enrolled / INVENTORY_FILE).write_text(SAMPLE_DEVICES["desktop-x64"])
    inventory = collect_inventory(
        override_file=enrolled / INVENTORY_FILE, installed_updates=frozenset()
    )
    app = load_manifest(sample_manifests[APP])
    hostile = dataclasses.replace(app.manifest, title=HOSTILE, kb=("KB1\x1b[2J",))
    [evaluated] = evaluate([hostile], inventory).updates
    ledger = Ledger(enrolled / "agent.db")
    try:
        update = Update(
            evaluated, ledger, clock, hidden=False, downloaded=False, eula_accepted=True
        )
        stats = ScanStats(0.0, 0, 1, 1, 1, 1)
        withheld = Withheld(update, ("x\x1b[31m",), ("x\x1b[31m",))
        _print_table(SearchResult((update,), (f"warning about {HOSTILE}",), stats, (withheld,)))
    finally:
        ledger.close()

    printed = capsys.readouterr()
    for stream in (printed.out, printed.err):
        assert not any(c in stream for c in "\x1b\r\x07")
    assert "error: forged line" not in printed.out.splitlines()
    assert "Editor ?[31mred?[0m?error: forged line" in printed.out
    assert len(printed.err.splitlines()) == 1


def test_error_line_quoting_escape_codes_is_one_line_without_them(tmp_path: Path) -> None:
    state_dir = tmp_path / "dev\x1b[31m\nerror: forged"
    for command in (["scan", state_dir], ["agent", "inventory", state_dir]):
        result = tidings(*command)
        assert result.code == 1
        assert "\x1b" not in result.stderr
        [line] = result.stderr.splitlines()
        assert line.startswith("error: ") and "dev?[31m?error: forged" in line
