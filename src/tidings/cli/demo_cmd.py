"""``tidings demo``: the main job end to end, with a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tidings.cli.app import app, one_line_errors, out


@app.command("demo")
@one_line_errors
def demo(
    work_dir: Annotated[
        Path | None, typer.Option(help="Where to put the demo's files (default: a temp dir).")
    ] = None,
) -> None:
    """Publish a sample catalog, serve it over HTTPS, verify and download it as a device."""
    from rich.table import Table

    from tidings.demo import run_demo  # the service stack loads only for the commands using it

    summary = run_demo(work_dir, say=lambda line: out.print(f"  {line}", highlight=False))
    table = Table("kind", "update", "files", "bytes", "pieces verified", title="Device downloads")
    for u in summary.updates:
        table.add_row(u.kind, u.title, str(u.files), f"{u.bytes:,}", str(u.pieces))
    out.print(table)
    found = Table("device", "index bins", "metadata bytes", "updates found", title="Device scans")
    for d in summary.devices:
        found.add_row(d.name, str(d.bins), f"{d.bytes:,}", "\n".join(d.titles) or "(none)")
    out.print(found)
    out.print(
        f"Demo OK in {summary.seconds:.1f} s: {len(summary.updates)} updates published, served "
        f"over HTTPS at {summary.service_url}, verified with TUF (root v{summary.root_version}, "
        f"timestamp v{summary.timestamp_version}) and downloaded; {len(summary.devices)} devices "
        f"enrolled and scanned. Data: {summary.data_dir}"
    )
