"""Where an update revision's files are served, and the targets that describe them (pure).

An update's manifest travels inside its keys' index documents (``keyindex.py``); its files are
served from its *home* bin directory (the bin of its first index key), named as TUF consistent
snapshots expect (``<sha256>.<name>``):

* ``<home>/<uuid>.payload.<name>``: each payload;
* ``<home>/<uuid>.pieces.<name>``: that payload's piece map.

Their lengths and hashes are in the signed manifest (``payloads``), so a device builds the
``TargetFile`` to download and verify each one from the manifest (``payload_target``).
docs/catalog.md documents the names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tuf.api.metadata import TargetFile

from tidings.manifest import PayloadFile, UpdateManifest, manifest_to_dict


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
    """The manifest as canonical bytes (identifies a revision's content by its hash)."""
    return json_document(manifest_to_dict(manifest))


def json_document(doc: dict[str, Any]) -> bytes:
    """A manifest's JSON form as the bytes ``manifest_document`` gives."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def payload_path(directory: str, update_id: str, name: str) -> str:
    """Target path of one payload in its home bin ``directory``."""
    return f"{directory}/{update_id}.payload.{name}"


def pieces_path(directory: str, update_id: str, name: str) -> str:
    """Target path of one payload's piece map in its home bin ``directory``."""
    return f"{directory}/{update_id}.pieces.{name}"


def payload_target(payload_dir: str, update_id: str, payload: PayloadFile) -> TargetFile:
    """The target to download one payload with, pinned by the signed manifest."""
    path = payload_path(payload_dir, update_id, payload.name)
    return TargetFile(payload.size, {"sha256": payload.sha256}, path)


def piece_map_target(payload_dir: str, update_id: str, payload: PayloadFile) -> TargetFile:
    """The target to download one payload's piece map with, pinned by the signed manifest."""
    path = pieces_path(payload_dir, update_id, payload.name)
    return TargetFile(payload.piece_map_size, {"sha256": payload.piece_map_sha256}, path)
