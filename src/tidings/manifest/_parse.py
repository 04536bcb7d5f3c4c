"""The manifest rules: every field's type, bounds and format, and the cross-field checks.

This is the one place that decides whether a manifest is valid. ``codec`` (the signed JSON
form a device parses) and ``authoring`` (the TOML form a publisher writes) both open the
decoded data with ``open_manifest`` and read it with ``read_core``; they differ only in how
payloads and the EULA are given, and both finish with ``check_consistency``.

Invariants: a manifest of an unknown schema version is rejected before any other field is
looked at; every error is a one-line ``ManifestError`` naming the dotted field path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from tidings.errors import ManifestError
from tidings.manifest._reader import Check, FieldReader, Style, render
from tidings.manifest.model import (
    SCHEMA_VERSION,
    Applicability,
    Classification,
    DriverRule,
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

TITLE_MAX = 300  # characters
DESCRIPTION_MAX = 20_000  # characters
EULA_MAX = 200_000  # characters
PAYLOAD_NAME_MAX = 200  # characters
REVISION_MAX = 2**31 - 1
BUILD_MAX = 2**32 - 1
SIZE_MAX = 2**63 - 1  # bytes
PIECE_SIZE_MIN = 16 * 1024  # bytes
PIECE_SIZE_MAX = 16 * 1024 * 1024  # bytes
ARCHITECTURES = ("x86", "x64", "arm64")

MANIFEST_FIELDS = (
    "schema", "id", "revision", "kind", "title", "description", "classification", "severity",
    "kb", "cves", "release_date", "products", "categories", "supersedes", "prerequisites",
    "bundle", "applicability", "install", "eula",
)  # fmt: skip
APPLICABILITY_FIELDS = ("os", "installed", "not_installed", "driver", "store")
OS_FIELDS = ("product", "architectures", "min_version", "max_version", "min_build", "max_build")
PRODUCT_FIELDS = ("product", "min_version", "max_version")
DRIVER_FIELDS = ("hardware_ids", "compatible_ids", "version", "date", "class", "vendor")
STORE_FIELDS = ("package", "version")
INSTALL_FIELDS = ("reboot", "can_uninstall", "needs_user_input", "impact")
PAYLOAD_FILE_FIELDS = (
    "name", "size", "sha256", "piece_size", "piece_map_sha256", "piece_map_size",
)  # fmt: skip

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_KB = re.compile(r"KB[0-9]{1,10}")
_CVE = re.compile(r"CVE-[0-9]{4}-[0-9]{4,19}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
_HARDWARE_ID = re.compile(r"[!-~]{1,200}")
_UNSAFE_IN_FILE_NAME = frozenset('/\\:*?"<>|')
_RESERVED_FILE_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"{d}{n}" for d in ("COM", "LPT") for n in range(1, 10)]
)


# --- format checks: return the problem, or None ---------------------------------------------


def check_uuid(text: str) -> str | None:
    """A canonical lowercase UUID such as ``3f0a1c52-6a77-4c4e-9a53-2f1e0b3c4d5e``."""
    if _UUID.fullmatch(text):
        return None
    if _UUID.fullmatch(text.lower()):
        return f"expected a UUID in lowercase, got {render(text, 'json')}"
    return f"expected a UUID, got {render(text, 'json')}"


def _pattern_check(pattern: re.Pattern[str], what: str) -> Check:
    def check(text: str) -> str | None:
        return None if pattern.fullmatch(text) else f"expected {what}, got {render(text, 'json')}"

    return check


check_kb = _pattern_check(_KB, "a KB number such as KB5031354")
check_cve = _pattern_check(_CVE, "a CVE id such as CVE-2026-1234")
check_sha256 = _pattern_check(_SHA256, "64 lowercase hex digits")
check_name = _pattern_check(_NAME, "a name of letters, digits and . _ + - (at most 128)")
check_hardware_id = _pattern_check(_HARDWARE_ID, "a device id of printable ASCII without spaces")


def check_architecture(text: str) -> str | None:
    """One of ``x86``, ``x64``, ``arm64``."""
    if text in ARCHITECTURES:
        return None
    return f"expected one of {', '.join(ARCHITECTURES)}, got {render(text, 'json')}"


def check_payload_name(name: str) -> str | None:
    """A file name that is safe to create on any device: no directory part, nothing hidden.

    Refused: ``/ \\ : * ? " < > |``, control or invisible characters, a leading ``.``, a
    trailing ``.`` or space, Windows device names (``CON``, ``NUL``, ``COM1``...), more than
    200 characters.
    """
    if len(name) > PAYLOAD_NAME_MAX:
        return f"longer than {PAYLOAD_NAME_MAX} characters (got {len(name)})"
    if not name:
        return "must not be empty"
    shown = render(name, "json")
    if any(ch in _UNSAFE_IN_FILE_NAME for ch in name) or not name.isprintable():
        why = 'no path separators, control characters or :*?"<>|'
    elif name.startswith(".") or name.endswith((".", " ")):
        why = "no leading dot, no trailing dot or space"
    elif name.split(".", 1)[0].strip().upper() in _RESERVED_FILE_NAMES:
        why = "not a reserved device name"
    else:
        return None
    return f"not a safe file name ({why}), got {shown}"


def check_piece_size(size: int) -> str | None:
    """A power of two from 16 KiB to 16 MiB."""
    if PIECE_SIZE_MIN <= size <= PIECE_SIZE_MAX and size & (size - 1) == 0:
        return None
    return f"expected a power of two from {PIECE_SIZE_MIN} to {PIECE_SIZE_MAX} bytes, got {size}"


# --- reading ---------------------------------------------------------------------------------


def open_manifest(data: object, *, source: str, style: Style, payload_key: str) -> FieldReader:
    """Check the schema version first, then open the top-level table.

    The schema comes first so that a manifest from a newer schema is reported as such rather
    than as a list of unknown fields.

    Raises:
        ManifestError: not a table, an unsupported schema, or an unknown top-level field.
    """
    if isinstance(data, Mapping) and "schema" in data:
        schema = data["schema"]
        if isinstance(schema, int) and not isinstance(schema, bool) and schema != SCHEMA_VERSION:
            shown = render(schema, style)
            problem = f"unsupported schema version {shown} (this build reads {SCHEMA_VERSION})"
            raise ManifestError(source, "schema", problem)
    fields = (*MANIFEST_FIELDS, payload_key)
    reader = FieldReader.open(data, source=source, path="", style=style, fields=fields)
    reader.integer("schema", low=SCHEMA_VERSION, high=SCHEMA_VERSION)
    return reader


def read_core(r: FieldReader) -> UpdateManifest:
    """Read every field but ``eula`` and the payloads (left ``None`` and ``()``).

    Raises:
        ManifestError: the first invalid field, in document order of the schema.
    """
    update_id = r.text("id", check=check_uuid)
    kind = r.choice("kind", Kind)
    core = UpdateManifest(
        schema=SCHEMA_VERSION,
        id=update_id,
        revision=r.integer("revision", low=1, high=REVISION_MAX),
        kind=kind,
        title=r.text("title", max_len=TITLE_MAX),
        description=r.text(
            "description", max_len=DESCRIPTION_MAX, default="", multiline=True, allow_empty=True
        ),
        classification=r.choice("classification", Classification),
        severity=r.choice("severity", Severity, default=Severity.UNSPECIFIED),
        kb=r.texts("kb", check=check_kb),
        cves=r.texts("cves", check=check_cve),
        release_date=r.date("release_date"),
        products=r.texts("products", check=check_name),
        categories=r.texts("categories", max_len=100),
        supersedes=r.texts("supersedes", check=check_uuid),
        prerequisites=r.texts("prerequisites", check=check_uuid),
        bundle=r.texts("bundle", check=check_uuid),
        applicability=_read_applicability(r.table("applicability", fields=APPLICABILITY_FIELDS)),
        install=_read_install(r.table("install", fields=INSTALL_FIELDS)),
        eula=None,
        payloads=(),
    )
    _check_not_self(r, core)
    _check_kind(r, core)
    return core


def _check_not_self(r: FieldReader, m: UpdateManifest) -> None:
    for key, problem in (
        ("supersedes", "an update cannot supersede itself"),
        ("prerequisites", "an update cannot require itself"),
        ("bundle", "a bundle cannot contain itself"),
    ):
        ids: tuple[str, ...] = getattr(m, key)
        if m.id in ids:
            r.fail_item(key, ids.index(m.id), problem)


def _check_kind(r: FieldReader, m: UpdateManifest) -> None:
    app = m.applicability
    needed: dict[Kind, object] = {Kind.OS: app.os, Kind.DRIVER: app.driver, Kind.STORE: app.store}
    if m.kind in needed and needed[m.kind] is None:
        r.fail_at(f"applicability.{m.kind}", f'required when kind is "{m.kind}"')
    for rule, kind in ((app.driver, Kind.DRIVER), (app.store, Kind.STORE)):
        if rule is not None and m.kind != kind:
            r.fail_at(f"applicability.{kind}", f'allowed only when kind is "{kind}"')
    if m.kind == Kind.APP and not (m.products or app.installed):
        r.fail("products", 'kind "app" needs an entry here or in applicability.installed')
    if m.kind == Kind.DEFINITIONS and not m.products:
        r.fail("products", 'must not be empty when kind is "definitions"')


def _read_range(t: FieldReader, *, exclusive_max: bool) -> tuple[Version | None, Version | None]:
    low, high = t.maybe_version("min_version"), t.maybe_version("max_version")
    if low is not None and high is not None:
        if exclusive_max and high <= low:
            t.fail("max_version", f"must be greater than min_version {low} (it is exclusive)")
        if not exclusive_max and high < low:
            t.fail("max_version", f"must not be smaller than min_version {low}")
    return low, high


def _read_os(t: FieldReader) -> OsRule:
    product = t.text("product", check=check_name)
    architectures = t.texts("architectures", check=check_architecture, max_items=3)
    low, high = _read_range(t, exclusive_max=False)
    min_build = t.maybe_integer("min_build", low=0, high=BUILD_MAX)
    max_build = t.maybe_integer("max_build", low=0, high=BUILD_MAX)
    if min_build is not None and max_build is not None and max_build < min_build:
        t.fail("max_build", f"must not be smaller than min_build {min_build}")
    return OsRule(product, architectures, low, high, min_build, max_build)


def _read_product(t: FieldReader) -> ProductRule:
    product = t.text("product", check=check_name)
    low, high = _read_range(t, exclusive_max=True)
    return ProductRule(product, low, high)


def _read_driver(t: FieldReader) -> DriverRule:
    hardware_ids = t.texts("hardware_ids", check=check_hardware_id)
    compatible_ids = t.texts("compatible_ids", check=check_hardware_id)
    if not hardware_ids and not compatible_ids:
        t.fail("hardware_ids", "hardware_ids and compatible_ids must not both be empty")
    return DriverRule(
        hardware_ids=hardware_ids,
        compatible_ids=compatible_ids,
        version=t.version("version"),
        date=t.date("date"),
        driver_class=t.text("class", max_len=100, default="", allow_empty=True),
        vendor=t.text("vendor", default="", allow_empty=True),
    )


def _read_applicability(t: FieldReader | None) -> Applicability:
    if t is None:
        return Applicability()
    os_table = t.table("os", fields=OS_FIELDS)
    driver = t.table("driver", fields=DRIVER_FIELDS)
    store = t.table("store", fields=STORE_FIELDS)
    return Applicability(
        os=None if os_table is None else _read_os(os_table),
        installed=tuple(_read_product(p) for p in t.tables("installed", fields=PRODUCT_FIELDS)),
        not_installed=tuple(
            _read_product(p) for p in t.tables("not_installed", fields=PRODUCT_FIELDS)
        ),
        driver=None if driver is None else _read_driver(driver),
        store=None
        if store is None
        else StoreRule(store.text("package", check=check_name), store.version("version")),
    )


def _read_install(t: FieldReader | None) -> InstallBehaviour:
    if t is None:
        return InstallBehaviour()
    return InstallBehaviour(
        reboot=t.choice("reboot", Reboot, default=Reboot.NEVER),
        can_uninstall=t.boolean("can_uninstall", default=True),
        needs_user_input=t.boolean("needs_user_input", default=False),
        impact=t.choice("impact", Impact, default=Impact.NORMAL),
    )


def read_eula_text(t: FieldReader) -> str:
    """The ``text`` of an ``eula`` table.

    Raises:
        ManifestError: missing, empty, too long or with control characters.
    """
    return t.text("text", max_len=EULA_MAX, multiline=True)


def read_payload_file(t: FieldReader) -> PayloadFile:
    """One entry of the signed ``payloads`` array.

    Raises:
        ManifestError: a field is missing, of the wrong type, out of range or malformed.
    """
    return PayloadFile(
        name=t.text("name", max_len=PAYLOAD_NAME_MAX, check=check_payload_name),
        size=t.integer("size", low=0, high=SIZE_MAX),
        sha256=t.text("sha256", check=check_sha256),
        piece_size=read_piece_size(t),
        piece_map_sha256=t.text("piece_map_sha256", check=check_sha256),
        piece_map_size=t.integer("piece_map_size", low=0, high=SIZE_MAX),
    )


def read_piece_size(t: FieldReader, default: int | None = None) -> int:
    """The ``piece_size`` field: a power of two from 16 KiB to 16 MiB, in bytes.

    Raises:
        ManifestError: not an integer or not such a power of two.
    """
    size = t.integer("piece_size", low=0, high=SIZE_MAX, default=default)
    problem = check_piece_size(size)
    if problem is not None:
        t.fail("piece_size", problem)
    return size


def check_payloads(r: FieldReader, m: UpdateManifest, key: str, names: Sequence[str]) -> None:
    """At least one payload unless the update is a bundle; payload names unique.

    Raises:
        ManifestError: naming ``key`` (``payloads`` or ``payload``) or the duplicate's name.
    """
    if not names and not m.bundle:
        r.fail(key, 'at least one payload is required unless "bundle" lists member updates')
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            r.fail_at(
                f"{key}[{index}].name",
                f"duplicate payload name {render(name, r.style)} (also {key}[{seen[name]}])",
            )
        seen[name] = index
