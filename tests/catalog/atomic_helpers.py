"""Support for the atomic-publish tests: a cold python-tuf client that checks a whole catalog,
a manifest factory, and a child-process publisher that can be paused at a chosen point of a
commit so the parent can kill -9 it exactly there.

Run as a script, this module *is* that child: ``python atomic_helpers.py PLAN.json`` (see
``ChildPlan`` and ``main``). It imports only ``tidings``, python-tuf and the standard library,
so the child is a plain process with no pytest in it.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tuf.api.exceptions import DownloadError, DownloadHTTPError, RepositoryError
from tuf.api.metadata import Metadata, Snapshot, Targets, Timestamp
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

from tidings.catalog.config import CatalogConfig
from tidings.catalog.create import InitOptions, create_data_dir
from tidings.catalog.entries import payload_target, piece_map_target
from tidings.catalog.keyindex import SegmentFormatError, parse_segment, parse_segment_path
from tidings.catalog.layout import BinCounts, CatalogLayout
from tidings.catalog.samples import SAMPLES, generated_bytes
from tidings.clock import SystemClock
from tidings.manifest import manifest_from_dict

BASE_URL = "http://catalog.invalid/"  # never resolved: the fetcher maps it onto DATA_DIR/repo
MAX_FETCH_BYTES = 64 * 1024**2  # bytes
PROBE = "~probe"  # a path segment no real target uses: makes the client load a role, finds none


class InconsistentCatalogError(AssertionError):
    """A cold client saw a catalog that no single commit produced (a mix, or dangling entries)."""


# --------------------------------------------------------------------------- the cold client


class RepoFileFetcher(FetcherInterface):
    """python-tuf's fetcher interface over the files of ``DATA_DIR/repo``.

    ``BASE_URL/metadata/x`` is ``repo/metadata/x``; a missing file is an HTTP 404, exactly what
    a static web server in front of the directory would answer.
    """

    def __init__(self, repo_dir: Path) -> None:
        self._repo = repo_dir.resolve()

    def _fetch(self, url: str) -> Iterator[bytes]:
        relative = unquote(urlsplit(url).path).lstrip("/")
        path = (self._repo / relative).resolve()
        if not path.is_relative_to(self._repo):
            raise DownloadHTTPError(f"{url}: outside the repository", 403)
        try:
            with path.open("rb") as f:
                data = f.read(MAX_FETCH_BYTES + 1)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise DownloadHTTPError(f"{relative}: not found", 404) from None
        return iter([data])


@dataclass(frozen=True)
class CatalogView:
    """What one cold client verified: the whole catalog as of one ``timestamp.json``."""

    timestamp_version: int
    snapshot_version: int
    updates: dict[str, int]  # update id -> revision
    bins: dict[str, frozenset[str]]  # update id -> every bin role holding its manifest entry
    homes: dict[str, str]  # update id -> the bin role holding its payloads
    roles: frozenset[str]  # every targets role reached through the delegations
    targets: int  # target files downloaded and length/hash-checked by the client


@dataclass
class _Found:
    # update id -> (bin role, manifest, payload dir) for every index entry found for it
    manifests: dict[str, list[tuple[str, dict[str, Any], str]]] = field(default_factory=dict)
    keys: set[tuple[str, str, str]] = field(default_factory=set)  # (role, key, update id)
    directories: dict[str, str] = field(default_factory=dict)  # bin role -> its documents' dir
    count: int = 0


def verify_catalog(data_dir: Path, scratch: Path) -> CatalogView:
    """Verify the whole catalog in ``data_dir`` with a brand-new python-tuf client.

    The client starts from ``1.root.json`` in an empty directory, refreshes, reaches every role
    the snapshot lists through the real delegation walk, resolves every target of every role
    with ``get_targetinfo`` and downloads it (length and hash checked by python-tuf). Then the
    entries must describe one consistent set of update revisions.

    Raises:
        tuf.api.exceptions.RepositoryError, DownloadError: python-tuf rejected the catalog.
        InconsistentCatalogError: valid signatures, but not a catalog any commit produced.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    client_dir = Path(tempfile.mkdtemp(prefix="cold-client-", dir=scratch))
    try:
        return _verify_cold(data_dir / "repo", client_dir)
    finally:
        shutil.rmtree(client_dir)


def _verify_cold(repo: Path, client_dir: Path) -> CatalogView:
    metadata_dir = client_dir / "metadata"
    metadata_dir.mkdir()
    updater = Updater(
        str(metadata_dir),
        f"{BASE_URL}metadata/",
        str(client_dir / "targets"),
        f"{BASE_URL}targets/",
        fetcher=RepoFileFetcher(repo),
        bootstrap=(repo / "metadata" / "1.root.json").read_bytes(),
    )
    updater.refresh()
    timestamp = _trusted(metadata_dir, "timestamp", Timestamp)
    snapshot = _trusted(metadata_dir, "snapshot", Snapshot)
    roles = _walk_delegations(updater, metadata_dir)
    listed = {name.removesuffix(".json") for name in snapshot.meta}
    if set(roles) != listed:
        raise InconsistentCatalogError(
            f"snapshot {snapshot.version} lists {sorted(listed - set(roles))} that no role "
            f"delegates, and the delegations reach {sorted(set(roles) - listed)} it omits"
        )
    found = _Found()
    download = client_dir / "download"
    for role, targets in roles.items():
        for path, entry in targets.targets.items():
            info = updater.get_targetinfo(path)
            if info != entry:
                raise InconsistentCatalogError(f"{path} resolves to {info}, {role} says {entry}")
            updater.download_target(info, filepath=str(download))
            _classify(found, role, path, download.read_bytes())
            found.count += 1
    view = _view(timestamp, snapshot, roles, found)
    _check_payloads(updater, found, download)
    return view


def _trusted(metadata_dir: Path, role: str, kind: type[Any]) -> Any:
    """A role as the client stored it after verifying it (a cold client holds nothing else)."""
    data = (metadata_dir / f"{role}.json").read_bytes()
    signed = Metadata.from_bytes(data).signed
    assert isinstance(signed, kind)
    return signed


def _walk_delegations(updater: Updater, metadata_dir: Path) -> dict[str, Targets]:
    """Make the client load every delegated role, top down, through its own delegation walk."""
    roles: dict[str, Targets] = {}
    pending = ["targets"]
    while pending:
        name = pending.pop()
        if name in roles:
            raise InconsistentCatalogError(f"role {name} is delegated twice")
        roles[name] = targets = _trusted(metadata_dir, name, Targets)
        if targets.delegations is None or targets.delegations.roles is None:
            continue
        for child in targets.delegations.roles.values():
            # A path the child's pattern matches but no real target uses: the walk must load
            # (and verify) the child to answer, and persists it for us to read back.
            probe = "/".join(PROBE if part == "*" else part for part in child.paths[0].split("/"))
            if updater.get_targetinfo(probe) is not None:
                raise InconsistentCatalogError(f"probe {probe} unexpectedly exists")
            pending.append(child.name)
    return roles


def _classify(found: _Found, role: str, path: str, data: bytes) -> None:
    """One target of a bin: it must be an index document of that bin, listing whole manifests."""
    directory = path.rpartition("/")[0]
    name = parse_segment_path(path, directory)
    if name is None or directory.rpartition("/")[2] != role.rpartition(".")[2]:
        raise InconsistentCatalogError(f"{path}: not an index document of {role}")
    found.directories[role] = directory
    try:
        key, entries = parse_segment(data, name)
    except SegmentFormatError as e:
        raise InconsistentCatalogError(f"{path}: {e}") from e
    for entry in entries:
        if (role, key, entry.update_id) in found.keys:
            raise InconsistentCatalogError(f"{entry.update_id} is listed twice under {key}")
        found.keys.add((role, key, entry.update_id))
        placed = (role, entry.manifest, entry.payload_dir)
        found.manifests.setdefault(entry.update_id, []).append(placed)


def _view(
    timestamp: Timestamp, snapshot: Snapshot, roles: dict[str, Targets], found: _Found
) -> CatalogView:
    updates, bins, homes = {}, {}, {}
    for update_id, entries in found.manifests.items():
        documents = {json.dumps([doc, home], sort_keys=True) for _, doc, home in entries}
        if len(documents) != 1:
            revisions = sorted({doc["revision"] for _, doc, _ in entries})
            raise InconsistentCatalogError(f"update {update_id}: several revisions {revisions}")
        payload_dir = entries[0][2]
        home_roles = {role for role, _, _ in entries if found.directories[role] == payload_dir}
        if len(home_roles) != 1:
            raise InconsistentCatalogError(f"update {update_id}: home bins {home_roles}")
        updates[update_id] = int(entries[0][1]["revision"])
        bins[update_id] = frozenset(role for role, _, _ in entries)
        homes[update_id] = home_roles.pop()
    return CatalogView(
        timestamp.version,
        snapshot.version,
        updates,
        bins,
        homes,
        frozenset(roles),
        found.count,
    )


def _check_payloads(updater: Updater, found: _Found, scratch: Path) -> None:
    """Every payload and piece map each listed revision names is served, as its manifest pins."""
    for update_id, entries in found.manifests.items():
        _, document, payload_dir = entries[0]
        for payload in manifest_from_dict(document, source=update_id).payloads:
            for target in (
                payload_target(payload_dir, update_id, payload),
                piece_map_target(payload_dir, update_id, payload),
            ):
                try:
                    updater.download_target(target, filepath=str(scratch))
                except (DownloadError, RepositoryError) as e:
                    raise InconsistentCatalogError(f"{target.path} is not served: {e}") from e


# --------------------------------------------------------------------------- catalogs

SMALL_LAYOUT = CatalogLayout(BinCounts(os=8, apps=4, definitions=2, store=4, vendor=2))
"""20-odd bin roles instead of ~200: every commit still spans several versioned files, and a cold
client verifies the whole catalog in a fraction of a second, so a reader loop sees many states.
With it, ``x64``, ``arm64`` and ``x86`` of one OS product fall in three different key bins."""


def create_catalog(data_dir: Path) -> Path:
    """A fresh data directory (real clock, ``SMALL_LAYOUT``); return ``data_dir``."""
    options = InitOptions(config=CatalogConfig(layout=SMALL_LAYOUT))
    create_data_dir(data_dir, clock=SystemClock(), options=options)
    return data_dir


def assert_lock_free(data_dir: Path) -> None:
    """``publish.lock`` can be taken at once (no dead writer left it held)."""
    import fcntl

    fd = os.open(data_dir / "publish.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises BlockingIOError if held
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- manifests

SAMPLE_OF_KIND = {
    "os": "os-cumulative.toml",
    "app": "app-editor.toml",
    "driver": "driver-display.toml",
    "definitions": "definitions.toml",
    "store": "store-notes.toml",
}
KINDS = tuple(SAMPLE_OF_KIND)
SPREAD_KEYS = {  # the sample's index key text -> a per-update one (decides the key bin)
    "os": ("tidings-os-11", "tidings-os-11-{}"),
    "app": ("contoso-editor", "contoso-editor-{}"),
    "driver": ("DEV_46A6", "DEV_{}"),
    "definitions": ("tidings-defender", "tidings-defender-{}"),
    "store": ("Contoso.Notes", "Contoso.Notes{}"),
}


@dataclass(frozen=True)
class UpdateSpec:
    """One update revision to author, derived from the sample manifest of its kind."""

    kind: str
    update_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    revision: int = 1
    payload_name: str = "payload.bin"
    payload_bytes: int = 3000
    architectures: tuple[str, ...] | None = None  # os only: changes the bins it is filed in
    pci_vendor: str | None = None  # driver only: e.g. "10DE" files it under vendor pci-10de
    spread: bool = False  # its own product/package/device instead of the sample's: other bins

    def next_revision(self, **changes: Any) -> UpdateSpec:
        """The next revision of the same update, with ``changes``."""
        return replace(self, revision=self.revision + 1, **changes)


def write_manifest(dest: Path, spec: UpdateSpec) -> Path:
    """Write ``spec`` as a TOML manifest (and its payload) under ``dest``; return its path."""
    text = SAMPLES[SAMPLE_OF_KIND[spec.kind]].lstrip()
    payload_rel = f"payloads/{spec.update_id}-r{spec.revision}/{spec.payload_name}"
    title = f"{spec.kind} update {spec.update_id[:8]} revision {spec.revision}"
    text = _sub(r'(?m)^id = ".*"$', f'id = "{spec.update_id}"', text)
    text = _sub(r"(?m)^revision = 1$", f"revision = {spec.revision}", text)
    text = _sub(r'(?m)^title = ".*"$', f'title = "{title}"', text)
    text = _sub(r'(?m)^path = "payloads/.*"$', f'path = "{payload_rel}"', text)
    if spec.architectures is not None:
        archs = ", ".join(f'"{a}"' for a in spec.architectures)
        text = _sub(r"(?m)^architectures = \[.*\]$", f"architectures = [{archs}]", text)
    if spec.spread:
        old, new = SPREAD_KEYS[spec.kind]
        text = _sub(re.escape(old), new.format(spec.update_id[:4].upper()), text, count=0)
    if spec.pci_vendor is not None:
        text = _sub(r"VEN_8086", f"VEN_{spec.pci_vendor}", text, count=0)
    payload = dest / payload_rel
    payload.parent.mkdir(parents=True, exist_ok=True)
    seed = f"{spec.update_id}/{spec.revision}/{spec.payload_name}"
    payload.write_bytes(generated_bytes(seed, spec.payload_bytes))
    path = dest / f"{spec.update_id}-r{spec.revision}.toml"
    path.write_text(text)
    return path


def _sub(pattern: str, new: str, text: str, *, count: int = 1) -> str:
    changed, n = re.subn(pattern, new.replace("\\", "\\\\"), text, count=count)
    assert n >= 1, f"sample manifest has no {pattern!r}"
    return changed


def mixed_specs(count: int, *, first_kind: int = 0) -> list[UpdateSpec]:
    """``count`` new updates cycling through every kind, each under its own index key, so
    together they land in most bins."""
    return [UpdateSpec(KINDS[(first_kind + i) % len(KINDS)], spread=True) for i in range(count)]


# --------------------------------------------------------------------------- the child publisher

SIGKILLED = -9  # Popen.returncode of a child ended by SIGKILL
CHILD_TIMEOUT_S = 60.0  # seconds a child publisher gets to reach a pause point or finish

PAUSE_POINTS = (
    "versioned:1",
    "versioned:10",
    "snapshot",
    "renamed:1",
    "renamed:metadata",
    "timestamp-rename",
    "lookup",
)
"""Where a child can stop, mid-publish, for the parent to kill it:

* ``versioned:1``, ``versioned:10``: right after the first (tenth) new versioned targets file
  (``<version>.<role>.json``) is durable under its staged name;
* ``snapshot``: right after the new ``N.snapshot.json`` is durable under its staged name;
* ``renamed:1``: the commit renamed its first staged file into place (an index document or a
  payload link), the rest are still staged;
* ``renamed:metadata``: the commit renamed its first versioned metadata file into place;
* ``timestamp-rename``: the new timestamp is written and fsynced to its temporary name, not yet
  renamed over ``timestamp.json``;
* ``lookup``: ``timestamp.json`` is replaced (committed), ``catalog.db`` not yet updated.
"""
PAUSED_FILE = "paused"
PAUSE_LIMIT_S = 60.0  # a paused child nobody kills exits on its own


@dataclass(frozen=True)
class ChildPlan:
    """What a child publisher does: ``ops`` one commit each, or all ``ops`` in one batch.

    An op is ``{"publish": "<manifest path>"}`` or, one commit each only,
    ``{"revoke": "<update id>"}``.
    """

    data_dir: str
    ops: list[dict[str, str]]
    batch: bool = False
    pause_at: str | None = None  # one of PAUSE_POINTS
    signal_dir: str | None = None  # where the child announces it paused
    start_file: str | None = None  # wait for this file before publishing (a start barrier)
    pace_s: float = 0.0  # sleep up to this long between ops, so a reader sees more moments

    def save(self, path: Path) -> Path:
        """Write the plan as JSON; return ``path``."""
        path.write_text(json.dumps(asdict(self)))
        return path


@dataclass
class Child:
    """A running child publisher."""

    process: subprocess.Popen[bytes]
    signal_dir: Path
    log: Path

    def output(self) -> str:
        """What the child printed, for assertion messages."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_child(plan: ChildPlan, workdir: Path) -> Child:
    """Start ``python atomic_helpers.py plan.json`` in ``workdir`` (created)."""
    workdir.mkdir(parents=True, exist_ok=True)
    signal_dir = Path(plan.signal_dir) if plan.signal_dir else workdir
    plan = replace(plan, signal_dir=str(signal_dir))
    plan_path = plan.save(workdir / "plan.json")
    log = workdir / "child.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, __file__, str(plan_path)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Child(process, signal_dir, log)


def wait_until(condition: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    """Poll ``condition`` (every 1 ms) until true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.001)


def kill_9(child: Child, *, timeout_s: float = 10.0) -> int:
    """SIGKILL the child (by its own PID) and reap it; return its exit status."""
    if child.process.poll() is None:
        os.kill(child.process.pid, signal.SIGKILL)
    return child.process.wait(timeout=timeout_s)


def finish(child: Child, *, timeout_s: float) -> int:
    """Wait for the child to exit by itself (killing it if it overruns); return its status."""
    try:
        return child.process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_9(child)
        raise AssertionError(f"child overran {timeout_s} s:\n{child.output()}") from None


def main(argv: list[str]) -> int:
    """The child: run the plan in ``argv[1]``."""
    from tidings.catalog.publisher import Publisher
    from tidings.manifest import load_manifest

    plan = ChildPlan(**json.loads(Path(argv[1]).read_text()))
    if plan.pause_at is not None:
        _install_pause(plan.pause_at, Path(plan.signal_dir or "."))
    if plan.start_file is not None:
        start = Path(plan.start_file)
        wait_until(start.exists, timeout_s=30.0, what=str(start))
    publisher = Publisher(Path(plan.data_dir))
    if plan.batch:
        publisher.publish_many([load_manifest(Path(op["publish"])) for op in plan.ops])
    else:
        for op in plan.ops:
            time.sleep(random.uniform(0, plan.pace_s))
            if "publish" in op:
                publisher.publish(load_manifest(Path(op["publish"])))
            else:
                publisher.revoke(op["revoke"])
    print("done", flush=True)
    return 0


def _install_pause(point: str, signal_dir: Path) -> None:
    """Wrap the commit's I/O in this process so it stops at ``point`` (fault injection)."""
    from tidings.catalog import publisher, repository

    assert point in PAUSE_POINTS, point

    def pause() -> None:
        flag = signal_dir / f".{PAUSED_FILE}.tmp"
        flag.write_text(point)
        flag.replace(signal_dir / PAUSED_FILE)
        time.sleep(PAUSE_LIMIT_S)
        os._exit(4)

    real_write = repository.write_staged
    versioned = 0

    def write_staged(path: Path, data: bytes, **kwargs: Any) -> Path:
        nonlocal versioned
        staged = real_write(path, data, **kwargs)
        if re.fullmatch(r"\d+\.(?!root\.|snapshot\.).+\.json", path.name):
            versioned += 1
            if point == f"versioned:{versioned}":
                pause()
        if point == "snapshot" and path.name.endswith(".snapshot.json"):
            pause()
        return staged

    real_replace = os.replace
    renamed = 0

    def os_replace(src: Any, dst: Any, **kwargs: Any) -> None:
        nonlocal renamed
        if point == "timestamp-rename" and Path(dst).name == "timestamp.json":
            pause()
        real_replace(src, dst, **kwargs)
        if str(src).endswith(".staged"):
            renamed += 1
            if point == "renamed:1" and renamed == 1:
                pause()
            if point == "renamed:metadata" and Path(dst).parent.name == "metadata":
                pause()

    real_record = publisher.Lookup.record

    def record(self: Any, *args: Any, **kwargs: Any) -> None:
        if point == "lookup":
            pause()
        real_record(self, *args, **kwargs)

    repository.write_staged = write_staged  # type: ignore[assignment]
    os.replace = os_replace  # type: ignore[assignment]
    publisher.Lookup.record = record  # type: ignore[method-assign]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
