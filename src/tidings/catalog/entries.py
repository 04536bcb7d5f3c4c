"""The targets entries that describe one update revision inside its bins (pure).

Per bin the update is filed in: ``<dir>/<uuid>.manifest.json``, whose custom field carries the
whole signed manifest, so a device scanning a bin needs no other request. In the first bin only:
``<dir>/<uuid>.payload.<name>`` for each payload and ``<dir>/<uuid>.pieces.<name>`` for its
piece map. docs/catalog.md documents the names and the custom fields.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from tuf.api.metadata import TargetFile

from tidings.catalog.layout import Bin
from tidings.manifest import UpdateManifest, manifest_to_dict

CUSTOM_KEY = "tidings"


@dataclass(frozen=True)
class StagedPayload:
    """A payload already in the content store, with its piece map."""

    name: str
    sha256: str
    size: int  # bytes
    piece_size: int  # bytes
    piece_map_sha256: str
    piece_map_size: int  # bytes


def manifest_document(manifest: UpdateManifest) -> bytes:
    """The manifest as the bytes a ``.manifest.json`` target holds (canonical JSON)."""
    return json.dumps(manifest_to_dict(manifest), sort_keys=True, separators=(",", ":")).encode()


def manifest_path(bin_: Bin, update_id: str) -> str:
    """Target path of an update's manifest entry in ``bin_``."""
    return f"{bin_.directory}/{update_id}.manifest.json"


def payload_path(bin_: Bin, update_id: str, name: str) -> str:
    """Target path of one payload (in the update's first bin)."""
    return f"{bin_.directory}/{update_id}.payload.{name}"


def pieces_path(bin_: Bin, update_id: str, name: str) -> str:
    """Target path of one payload's piece map (in the update's first bin)."""
    return f"{bin_.directory}/{update_id}.pieces.{name}"


def entry_prefix(bin_: Bin, update_id: str) -> str:
    """Every target of ``update_id`` in ``bin_`` starts with this."""
    return f"{bin_.directory}/{update_id}."


def build_entries(
    manifest: UpdateManifest,
    document: bytes,
    filed: dict[Bin, list[str]],
    payloads: list[StagedPayload],
) -> dict[str, list[TargetFile]]:
    """The targets to add to each bin (by role name) for ``manifest``.

    ``filed`` gives the bins in order (the first is the update's home) and the index keys the
    update is filed under in each; they travel signed as ``keys``, so a scan parses only the
    entries of keys its device has.
    """
    bins = list(filed)
    home = bins[0]
    doc_hashes = {"sha256": hashlib.sha256(document).hexdigest()}
    manifest_dict = manifest_to_dict(manifest)
    entries: dict[str, list[TargetFile]] = {}
    for bin_, keys in filed.items():
        path = manifest_path(bin_, manifest.id)
        custom = {
            CUSTOM_KEY: {"manifest": manifest_dict, "payload_dir": home.directory, "keys": keys}
        }
        entries[bin_.role] = [TargetFile(len(document), doc_hashes, path, {"custom": custom})]
    for p in payloads:
        map_path = pieces_path(home, manifest.id, p.name)
        payload_custom = {
            CUSTOM_KEY: {
                "update": manifest.id,
                "revision": manifest.revision,
                "piece_size": p.piece_size,
                "piece_map": map_path,
            }
        }
        entries[home.role] += [
            TargetFile(
                p.size,
                {"sha256": p.sha256},
                payload_path(home, manifest.id, p.name),
                {"custom": payload_custom},
            ),
            TargetFile(
                p.piece_map_size,
                {"sha256": p.piece_map_sha256},
                map_path,
                {"custom": {CUSTOM_KEY: {"piece_map_of": payload_path(home, manifest.id, p.name)}}},
            ),
        ]
    return entries
