"""The examples in README.md and docs/ are real: manifests publish, criteria parse, searches find.

A reader copies an example before reading the prose around it, so a broken example is a bug
in the docs. Every example is found by the marking conventions of ``doc_examples`` and
checked with the real code: the publisher on a fresh data directory, the inventory loader,
the criteria parser and the applicability engine. The counts at the top make sure a
formatting change cannot quietly leave the tests with nothing to check.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from doc_examples import (
    DOC_FILES,
    REPO,
    Block,
    Row,
    all_blocks,
    all_criteria_rows,
    code_spans,
    fenced_blocks,
    prose_code_spans,
)

from tidings.catalog.publisher import Publisher, PublishResult
from tidings.clock import FixedClock
from tidings.errors import CriteriaError
from tidings.manifest import UpdateManifest, load_manifest
from tidings.scan.applicability import ApplicabilityResult, evaluate
from tidings.scan.criteria import parse_criteria
from tidings.scan.inventory import collect_inventory, load_inventory_file

# At least this many of each, as the docs stand: one manifest per kind and a bundle, the
# inventory file, the grammar's valid examples, the searches and the refusals of search.md.
MIN_MANIFESTS = 6
MIN_INVENTORIES = 1
MIN_CRITERIA_LINES = 6
MIN_SEARCHES = 10
MIN_REFUSALS = 18

TOML_BLOCKS = all_blocks("toml")
CRITERIA_LINES = [
    (f"{b.where}+{n}", line)
    for b in all_blocks("criteria")
    for n, line in enumerate(b.text.splitlines(), 1)
    if line.strip()
]
ROWS = all_criteria_rows()
SEARCHES = [r for r in ROWS if r.claim == "Finds"]
REFUSALS = [r for r in ROWS if r.claim == "Message"]
# A code span or a line of an unmarked block that reads like criteria: a term, then an operator.
TERM_NAMES = "Type|Kind|IsInstalled|IsHidden|IsAssigned|IsPresent|BrowseOnly|RebootRequired"
LOOKS_LIKE_CRITERIA = re.compile(
    rf"^\(*\s*({TERM_NAMES}|UpdateID|RevisionNumber|CategoryIDs|DeploymentAction)"
    r"\s*(=|!=|<|>|contains\b)\s*\S"
)
PAYLOAD_BYTES = b"test"  # the docs' driver example cross-checks sha256("test") and size 4


def is_manifest(block: Block) -> bool:
    return "schema" in tomllib.loads(block.text)


def write_manifest(directory: Path, block: Block) -> Path:
    """The example as a file, with every payload and EULA file it names beside it."""
    data = tomllib.loads(block.text)
    named = [p["path"] for p in data.get("payload", [])]
    if "file" in data.get("eula", {}):
        named.append(data["eula"]["file"])
    for relative in named:
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(PAYLOAD_BYTES)
    manifest = directory / "update.toml"
    manifest.write_text(block.text, encoding="utf-8")
    return manifest


def test_the_docs_hold_the_examples_these_tests_check() -> None:
    manifests = [b for b in TOML_BLOCKS if is_manifest(b)]
    assert len(manifests) >= MIN_MANIFESTS
    assert len(TOML_BLOCKS) - len(manifests) >= MIN_INVENTORIES
    assert len(CRITERIA_LINES) >= MIN_CRITERIA_LINES
    assert len(SEARCHES) >= MIN_SEARCHES
    assert len(REFUSALS) >= MIN_REFUSALS


@pytest.mark.parametrize("block", TOML_BLOCKS, ids=lambda b: b.where)
def test_every_toml_example_publishes_or_loads_as_an_inventory(
    block: Block, data_dir: Path, clock: FixedClock, tmp_path: Path
) -> None:
    """A manifest goes through the real publisher into a fresh catalog; nothing else is TOML
    in the docs but inventory files, which the real loader must accept."""
    if not is_manifest(block):
        inventory = tmp_path / "inventory.toml"
        inventory.write_text(block.text, encoding="utf-8")
        override = load_inventory_file(inventory)
        assert None not in (override.os, override.products, override.devices, override.store)
        return
    source = tmp_path / "publisher"
    source.mkdir()
    authored = load_manifest(write_manifest(source, block))
    result = Publisher(data_dir, clock=clock).publish(authored)
    assert (result.update_id, result.revision) == authored.manifest.identity
    assert result.bins and result.previous_revision is None


@pytest.mark.parametrize(("where", "text"), CRITERIA_LINES, ids=[w for w, _ in CRITERIA_LINES])
def test_every_criteria_block_line_parses_and_round_trips(where: str, text: str) -> None:
    criteria = parse_criteria(text)
    assert parse_criteria(str(criteria)) == criteria


@pytest.mark.parametrize("row", REFUSALS, ids=lambda r: r.where)
def test_every_refused_criteria_example_gives_its_documented_message(row: Row) -> None:
    (message,) = code_spans(row.second)
    with pytest.raises(CriteriaError) as refused:
        parse_criteria(row.criteria)
    if message.endswith("..."):
        assert str(refused.value).startswith(message.removesuffix("..."))
    else:
        assert str(refused.value) == message


@pytest.fixture(scope="module")
def docs_catalog(
    templates: tuple[Path, Path, list[PublishResult]], tmp_path_factory: pytest.TempPathFactory
) -> list[UpdateManifest]:
    """Every manifest example of the docs, published together into one fresh catalog."""
    base = tmp_path_factory.mktemp("docs-catalog")
    shutil.copytree(templates[0], base / "data")
    publisher = Publisher(base / "data", clock=FixedClock(datetime.now(UTC).replace(microsecond=0)))
    prepared = []
    for n, block in enumerate(b for b in TOML_BLOCKS if is_manifest(b)):
        (base / str(n)).mkdir()
        prepared.append(publisher.prepare(load_manifest(write_manifest(base / str(n), block))))
    publisher.commit_prepared(prepared)
    return [p.manifest for p in prepared]


@pytest.fixture(scope="module")
def docs_device(
    docs_catalog: list[UpdateManifest], tmp_path_factory: pytest.TempPathFactory
) -> tuple[ApplicabilityResult, ApplicabilityResult]:
    """The device of docs/applicability.md's inventory file, before and after it installs
    everything the docs catalog holds.

    Before, it has only the servicing stack the OS example requires
    (``prerequisites``), as a device that is offered that update would.
    """
    (inventory,) = [b for b in TOML_BLOCKS if b.path.name == "applicability.md"]
    base = tmp_path_factory.mktemp("docs-device")
    (base / "inventory.toml").write_text(inventory.text, encoding="utf-8")
    os_update = next(m for m in docs_catalog if m.prerequisites and m.applicability.os)

    def scan(installed: frozenset[str]) -> ApplicabilityResult:
        found = collect_inventory(
            override_file=base / "inventory.toml",
            installed_updates=installed,
            sysfs_root=base / "no-sysfs",
            os_release=base / "no-os-release",
        )
        return evaluate(docs_catalog, found)

    before = scan(frozenset(os_update.prerequisites))
    after = scan(frozenset(os_update.prerequisites) | {m.id for m in docs_catalog})
    return before, after


@pytest.mark.parametrize("row", SEARCHES, ids=lambda r: r.where)
def test_every_search_example_finds_updates_on_the_docs_device(
    row: Row, docs_device: tuple[ApplicabilityResult, ApplicabilityResult]
) -> None:
    """A search documented as finding something finds something, on the docs' own device
    and catalog: before it installs anything, or (searches for installed updates) after."""
    criteria = parse_criteria(row.criteria)
    before, after = docs_device
    found = [e.title for result in (before, after) for e in result.updates if criteria.matches(e)]
    assert found, f"{row.where}: {row.criteria!r} finds nothing; the docs say: {row.second}"


def test_criteria_outside_the_marked_places_parse_or_are_documented_refusals() -> None:
    """The conventions leave nothing behind: any code span of the docs that reads like
    criteria parses (or is a documented refusal), and an unmarked block holds none."""
    refused = {row.criteria for row in REFUSALS}
    unparsed, unmarked = [], []
    for path in DOC_FILES:
        for number, span in prose_code_spans(path):
            if LOOKS_LIKE_CRITERIA.match(span) and span not in refused:
                try:
                    parse_criteria(span)
                except CriteriaError as e:
                    unparsed.append(f"{path.relative_to(REPO)}:{number}: {e}")
        for block in fenced_blocks(path):
            if block.info == "" and any(
                LOOKS_LIKE_CRITERIA.match(line) for line in block.text.splitlines()
            ):
                unmarked.append(f"{block.where}: mark it ```criteria")
    assert unparsed == []
    assert unmarked == []
