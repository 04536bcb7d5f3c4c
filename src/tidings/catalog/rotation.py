"""Key rotation for any role (``tidings keys rotate DATA_DIR ROLE``).

* A top-level role (root, timestamp, snapshot, targets): a new root version lists the new keys.
  For root it is signed by the old keys *and* the new ones, so a device trusting the old root
  accepts it (TUF client workflow 5.3) and the new root verifies itself.
* A delegated role (a kind role or a driver vendor role): its delegator lists the new key, and
  the role and all its bins are re-signed with it.

Old keys are moved to ``keys/retired/`` only after the commit, so a crash in the middle leaves
the old, still-trusted keys in place.
"""

from __future__ import annotations

from dataclasses import dataclass

from securesystemslib.signer import SSlibKey

from tidings.catalog.delegation import delegated_names, delegator_of, rekey
from tidings.catalog.keys import signing_role
from tidings.catalog.layout import KIND_ROLES, KIND_TO_ROLE
from tidings.catalog.publisher import Publisher
from tidings.catalog.repository import Session
from tidings.errors import CatalogError

TOP_LEVEL_ROLES = ("root", "timestamp", "snapshot", "targets")


@dataclass(frozen=True)
class Rotation:
    """What a rotation did."""

    role: str
    retired: tuple[str, ...]  # key ids
    added: tuple[str, ...]  # key ids


def rotate_keys(publisher: Publisher, role: str) -> Rotation:
    """Replace every key of ``role`` with fresh ones.

    A top-level role's rotation writes a new root version, so it is refused before anything is
    written unless a threshold of the trusted root's keys is present (``require_root_quorum``).

    Raises:
        CatalogError: ``role`` is not a role of this catalog, or is a bin.
        KeyStoreError: too few root keys are present to sign the new root version.
    """
    keys = publisher.keys
    try:
        delegator = delegator_of(role)
    except ValueError as e:
        raise CatalogError(str(e)) from e
    with publisher.repo.lock():
        session = publisher.repo.open()
        if delegator != "root" and not session.has_role(role):
            raise CatalogError(_no_such_role(session, role))
        if delegator == "root":
            # Checked again at the commit; here, before any key is generated or retired.
            trusted = session.root.signed.roles["root"]
            publisher.repo.require_root_quorum(trusted, trusted, doing=f"rotating {role}")
        old = [k.keyid for k in keys.public_keys(role)]
        new = [keys.generate(role).public_key for _ in old]
        if role != "root":  # root is signed by old and new keys; others by the new only
            for keyid in old:
                keys.retire(role, keyid)
        try:
            if delegator == "root":
                _rotate_in_root(session, role, old, new)
            else:
                rekey(session.edit(delegator), role, new)
                _resign_family(session, role)
            publisher.repo.commit(session)
        except BaseException:
            _undo(publisher, role, old, [k.keyid for k in new])
            raise
        if role == "root":
            for keyid in old:
                keys.retire(role, keyid)
    return Rotation(role, tuple(old), tuple(k.keyid for k in new))


def _no_such_role(session: Session, role: str) -> str:
    """Name the roles there are (and the role of a manifest kind given instead)."""
    vendors = [n for n in delegated_names(session.role("drivers").signed) if n != role]
    roles = ", ".join([*TOP_LEVEL_ROLES, *KIND_ROLES, *vendors])
    message = f"no role {role!r} in this catalog; its roles are {roles}"
    if KIND_TO_ROLE.get(role, role) != role:
        message += f" (updates of kind {role!r} are signed by the role {KIND_TO_ROLE[role]!r})"
    return message


def _rotate_in_root(session: Session, role: str, old: list[str], new: list[SSlibKey]) -> None:
    root = session.edit_root()
    for keyid in old:
        root.revoke_key(keyid, role)
    for key in new:
        root.add_key(key, role)
    if role == "targets":
        session.edit("targets")  # re-signed with the new key


def _resign_family(session: Session, role: str) -> None:
    """Re-sign ``role`` and its bins; bins are signed with the family key, so list it."""
    delegator = session.role(delegator_of(role)).signed
    new_keys = [delegator.get_key(k) for k in delegator.get_delegated_role(role).keyids]
    family = session.edit(role)
    # Only bins share the family's key; vendor roles under ``drivers`` keep their own.
    for bin_role in [n for n in delegated_names(family) if signing_role(n) == role]:
        rekey(family, bin_role, new_keys)
        session.edit(bin_role)


def _undo(publisher: Publisher, role: str, old: list[str], new: list[str]) -> None:
    for keyid in new:
        publisher.keys.retire(role, keyid)
    for keyid in old:
        publisher.keys.restore(role, keyid)
