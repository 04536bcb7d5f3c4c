"""OLPC canonical JSON, the bytes TUF signatures cover, computed fast (shared by both sides).

securesystemslib's ``encode_canonical`` is pure Python: on the publisher it was a large cost of
signing big roles, and on a device it is most of a scan's metadata verification (python-tuf
canonicalizes every role it verifies, the stale local snapshot included). ``json.dumps`` with
sorted keys, no spaces and no ASCII escaping gives the same bytes, except that it escapes
control characters, which canonical JSON keeps raw: those escapes are undone. Floats, which
canonical JSON forbids, and anything unexpected go to the reference encoder, so the result is
always the reference's bytes or the reference's error; a property test checks byte identity.
"""

from __future__ import annotations

import json
import re
from typing import Any

from securesystemslib.formats import encode_canonical
from tuf.api.metadata import Signed
from tuf.api.serialization import SerializationError
from tuf.api.serialization.json import CanonicalJSONSerializer

_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
"""One escape sequence of json.dumps output: every backslash there starts one."""
_RAW = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "\\": "\\\\", '"': '\\"'}


class _NotCanonical(Exception):
    """Something canonical JSON would not produce the same way."""


def canonical_bytes(signed: dict[str, Any]) -> bytes:
    """``encode_canonical(signed)`` as UTF-8, fast; raises as the reference does.

    Raises:
        securesystemslib.exceptions.FormatError: ``signed`` holds a float or a non-JSON value.
    """
    try:
        fast = json.dumps(
            signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        json.loads(fast, parse_float=_no_float)  # C speed; canonical JSON has no floats
        if "\\" in fast:
            fast = _ESCAPE.sub(_canonical_escape, fast)
        return fast.encode("utf-8")
    except (_NotCanonical, TypeError, ValueError):
        return encode_canonical(signed).encode("utf-8")  # type: ignore[union-attr]


def _no_float(text: str) -> float:
    raise _NotCanonical(text)


def _canonical_escape(match: re.Match[str]) -> str:
    code = match.group(1)
    if code in _RAW:
        return _RAW[code]
    if code[0] == "u" and int(code[1:], 16) < 0x20:
        return chr(int(code[1:], 16))
    raise _NotCanonical(code)


def _serialize(_self: CanonicalJSONSerializer, signed_obj: Signed) -> bytes:
    """The canonical bytes python-tuf verifies signatures over, as ``canonical_bytes``."""
    try:
        return canonical_bytes(signed_obj.to_dict())
    except Exception as e:
        raise SerializationError from e


def use_fast_canonical_json() -> None:
    """Make python-tuf verify signatures over ``canonical_bytes`` (same bytes, ~20x faster).

    python-tuf offers no way to give the Updater a serializer: ``Metadata.signed_bytes``
    builds a ``CanonicalJSONSerializer()`` itself. This installs our byte-identical
    ``serialize`` on that class, for the whole process. Idempotent.
    """
    CanonicalJSONSerializer.serialize = _serialize  # type: ignore[method-assign,assignment]
