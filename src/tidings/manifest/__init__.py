"""The update manifest: schema, TOML authoring, validation (pure; docs/architecture.md).

A manifest is the signed description of one update revision. Three forms, one set of rules:

- ``model``: the typed values (``UpdateManifest`` and its parts, ``Version``).
- ``codec``: the signed JSON form; ``manifest_from_dict`` validates untrusted input.
- ``authoring``: the TOML form a publisher writes; ``load_manifest`` reads and checks it.

The rules themselves live once, in ``_parse`` (over the typed reader in ``_reader``). Every
invalid manifest raises ``tidings.errors.ManifestError`` with a one-line
``<source>: <field path>: <problem>`` message. See docs/manifest.md.
"""

from __future__ import annotations

from tidings.manifest.authoring import AuthoredManifest, PayloadSource, load_manifest
from tidings.manifest.codec import manifest_from_dict, manifest_to_dict, validate_manifest
from tidings.manifest.model import (
    SCHEMA_VERSION,
    Applicability,
    Classification,
    DriverRule,
    Eula,
    Impact,
    InstallBehaviour,
    Kind,
    OsRule,
    PayloadFile,
    ProductRule,
    Reboot,
    Severity,
    StoreRule,
    UpdateManifest,
    Version,
)

__all__ = [
    "SCHEMA_VERSION",
    "Applicability",
    "AuthoredManifest",
    "Classification",
    "DriverRule",
    "Eula",
    "Impact",
    "InstallBehaviour",
    "Kind",
    "OsRule",
    "PayloadFile",
    "PayloadSource",
    "ProductRule",
    "Reboot",
    "Severity",
    "StoreRule",
    "UpdateManifest",
    "Version",
    "load_manifest",
    "manifest_from_dict",
    "manifest_to_dict",
    "validate_manifest",
]
