"""``server init``: a new data directory with keys and an empty, signed catalog.

The directory is built under a temporary name beside the target and renamed into place, so an
interrupted init leaves nothing that looks like a data directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp

from tidings.catalog.config import CatalogConfig
from tidings.catalog.delegation import delegate
from tidings.catalog.keys import KeyStore
from tidings.catalog.layout import BINS_FIELD, KIND_ROLES, CatalogLayout
from tidings.catalog.repository import Repository, Session
from tidings.clock import Clock
from tidings.errors import ConfigError


@dataclass(frozen=True)
class InitOptions:
    """Choices made once, at ``server init``."""

    root_threshold: int = 1  # signatures a new root needs; see docs/operations.md for 2-of-3
    root_keys: int = 1  # root keys to create (>= root_threshold)
    config: CatalogConfig = field(default_factory=CatalogConfig)


def create_data_dir(
    data_dir: Path,
    *,
    clock: Clock,
    options: InitOptions | None = None,
    extra: Callable[[Path], None] | None = None,
) -> None:
    """Create ``data_dir`` with keys, ``catalog.json`` and a signed empty catalog.

    ``extra`` is called with the temporary directory before it is renamed into place (the CLI
    uses it to add the TLS material), so the whole data directory appears at once.

    Raises:
        ConfigError: ``data_dir`` exists and is not empty, or the options make no sense.
    """
    options = options or InitOptions()
    if not 1 <= options.root_threshold <= options.root_keys <= 16:
        raise ConfigError("need 1 <= root threshold <= root keys <= 16")
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise ConfigError(f"{data_dir} already exists and is not empty")
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.init-", dir=data_dir.parent))
    try:
        os.chmod(tmp, 0o700)
        options.config.save(tmp)
        keys = KeyStore(tmp / "keys")
        _generate_keys(keys, options)
        repo = Repository(tmp, keys=keys, clock=clock, expiry=options.config.expiry)
        session = _initial_session(repo, keys, options)
        repo.commit(session)
        if extra is not None:
            extra(tmp)
        if data_dir.exists():
            data_dir.rmdir()
        os.rename(tmp, data_dir)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise


def _generate_keys(keys: KeyStore, options: InitOptions) -> None:
    for _ in range(options.root_keys):
        keys.generate("root")
    for role in ("timestamp", "snapshot", "targets", *KIND_ROLES):
        keys.generate(role)


def _initial_session(repo: Repository, keys: KeyStore, options: InitOptions) -> Session:
    now = repo.clock.now()
    root = Root(version=1, expires=now, consistent_snapshot=True)
    for role in ("root", "timestamp", "snapshot", "targets"):
        for key in keys.public_keys(role):
            root.add_key(key, role)
    root.roles["root"].threshold = options.root_threshold
    session = Session(
        repo,
        Metadata(root),
        Metadata(Snapshot(version=1, expires=now, meta={})),
        Metadata(Timestamp(version=1, expires=now)),
        initial=True,
    )
    session.edit_root()
    layout = options.config.layout
    targets = session.add_role("targets")
    for kind in KIND_ROLES:
        delegate(targets, kind, keys.public_keys(kind), layout.kind_paths(kind))
        kind_md = session.add_role(kind)
        if kind != "drivers":  # vendor roles and their bins appear with their first driver
            add_bins(session, kind_md, kind, keys, layout)
    return session


def add_bins(
    session: Session, family_md: Targets, family: str, keys: KeyStore, layout: CatalogLayout
) -> None:
    """Delegate every bin of ``family`` and add each as an empty role."""
    fam = layout.family(family)
    family_md.unrecognized_fields[BINS_FIELD] = fam.bin_count
    for bin_ in fam.bins():
        delegate(family_md, bin_.role, keys.public_keys(family), [fam.delegated_path(bin_)])
        session.add_role(bin_.role)
