"""Publishing commands: ``publish``, ``revoke``, ``updates`` and ``keys rotate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tidings.cli.app import app, columns, err, keys_app, one_line_errors, out, print_json

if TYPE_CHECKING:
    from tidings.catalog.lookup import Located
    from tidings.catalog.publisher import PublishResult

DataDir = Annotated[Path, typer.Argument(help="The service's data directory.")]


def say_waiting(lock: Path) -> None:
    """One line on stderr when the publish lock is busy, so a wait is never silent."""
    err.print(f"waiting for {lock}: another publish or gc is running")


@app.command("publish")
@one_line_errors
def publish(
    data_dir: DataDir,
    manifests: Annotated[list[Path], typer.Argument(help="Manifest TOML files.")],
) -> None:
    """Publish update revisions (one atomic catalog change for all MANIFESTS)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from tidings.catalog.publisher import Publisher, check_distinct_ids
    from tidings.manifest import load_manifest

    publisher = Publisher(data_dir, on_lock_wait=say_waiting)
    authored = [load_manifest(path) for path in manifests]  # all valid before any work
    check_distinct_ids(authored, [_printable(str(path)) for path in manifests])
    with Progress(
        TextColumn("hashing payloads"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=out,
        transient=True,
        disable=not out.is_terminal,  # a pipe or a file gets the result lines only
    ) as progress:
        task = progress.add_task("hashing", total=None)
        results = publisher.publish_many(
            authored,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    for path, result in zip(manifests, results, strict=True):
        out.print(f"published {path.name}: {result.update_id} {_what(result)}")


def _printable(text: str) -> str:
    """A path as given, on one line (an error message is one line)."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _what(result: PublishResult) -> str:
    if result.unchanged:
        what = "unchanged"
    elif result.previous_revision is not None:
        what = f"revision {result.revision} replaces {result.previous_revision}"
    else:
        what = f"revision {result.revision}"
    return f"{what} in {', '.join(result.bins)}"


@app.command("revoke")
@one_line_errors
def revoke(
    data_dir: DataDir,
    update_id: Annotated[str, typer.Argument(help="The update's id (UUID).")],
) -> None:
    """Withdraw an update: devices stop being offered it."""
    from tidings.catalog.publisher import Publisher

    located = Publisher(data_dir, on_lock_wait=say_waiting).revoke(update_id)
    out.print(f"revoked {located.id} revision {located.revision} ({located.title})")


@app.command("updates")
@one_line_errors
def updates(
    data_dir: DataDir,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (docs/cli.md) instead of columns.")
    ] = False,
) -> None:
    """List the updates in the catalog, published and revoked."""
    from tidings.catalog.publisher import Publisher

    found = Publisher(data_dir, on_lock_wait=say_waiting).updates()
    if as_json:
        from tidings.cli.json_views import catalog_json

        print_json(catalog_json(found))
        return
    if not found:
        out.print(
            f"the catalog has no updates; publish one with `tidings publish {data_dir} update.toml`"
        )
        return
    out.print(update_columns(found))  # one call: a catalog can be 100,000 lines


def update_columns(found: list[Located]) -> str:
    """The catalog as columns; the title comes last, so it is never padded."""
    rows = [("id", "rev", "kind", "state", "title")]
    rows += [(u.id, str(u.revision), u.kind, u.state, u.title) for u in found]
    return columns(rows)


@keys_app.command("rotate")
@one_line_errors
def rotate(
    data_dir: DataDir,
    role: Annotated[
        str,
        typer.Argument(
            help="root, timestamp, snapshot, targets, a kind role "
            "(os, apps, drivers, definitions, store) or a "
            "vendor role (vendor.pci-8086)."
        ),
    ],
) -> None:
    """Replace a role's signing keys; old keys are kept under keys/retired/."""
    from tidings.catalog.publisher import Publisher
    from tidings.catalog.rotation import rotate_keys

    result = rotate_keys(Publisher(data_dir, on_lock_wait=say_waiting), role)
    out.print(
        f"rotated {role}: retired {', '.join(k[:12] for k in result.retired)}; "
        f"new {', '.join(k[:12] for k in result.added)}"
    )
