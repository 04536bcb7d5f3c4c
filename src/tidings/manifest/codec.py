"""The signed JSON form of a manifest: what the publisher signs and what a device parses.

``manifest_to_dict`` gives a plain dict of JSON types (str, int, bool, None, list, dict);
``manifest_from_dict`` reads such a dict back from *untrusted* input (docs/architecture.md, "Trust
model": signed metadata is still parsed defensively) and fully validates it with the rules of
``tidings.manifest._parse``. The form is documented in docs/manifest.md.

Invariants: ``manifest_from_dict(manifest_to_dict(m), source=...) == m`` for every valid
``m``, and ``manifest_to_dict`` of the result is the same dict; ``manifest_from_dict`` raises
nothing but ``ManifestError``, whatever it is given.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tidings.errors import ManifestError
from tidings.manifest._parse import (
    PAYLOAD_FILE_FIELDS,
    check_payloads,
    open_manifest,
    read_core,
    read_eula_text,
    read_payload_file,
)
from tidings.manifest.model import (
    DriverRule,
    Eula,
    OsRule,
    PayloadFile,
    ProductRule,
    StoreRule,
    UpdateManifest,
    Version,
)

PAYLOADS_KEY = "payloads"


def _version(v: Version | None) -> str | None:
    return None if v is None else str(v)


def _os(rule: OsRule | None) -> dict[str, Any] | None:
    if rule is None:
        return None
    return {
        "product": rule.product,
        "architectures": list(rule.architectures),
        "min_version": _version(rule.min_version),
        "max_version": _version(rule.max_version),
        "min_build": rule.min_build,
        "max_build": rule.max_build,
    }


def _product(rule: ProductRule) -> dict[str, Any]:
    return {
        "product": rule.product,
        "min_version": _version(rule.min_version),
        "max_version": _version(rule.max_version),
    }


def _driver(rule: DriverRule | None) -> dict[str, Any] | None:
    if rule is None:
        return None
    return {
        "hardware_ids": list(rule.hardware_ids),
        "compatible_ids": list(rule.compatible_ids),
        "version": str(rule.version),
        "date": rule.date.isoformat(),
        "class": rule.driver_class,
        "vendor": rule.vendor,
    }


def _store(rule: StoreRule | None) -> dict[str, Any] | None:
    return None if rule is None else {"package": rule.package, "version": str(rule.version)}


def _payload(p: PayloadFile) -> dict[str, Any]:
    return {
        "name": p.name,
        "size": p.size,
        "sha256": p.sha256,
        "piece_size": p.piece_size,
        "piece_map_sha256": p.piece_map_sha256,
        "piece_map_size": p.piece_map_size,
    }


def manifest_to_dict(m: UpdateManifest) -> dict[str, Any]:
    """The signed JSON form of ``m``: a fresh dict of JSON types.

    Dates are ``"YYYY-MM-DD"``, versions their text, enums their values, absent rules and
    optional values ``None``. Every field is present.

    Args:
        m: the manifest; expected to be valid (see ``validate_manifest``).

    Returns:
        A dict that ``json.dumps`` can serialise and ``manifest_from_dict`` reads back to ``m``.
    """
    app = m.applicability
    return {
        "schema": m.schema,
        "id": m.id,
        "revision": m.revision,
        "kind": m.kind.value,
        "title": m.title,
        "description": m.description,
        "classification": m.classification.value,
        "severity": m.severity.value,
        "kb": list(m.kb),
        "cves": list(m.cves),
        "release_date": m.release_date.isoformat(),
        "products": list(m.products),
        "categories": list(m.categories),
        "supersedes": list(m.supersedes),
        "prerequisites": list(m.prerequisites),
        "bundle": list(m.bundle),
        "applicability": {
            "os": _os(app.os),
            "installed": [_product(r) for r in app.installed],
            "not_installed": [_product(r) for r in app.not_installed],
            "driver": _driver(app.driver),
            "store": _store(app.store),
        },
        "install": {
            "reboot": m.install.reboot.value,
            "can_uninstall": m.install.can_uninstall,
            "needs_user_input": m.install.needs_user_input,
            "impact": m.install.impact.value,
        },
        "eula": None if m.eula is None else {"text": m.eula.text},
        PAYLOADS_KEY: [_payload(p) for p in m.payloads],
    }


def manifest_from_dict(data: object, *, source: str) -> UpdateManifest:
    """Read and fully validate the signed JSON form of a manifest from untrusted input.

    Args:
        data: the decoded JSON (normally a dict); anything else is reported, not crashed on.
        source: what to name in error messages, e.g. the target path in the catalog.

    Returns:
        The manifest, valid by construction.

    Raises:
        ManifestError: anything wrong: an unknown schema version, an unknown or missing field,
            a wrong type (a bool is not an integer), a value out of bounds or malformed, or an
            inconsistency between fields (e.g. kind ``driver`` without a driver rule). The
            ``field`` names the dotted path, e.g. ``payloads[0].sha256``.
    """
    r = open_manifest(data, source=source, style="json", payload_key=PAYLOADS_KEY)
    core = read_core(r)
    eula_table = r.table("eula", fields=("text",))
    eula = None if eula_table is None else Eula(read_eula_text(eula_table))
    payloads = tuple(
        read_payload_file(t) for t in r.tables(PAYLOADS_KEY, fields=PAYLOAD_FILE_FIELDS)
    )
    check_payloads(r, core, PAYLOADS_KEY, [p.name for p in payloads])
    return replace(core, eula=eula, payloads=payloads)


def validate_manifest(m: UpdateManifest, *, source: str = "manifest") -> None:
    """Check a manifest built in code (e.g. by the publisher) against every schema rule.

    Args:
        m: the manifest to check.
        source: what to name in error messages.

    Raises:
        ManifestError: the first rule ``m`` breaks, exactly as ``manifest_from_dict`` would
            report it for the signed form.
    """
    try:
        data = manifest_to_dict(m)
    except (AttributeError, TypeError, ValueError) as e:
        # A hand-built value of the wrong type (e.g. a str where a Version belongs).
        raise ManifestError(source, "", f"not a well-formed manifest value ({e})") from None
    if manifest_from_dict(data, source=source) != m:
        # Only possible when a field holds a value of the wrong Python type (a list for a
        # tuple, a str for an enum): the signed form would not say what ``m`` says.
        raise ManifestError(source, "", "a field holds a value of the wrong Python type")
