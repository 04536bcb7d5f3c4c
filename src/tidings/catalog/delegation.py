"""Building and re-keying delegations in targets metadata (pure, on python-tuf objects)."""

from __future__ import annotations

from collections.abc import Sequence

from securesystemslib.signer import Key
from tuf.api.metadata import DelegatedRole, Delegations, Targets

from tidings.catalog.layout import VENDOR_PREFIX, bin_family


def delegate(parent: Targets, name: str, keys: Sequence[Key], paths: list[str]) -> None:
    """Add a terminating delegation from ``parent`` to ``name`` with ``keys``, threshold 1."""
    if parent.delegations is None:
        parent.delegations = Delegations(keys={}, roles={})
    roles = parent.delegations.roles
    assert roles is not None  # we never use succinct roles
    roles[name] = DelegatedRole(name, [], 1, True, paths)
    for key in keys:
        parent.add_key(key, name)


def rekey(parent: Targets, name: str, new_keys: Sequence[Key]) -> None:
    """Replace every key of the delegation ``name`` in ``parent`` with ``new_keys``."""
    role = parent.get_delegated_role(name)
    for keyid in list(role.keyids):
        parent.revoke_key(keyid, name)
    for key in new_keys:
        parent.add_key(key, name)


def delegated_names(parent: Targets) -> list[str]:
    """Names of the roles ``parent`` delegates to, in order."""
    if parent.delegations is None or parent.delegations.roles is None:
        return []
    return list(parent.delegations.roles)


def delegator_of(role: str) -> str:
    """The role that delegates to ``role`` (``root`` for the top-level roles)."""
    if role in ("root", "timestamp", "snapshot", "targets"):
        return "root"
    if bin_family(role) is not None:
        raise ValueError(f"{role!r} is a bin: it is signed with its family's key")
    if role.startswith(VENDOR_PREFIX):
        return "drivers"
    return "targets"
