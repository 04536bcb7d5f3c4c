"""``tidings server gc``: remove what no recent snapshot reaches (catalog/gc.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tidings.cli.app import one_line_errors, out, server_app


# One paragraph: Typer prints a docstring's line breaks in --help as they are.
@server_app.command(
    "gc",
    help="Remove old metadata, index documents, content and temporary files that no snapshot "
    "current within the last --keep-days reaches: a device whose scan started within that "
    "window keeps working (with --keep-days 0, a scan that started before the last publish may "
    "have to start again). Safe while publishing.",
)
@one_line_errors
def gc(
    data_dir: Annotated[Path, typer.Argument(help="The service's data directory.")],
    keep_days: Annotated[
        float,
        typer.Option(
            min=0,
            help="Keep everything any snapshot current within this many days reaches.",
        ),
    ] = 7.0,
    dry_run: Annotated[bool, typer.Option(help="Only say what would be removed.")] = False,
) -> None:
    """Remove what no recent snapshot reaches (the help text is the decorator's ``help``)."""
    from datetime import timedelta

    from tidings.catalog.gc import CATEGORIES, GcPolicy, collect, version_ranges
    from tidings.cli.catalog_cmds import say_waiting
    from tidings.clock import SystemClock

    policy = GcPolicy(keep=timedelta(days=keep_days))
    report = collect(
        data_dir, clock=SystemClock(), policy=policy, dry_run=dry_run, on_lock_wait=say_waiting
    )
    verb = "would remove" if dry_run else "removed"
    kept = report.retained_snapshots
    window = f"current within the last {keep_days:g} days"
    if len(kept) == 1:
        what = f"1 snapshot (version {kept[0]}): the only one {window}"
    else:
        what = f"{len(kept)} snapshots (versions {version_ranges(kept)}): those {window}"
    lines = [f"{'would keep' if dry_run else 'keeping'} {what}"]
    lines += [
        f"{verb} {report.files[c]} {c} file(s), {report.bytes[c]:,} bytes" for c in CATEGORIES
    ]
    lines.append(
        f"{verb} {sum(report.files.values())} file(s) in all, freeing {report.freed_bytes:,} bytes"
    )
    for line in lines:
        out.print(line, highlight=False, markup=False)
