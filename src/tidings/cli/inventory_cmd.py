"""``tidings agent inventory STATE_DIR [--json]``: what this device tells the catalog it is.

The inventory shown is the one a scan uses (``UpdateSession.inventory``): the real providers,
with each part the state directory's ``inventory.toml`` gives replacing the machine's
(docs/applicability.md, "Inventory file").
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tidings.cli.app import agent_app, one_line, one_line_errors, out, print_json

if TYPE_CHECKING:
    from tidings.scan.inventory_model import HardwareDevice, Inventory

PARTS = ("os", "products", "devices", "store")
MACHINE = "machine"


@agent_app.command("inventory")
@one_line_errors
def inventory(
    state_dir: Annotated[Path, typer.Argument(help="The agent's state directory (enrolled).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (docs/cli.md) instead of text.")
    ] = False,
) -> None:
    """Show what this device reports: OS, products, hardware IDs, store packages, installed."""
    from tidings.scan.inventory import load_inventory_file
    from tidings.scan.session import INVENTORY_FILE, UpdateSession

    with UpdateSession(state_dir) as session:
        found = session.inventory()
    sources = dict.fromkeys(PARTS, MACHINE)
    override_path = state_dir / INVENTORY_FILE
    if override_path.exists():
        override = load_inventory_file(override_path)
        for part in PARTS:
            if getattr(override, part) is not None:
                sources[part] = INVENTORY_FILE
    if as_json:
        from tidings.cli.json_views import inventory_json

        print_json(inventory_json(found, sources))
        return
    # Ids come from the machine's sysfs and inventory.toml: one terminal-safe line each.
    out.print("\n".join(one_line(line) for line in inventory_lines(found, sources)))


def inventory_lines(found: Inventory, sources: dict[str, str]) -> list[str]:
    """The inventory as indented text, each part saying where it came from."""

    def heading(title: str, part: str, count: int | None = None) -> str:
        counted = "" if count is None else f" ({count})"
        origin = "this machine" if sources[part] == MACHINE else sources[part]
        return f"{title}{counted}, from {origin}:"

    lines = [heading("os", "os")]
    os_info = found.os
    lines.append(
        "  (none)"
        if os_info is None
        else f"  {os_info.product} version {os_info.version} build {os_info.build} "
        f"{os_info.architecture}"
    )
    lines.append(heading("products", "products", len(found.products)))
    lines += [f"  {p.product} {p.version}" for p in found.products]
    lines.append(heading("devices", "devices", len(found.devices)))
    for device in found.devices:
        lines += _device_lines(device)
    lines.append(heading("store packages", "store", len(found.store)))
    lines += [f"  {p.package} {p.version}" for p in found.store]
    lines.append(f"installed updates ({len(found.installed_updates)}), from this agent's records:")
    lines += [f"  {update_id}" for update_id in sorted(found.installed_updates)]
    return lines


def _device_lines(device: HardwareDevice) -> list[str]:
    lines = [f"  {device.instance_id}"]
    if device.hardware_ids:
        lines.append(f"    hardware IDs: {' '.join(device.hardware_ids)}")
    if device.compatible_ids:
        lines.append(f"    compatible IDs: {' '.join(device.compatible_ids)}")
    if device.driver_version is not None:
        date = f" ({device.driver_date.isoformat()})" if device.driver_date else ""
        lines.append(f"    driver: {device.driver_version}{date}")
    return lines
