"""Piece maps: the SHA-256 of every fixed-size piece of a payload (pure).

A piece map is signed content: the manifest pins its length and SHA-256, so the delivery engine
can check each piece from each source (HTTP or peer) on receipt (docs/architecture.md, "The flow").
The format is documented in docs/catalog.md; parsing is bounded because a piece map arrives from the
network.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from tidings.errors import HashMismatchError, IntegrityError

DEFAULT_PIECE_SIZE = 1_048_576  # bytes
MIN_PIECE_SIZE = 16_384  # bytes
MAX_PIECE_SIZE = 16_777_216  # bytes
MAX_PIECES = 1_048_576  # 1 TiB at 1 MiB pieces
MAX_PIECE_MAP_BYTES = 80 * MAX_PIECES  # bytes; 64 hex + JSON punctuation per piece
FORMAT = "tidings-piece-map/1"


@dataclass(frozen=True)
class PieceMap:
    """The per-piece hashes of one payload of ``length`` bytes."""

    piece_size: int  # bytes
    length: int  # bytes
    digests: tuple[bytes, ...]  # SHA-256 of each piece, in order

    @property
    def count(self) -> int:
        """How many pieces the payload has (the last may be short)."""
        return len(self.digests)

    def piece_range(self, index: int) -> tuple[int, int]:
        """The byte range ``[start, end)`` of piece ``index``."""
        if not 0 <= index < self.count:
            raise IndexError(f"piece {index} out of range 0..{self.count - 1}")
        start = index * self.piece_size
        return start, min(start + self.piece_size, self.length)

    def verify_piece(self, index: int, data: bytes) -> None:
        """Check one piece as received from any source.

        Raises:
            HashMismatchError: ``data`` is not piece ``index`` (wrong length or hash).
        """
        start, end = self.piece_range(index)
        if len(data) != end - start:
            raise HashMismatchError(f"piece {index}: {len(data)} bytes, expected {end - start}")
        if hashlib.sha256(data).digest() != self.digests[index]:
            raise HashMismatchError(f"piece {index}: SHA-256 mismatch")

    def to_bytes(self) -> bytes:
        """The canonical serialized form (what the manifest's hash pins)."""
        doc = {
            "format": FORMAT,
            "piece_size": self.piece_size,
            "length": self.length,
            "sha256": [d.hex() for d in self.digests],
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> PieceMap:
        """Parse an untrusted piece map (callers check its pinned hash first).

        Raises:
            IntegrityError: the bytes are not a well-formed, self-consistent piece map.
        """
        if len(data) > MAX_PIECE_MAP_BYTES:
            raise IntegrityError("piece map too large")
        try:
            doc = json.loads(data)
            piece_size, length, hexes = doc["piece_size"], doc["length"], doc["sha256"]
            valid = (
                doc["format"] == FORMAT
                and type(piece_size) is int
                and type(length) is int
                and isinstance(hexes, list)
            )
            digests = tuple(bytes.fromhex(h) for h in hexes) if valid else ()
        except (ValueError, KeyError, TypeError) as e:
            raise IntegrityError(f"malformed piece map: {e}") from e
        if not valid or not all(len(d) == 32 for d in digests):
            raise IntegrityError("malformed piece map")
        check_piece_size(piece_size)
        if length < 0 or len(digests) != piece_count(length, piece_size):
            raise IntegrityError("piece map length and piece count disagree")
        return cls(piece_size, length, digests)


def piece_count(length: int, piece_size: int) -> int:
    """How many pieces ``length`` bytes make (an empty payload has none)."""
    return -(-length // piece_size)


def check_piece_size(piece_size: int) -> None:
    """Raises IntegrityError unless ``piece_size`` is a power of two in the allowed range."""
    if not (MIN_PIECE_SIZE <= piece_size <= MAX_PIECE_SIZE) or piece_size & (piece_size - 1):
        raise IntegrityError(f"piece size {piece_size} is not a power of two in range")


class PieceHasher:
    """Builds a piece map and the whole-file SHA-256 in one streaming pass."""

    def __init__(self, piece_size: int = DEFAULT_PIECE_SIZE) -> None:
        check_piece_size(piece_size)
        self.piece_size = piece_size
        self._file = hashlib.sha256()
        self._piece = hashlib.sha256()
        self._in_piece = 0
        self._length = 0
        self._digests: list[bytes] = []

    def update(self, data: bytes) -> None:
        """Feed the next bytes of the file."""
        self._file.update(data)
        self._length += len(data)
        view = memoryview(data)
        while view:
            take = min(len(view), self.piece_size - self._in_piece)
            self._piece.update(view[:take])
            self._in_piece += take
            view = view[take:]
            if self._in_piece == self.piece_size:
                self._digests.append(self._piece.digest())
                self._piece, self._in_piece = hashlib.sha256(), 0

    def finish(self) -> tuple[str, PieceMap]:
        """The file's SHA-256 (hex) and its piece map."""
        digests = list(self._digests)
        if self._in_piece:
            digests.append(self._piece.digest())
        return self._file.hexdigest(), PieceMap(self.piece_size, self._length, tuple(digests))


def piece_map_of(chunks: Iterable[bytes], piece_size: int = DEFAULT_PIECE_SIZE) -> PieceMap:
    """The piece map of the bytes in ``chunks``."""
    hasher = PieceHasher(piece_size)
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.finish()[1]
