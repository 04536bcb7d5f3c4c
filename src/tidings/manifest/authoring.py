"""The TOML authoring form of a manifest: what a publisher writes next to the payload files.

``load_manifest`` reads one TOML file (at most 1 MiB), applies the same rules as the signed
form (``tidings.manifest._parse``), resolves each ``[[payload]]`` path and the optional EULA
file inside the manifest's directory, and returns an ``AuthoredManifest``. It hashes nothing:
the publisher hashes the payloads and fills in ``UpdateManifest.payloads``. The format is
documented in docs/manifest.md.

Invariants: the only I/O is reading the manifest, the EULA file and ``stat`` of payloads;
every path it returns is absolute, resolved and inside the manifest's directory (symlinks
that lead outside are refused); every failure is a one-line ``ManifestError`` naming the file's
base name, the dotted field path and the problem.
"""

from __future__ import annotations

import re
import stat
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from tidings.errors import ManifestError
from tidings.manifest._parse import (
    EULA_MAX,
    PAYLOAD_NAME_MAX,
    SIZE_MAX,
    check_payload_name,
    check_payloads,
    check_sha256,
    open_manifest,
    read_core,
    read_eula_text,
    read_piece_size,
)
from tidings.manifest._reader import FieldReader, check_text, render
from tidings.manifest.model import Eula, UpdateManifest

MANIFEST_MAX_BYTES = 1024 * 1024
EULA_FILE_MAX_BYTES = 200_000
DEFAULT_PIECE_SIZE = 1_048_576  # bytes
PAYLOAD_KEY = "payload"
PAYLOAD_SOURCE_FIELDS = ("path", "name", "sha256", "size", "piece_size")
EULA_FIELDS = ("text", "file")
_TOML_POSITION = re.compile(r"(.*) \(at (line \d+, column \d+|end of document)\)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class PayloadSource:
    """A payload file as the author names it, before the publisher hashes it."""

    name: str  # the file name the device sees; default: the path's base name
    path: Path  # absolute, resolved, inside the manifest's directory
    sha256: str | None  # optional cross-check given by the author
    size: int | None  # bytes; optional cross-check given by the author
    piece_size: int = DEFAULT_PIECE_SIZE  # bytes; a power of two from 16 KiB to 16 MiB


@dataclass(frozen=True, slots=True)
class AuthoredManifest:
    """A loaded TOML manifest: everything but the payload hashes."""

    source: str  # the manifest file's name, used in error messages
    manifest: UpdateManifest  # with payloads=(): the publisher fills PayloadFile in
    payload_sources: tuple[PayloadSource, ...]


def load_manifest(path: Path) -> AuthoredManifest:
    """Read and validate a TOML manifest and locate its payload files.

    Args:
        path: the ``.toml`` file. Payload and EULA paths in it are relative to its directory.

    Returns:
        The manifest (``payloads=()``), with one ``PayloadSource`` per ``[[payload]]``.

    Raises:
        ManifestError: the file is missing, unreadable, over 1 MiB, not UTF-8 or not TOML;
            or a field is unknown, missing, of the wrong type, out of bounds or inconsistent;
            or a payload/EULA path is absolute, escapes the manifest's directory, does not
            exist or is not a regular file. The message is one line:
            ``<file name>: <field path>: <problem>``.
    """
    # The message must stay one line even for a file name with a line break in it.
    source = path.name if path.name.isprintable() else render(path.name, "json")
    base = path.parent.resolve()
    r = open_manifest(
        _parse_toml(path, source), source=source, style="toml", payload_key=PAYLOAD_KEY
    )
    core = read_core(r)
    eula = _read_eula(r.table("eula", fields=EULA_FIELDS), base)
    sources = tuple(
        _read_payload_source(t, base) for t in r.tables(PAYLOAD_KEY, fields=PAYLOAD_SOURCE_FIELDS)
    )
    check_payloads(r, core, PAYLOAD_KEY, [s.name for s in sources])
    return AuthoredManifest(source, replace(core, eula=eula), sources)


def _read_limited(path: Path, limit: int) -> bytes | None:
    """The file's bytes, or None when it is larger than ``limit`` bytes.

    Raises:
        OSError: it cannot be read; ``IsADirectoryError`` for anything not a regular file
            (checked before opening, so a FIFO never blocks the loader).
    """
    if not stat.S_ISREG(path.stat().st_mode):
        raise IsADirectoryError(path)
    with path.open("rb") as f:
        data = f.read(limit + 1)
    return None if len(data) > limit else data


def _parse_toml(path: Path, source: str) -> object:
    try:
        raw = _read_limited(path, MANIFEST_MAX_BYTES)
    except FileNotFoundError:
        raise ManifestError(source, "", "file not found") from None
    except IsADirectoryError:
        raise ManifestError(source, "", "not a regular file") from None
    except OSError as e:
        raise ManifestError(source, "", f"cannot read the file ({e.strerror or e})") from None
    if raw is None:
        raise ManifestError(source, "", f"larger than {MANIFEST_MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")  # a BOM from Windows editors is fine
    except UnicodeDecodeError as e:
        raise ManifestError(source, "", f"not UTF-8 text (bad byte at offset {e.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        match = _TOML_POSITION.fullmatch(str(e))
        where, what = (match.group(2), match.group(1)) if match else ("", str(e))
        raise ManifestError(source, where, f"invalid TOML ({what})") from None
    except RecursionError:
        raise ManifestError(source, "", "invalid TOML (nested too deeply)") from None


def _resolve_inside(t: FieldReader, key: str, base: Path) -> Path:
    """Resolve the relative path in ``key`` and require a regular file inside ``base``.

    Raises:
        ManifestError: absolute, escaping ``base`` (also through symlinks), missing, or not
            a regular file.
    """
    relative = Path(t.text(key, max_len=1000))
    if relative.is_absolute():
        t.fail(key, "must be relative to the manifest's directory")
    try:
        target = (base / relative).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        t.fail(key, "cannot be resolved (a symbolic link loop?)")
    # Checked before looking at the file, so nothing outside the directory is even probed.
    if not target.is_relative_to(base):
        t.fail(key, "escapes the manifest's directory")
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        t.fail(key, "file not found")
    except OSError as e:
        t.fail(key, f"cannot be read ({e.strerror or e})")
    if not stat.S_ISREG(mode):
        t.fail(key, "not a regular file")
    return target


def _read_payload_source(t: FieldReader, base: Path) -> PayloadSource:
    path = _resolve_inside(t, "path", base)
    name = t.maybe_text("name", max_len=PAYLOAD_NAME_MAX, check=check_payload_name)
    if name is None:
        name = Path(t.text("path", max_len=1000)).name
        problem = check_payload_name(name)
        if problem is not None:
            t.fail("path", f'{problem}; give the payload a "name"')
    return PayloadSource(
        name=name,
        path=path,
        sha256=t.maybe_text("sha256", check=check_sha256),
        size=t.maybe_integer("size", low=0, high=SIZE_MAX),
        piece_size=read_piece_size(t, default=DEFAULT_PIECE_SIZE),
    )


def _read_eula(t: FieldReader | None, base: Path) -> Eula | None:
    if t is None:
        return None
    if t.has("text") and t.has("file"):
        t.fail("file", 'give either "text" or "file", not both')
    if not t.has("file"):
        if not t.has("text"):
            t.fail_at(t.path, 'needs "text" or "file"')
        return Eula(read_eula_text(t))
    path = _resolve_inside(t, "file", base)
    try:
        raw = _read_limited(path, EULA_FILE_MAX_BYTES)
    except OSError as e:
        t.fail("file", f"cannot be read ({e.strerror or e})")
    if raw is None:
        t.fail("file", f"larger than {EULA_FILE_MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        t.fail("file", f"not UTF-8 text (bad byte at offset {e.start})")
    problem = check_text(text, max_len=EULA_MAX, multiline=True)
    if problem is not None:
        t.fail("file", problem)
    return Eula(text)
