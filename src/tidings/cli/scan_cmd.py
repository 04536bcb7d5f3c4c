"""``tidings scan STATE_DIR [--criteria ...] [--json]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tidings.cli.app import (
    app,
    columns,
    err,
    labelled,
    one_line,
    one_line_errors,
    out,
    print_json,
)

if TYPE_CHECKING:
    from tidings.scan.inventory_model import Inventory
    from tidings.scan.session import SearchResult, UpdateSearcher


@app.command("scan")
@one_line_errors
def scan(
    state_dir: Annotated[Path, typer.Argument(help="The agent's state directory (enrolled).")],
    criteria: Annotated[
        str | None,
        typer.Option(help="WUA-style search criteria (docs/search.md).", show_default=False),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (docs/cli.md) instead of a table.")
    ] = False,
) -> None:
    """Sync the signed catalog and list the updates that match CRITERIA for this device."""
    from tidings.scan.session import UpdateSession

    with UpdateSession(state_dir) as session:
        searcher = session.create_searcher()
        if as_json:
            from tidings.cli.json_views import search_json

            print_json(search_json(searcher.search(criteria)))
            return
        result = _search_with_progress(searcher, criteria)
        # Withheld updates matched the inventory: it is not in question, their reason is shown.
        quiet = result.updates or result.withheld
        inventory = session.inventory() if not quiet else None
    _print_table(result)
    if inventory is not None:
        out.print(one_line(nothing_found(result, inventory, criteria, state_dir)))


def _search_with_progress(searcher: UpdateSearcher, criteria: str | None) -> SearchResult:
    from rich.progress import BarColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task("syncing catalog", total=None)

        def show(step: str, done: int, total: int) -> None:
            bar.update(task, description=f"syncing {step}", completed=done, total=total)

        return searcher.search(criteria, progress=show)


def _print_table(result: SearchResult) -> None:
    if result.updates:
        out.print(update_columns(result))
    for warning in result.warnings:
        err.print(labelled("warning:", "yellow", warning))
    s = result.stats
    out.print(
        f"{len(result.updates)} update(s); {s.bins_selected} index bins "
        f"({s.bins_verified} verified anew, {s.documents_fetched} index documents fetched), "
        f"{s.bytes_received:,} bytes in {s.seconds:.2f} s"
    )
    if result.withheld:
        out.print(one_line(withheld_text(result)))


def update_columns(result: SearchResult) -> str:
    """The updates as plain columns, title last: sizes, KB ids and titles are never cut,
    whatever the terminal's width, and each cell is shown on one line (``columns``)."""
    rows = [("kind", "classification", "KB", "size", "flags", "title")]
    for u in result.updates:
        flags = [
            name
            for name, on in (
                ("installed", u.is_installed),
                ("hidden", u.is_hidden),
                ("optional", u.browse_only),
                ("reboot", u.reboot_required),
                ("eula", u.eula_text is not None and not u.eula_accepted),
            )
            if on
        ]
        kb = ",".join(u.kb_ids) or "-"
        rows.append(
            (u.kind, u.classification, kb, f"{u.download_size:,}", " ".join(flags) or "-", u.title)
        )
    return columns(rows)


def withheld_text(result: SearchResult) -> str:
    """Why updates that match are not offered: each one's missing prerequisites."""
    count = len(result.withheld)
    said = "1 update applies but is" if count == 1 else f"{count} updates apply but are"
    reasons = []
    for w in result.withheld:
        missing = []
        for p in w.missing:
            if p in w.unpublished:
                missing.append(f"prerequisite {p}, which is neither published nor installed")
            else:
                missing.append(f"prerequisite {p} installed first")
        reasons.append(f"'{w.update.title}' needs {' and '.join(missing)}")
    return f"{said} withheld: {'; '.join(reasons)}"


def nothing_found(
    result: SearchResult, inventory: Inventory, criteria: str | None, state_dir: Path
) -> str:
    """What an empty search looked at, so the user can tell a wrong inventory from no news."""
    from tidings.scan.criteria import DEFAULT_CRITERIA

    os_info = inventory.os
    os_text = "no OS" if os_info is None else f"OS {os_info.product} {os_info.architecture}"
    hardware_ids = sum(len(d.hardware_ids) + len(d.compatible_ids) for d in inventory.devices)
    return (
        f"no updates apply: searched {result.stats.bins_selected} index bins for this device's "
        f"{os_text}, {len(inventory.products)} product(s), {len(inventory.store)} store "
        f"package(s) and {len(inventory.devices)} device(s) with {hardware_ids} hardware IDs; "
        f"{result.stats.candidates} candidate(s) evaluated with criteria "
        f'"{(criteria or "").strip() or DEFAULT_CRITERIA}". '
        f"See what this device reports with `tidings agent inventory {state_dir}`"
    )
