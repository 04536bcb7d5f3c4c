"""``tidings scan STATE_DIR [--criteria ...] [--json]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tidings.cli.app import app, err, labelled, one_line_errors, out

if TYPE_CHECKING:
    from tidings.scan.session import SearchResult, Update


@app.command("scan")
@one_line_errors
def scan(
    state_dir: Annotated[Path, typer.Argument(help="The agent's state directory (enrolled).")],
    criteria: Annotated[
        str | None,
        typer.Option(help="WUA-style search criteria (docs/search.md).", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Sync the signed catalog and list the updates that match CRITERIA for this device."""
    from rich.progress import BarColumn, Progress, TextColumn

    from tidings.scan.session import UpdateSession

    with UpdateSession(state_dir) as session:
        searcher = session.create_searcher()
        if as_json:
            result = searcher.search(criteria)
        else:
            with Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                console=err,
                transient=True,
                disable=not err.is_terminal,  # a pipe gets no drawing and no blank line
            ) as bar:
                task = bar.add_task("syncing catalog", total=None)

                def show(step: str, done: int, total: int) -> None:
                    bar.update(task, description=f"syncing {step}", completed=done, total=total)

                result = searcher.search(criteria, progress=show)
    if as_json:
        out.print_json(json.dumps(result_json(result)))
        return
    _print_table(result)


def result_json(result: SearchResult) -> dict[str, Any]:
    """The search result as plain JSON types (for ``--json`` and the local API)."""
    return {
        "updates": [update_json(u) for u in result.updates],
        "warnings": list(result.warnings),
        "stats": {
            "seconds": round(result.stats.seconds, 4),
            "bytes_received": result.stats.bytes_received,
            "bins_selected": result.stats.bins_selected,
            "bins_verified": result.stats.bins_verified,
            "documents_fetched": result.stats.documents_fetched,
        },
    }


def update_json(u: Update) -> dict[str, Any]:
    """One update as plain JSON types."""
    behaviour = u.install_behaviour
    return {
        "id": u.id,
        "revision": u.revision,
        "title": u.title,
        "kind": u.kind,
        "type": u.update_type,
        "classification": u.classification,
        "severity": u.severity,
        "kb": list(u.kb_ids),
        "cves": list(u.cve_ids),
        "categories": list(u.categories),
        "supersedes": list(u.supersedes),
        "download_size": u.download_size,
        "is_installed": u.is_installed,
        "is_downloaded": u.is_downloaded,
        "is_hidden": u.is_hidden,
        "is_assigned": u.is_assigned,
        "browse_only": u.browse_only,
        "reboot": behaviour.reboot.value,
        "can_uninstall": behaviour.can_uninstall,
        "eula": u.eula_text is not None,
        "eula_accepted": u.eula_accepted,
        "device": u.device,
    }


def _print_table(result: SearchResult) -> None:
    from rich.table import Table

    table = Table("kind", "title", "classification", "KB", "size", "flags", title="Updates found")
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
        table.add_row(
            u.kind,
            u.title,
            u.classification,
            ", ".join(u.kb_ids),
            f"{u.download_size:,}",
            " ".join(flags),
        )
    out.print(table)
    for warning in result.warnings:
        err.print(labelled("warning:", "yellow", warning))
    s = result.stats
    out.print(
        f"{len(result.updates)} update(s); {s.bins_selected} index bins "
        f"({s.bins_verified} verified anew, {s.documents_fetched} index documents fetched), "
        f"{s.bytes_received:,} bytes in {s.seconds:.2f} s"
    )
