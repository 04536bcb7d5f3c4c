"""Signing keys of the catalog, one folder per role: ``keys/<role>/<keyid>.pem``.

In the embedded setup every key lives in the data directory (mode 0600). docs/operations.md
explains how to keep root (2-of-3) and the kind keys offline instead: the service itself only
ever needs the timestamp and snapshot keys. Retired keys are moved to ``keys/retired/``, never
deleted, so an audit can tell which key signed an old version.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner, SSlibKey

from tidings.catalog.layout import bin_family
from tidings.errors import KeyStoreError
from tidings.fsutil import atomic_write

_ROLE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,80}$")
MAX_KEY_FILE_BYTES = 16_384  # bytes


def signing_role(role: str) -> str:
    """Whose key signs ``role``: a bin is signed by the key of the role delegating it."""
    return bin_family(role) or role


class KeyStore:
    """Private keys of the catalog's roles under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, list[CryptoSigner]] = {}

    def generate(self, role: str) -> CryptoSigner:
        """Create and store a new Ed25519 key for ``role``."""
        _check_role(role)
        signer = CryptoSigner.generate_ed25519()
        path = self.root / role / f"{signer.public_key.keyid}.pem"
        atomic_write(path, signer.private_bytes, mode=0o600)
        self._cache.pop(role, None)
        return signer

    def signers(self, role: str) -> list[CryptoSigner]:
        """Every current key of ``role`` (the key of its delegator for bins).

        Raises:
            KeyStoreError: the role has no key here or a key file is unreadable.
        """
        owner = signing_role(role)
        _check_role(owner)
        if owner not in self._cache:
            folder = self.root / owner
            files = sorted(folder.glob("*.pem")) if folder.is_dir() else []
            if not files:
                raise KeyStoreError(f"no signing key for role {owner!r} in {folder}")
            self._cache[owner] = [_load(p) for p in files]
        return self._cache[owner]

    def public_keys(self, role: str) -> list[SSlibKey]:
        """The public halves of ``role``'s keys."""
        return [s.public_key for s in self.signers(role)]

    def has(self, role: str) -> bool:
        """Whether ``role`` has at least one key here."""
        folder = self.root / signing_role(role)
        return folder.is_dir() and any(folder.glob("*.pem"))

    def retire(self, role: str, keyid: str) -> None:
        """Move one key of ``role`` out of use (kept under ``retired/`` for audit)."""
        src = self.root / role / f"{keyid}.pem"
        dest = self.root / "retired" / role / f"{keyid}.pem"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        self._cache.pop(role, None)

    def restore(self, role: str, keyid: str) -> None:
        """Bring a retired key of ``role`` back into use (undo of an interrupted rotation)."""
        src = self.root / "retired" / role / f"{keyid}.pem"
        if src.exists():
            os.replace(src, self.root / role / f"{keyid}.pem")
        self._cache.pop(role, None)


def _check_role(role: str) -> None:
    if not _ROLE_RE.match(role) or role == "retired":
        raise KeyStoreError(f"bad role name {role!r}")


def _load(path: Path) -> CryptoSigner:
    try:
        data = path.read_bytes()
        if len(data) > MAX_KEY_FILE_BYTES:
            raise KeyStoreError(f"{path}: not a key file (too large)")
        private_key = load_pem_private_key(data, password=None)
        signer = CryptoSigner(private_key)
    except (OSError, ValueError, TypeError) as e:
        raise KeyStoreError(f"{path}: cannot load signing key ({e})") from e
    if signer.public_key.keyid != path.stem:
        raise KeyStoreError(f"{path}: key id does not match the file name")
    return signer
