"""What ``--json`` prints: plain JSON values, named as the Python API names them (pure).

Every document has ``"schema": SCHEMA`` at the top; docs/cli.md describes each one. A field
that changes meaning or disappears bumps ``SCHEMA``; new fields do not.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tidings.catalog.lookup import Located
    from tidings.scan.inventory_model import Inventory
    from tidings.scan.session import SearchResult, Update

SCHEMA = 1

JsonObject = dict[str, Any]


def catalog_json(updates: Iterable[Located]) -> JsonObject:
    """``tidings updates --json``: the fields of ``Publisher.updates()`` (``Located``)."""
    return {
        "schema": SCHEMA,
        "updates": [
            {
                "id": u.id,
                "revision": u.revision,
                "kind": u.kind,
                "title": u.title,
                "bins": list(u.bins),
                "keys": list(u.keys),
                "manifest_sha256": u.manifest_sha256,
                "state": u.state,
            }
            for u in updates
        ],
    }


def search_json(result: SearchResult) -> JsonObject:
    """``tidings scan --json``: ``SearchResult`` with its updates and stats."""
    s = result.stats
    return {
        "schema": SCHEMA,
        "updates": [update_json(u) for u in result.updates],
        "warnings": list(result.warnings),
        "stats": {
            "seconds": round(s.seconds, 4),
            "bytes_received": s.bytes_received,
            "bins_selected": s.bins_selected,
            "bins_verified": s.bins_verified,
            "documents_fetched": s.documents_fetched,
            "candidates": s.candidates,
        },
    }


def update_json(u: Update) -> JsonObject:
    """One ``Update`` as its properties name it."""
    behaviour = u.install_behaviour
    return {
        "id": u.id,
        "revision": u.revision,
        "title": u.title,
        "description": u.description,
        "kind": u.kind,
        "update_type": u.update_type,
        "classification": u.classification,
        "severity": u.severity,
        "kb_ids": list(u.kb_ids),
        "cve_ids": list(u.cve_ids),
        "categories": list(u.categories),
        "supersedes": list(u.supersedes),
        "download_size": u.download_size,
        "is_installed": u.is_installed,
        "is_downloaded": u.is_downloaded,
        "is_hidden": u.is_hidden,
        "is_assigned": u.is_assigned,
        "is_superseded": u.is_superseded,
        "browse_only": u.browse_only,
        "reboot_required": u.reboot_required,
        "install_behaviour": {
            "reboot": behaviour.reboot.value,
            "can_uninstall": behaviour.can_uninstall,
            "needs_user_input": behaviour.needs_user_input,
            "impact": behaviour.impact.value,
        },
        "eula_text": u.eula_text,
        "eula_accepted": u.eula_accepted,
        "device": u.device,
    }


def inventory_json(inventory: Inventory, sources: dict[str, str]) -> JsonObject:
    """``tidings agent inventory --json``: the ``Inventory`` fields, versions as text.

    ``sources`` says, per part (``os``, ``products``, ``devices``, ``store``), where it came
    from: ``"machine"`` (the real providers) or ``"inventory.toml"`` (the override file).
    """
    os_info = inventory.os
    return {
        "schema": SCHEMA,
        "os": None
        if os_info is None
        else {
            "product": os_info.product,
            "version": str(os_info.version),
            "build": os_info.build,
            "architecture": os_info.architecture,
        },
        "products": [{"product": p.product, "version": str(p.version)} for p in inventory.products],
        "devices": [
            {
                "instance_id": d.instance_id,
                "hardware_ids": list(d.hardware_ids),
                "compatible_ids": list(d.compatible_ids),
                "driver_version": None if d.driver_version is None else str(d.driver_version),
                "driver_date": None if d.driver_date is None else d.driver_date.isoformat(),
            }
            for d in inventory.devices
        ],
        "store": [{"package": p.package, "version": str(p.version)} for p in inventory.store],
        "installed_updates": sorted(inventory.installed_updates),
        "sources": dict(sources),
    }
