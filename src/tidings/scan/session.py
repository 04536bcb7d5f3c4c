"""The WUA-style client API: ``UpdateSession`` -> ``UpdateSearcher.search(criteria)``.

Modelled on the Windows Update Agent API (``IUpdateSession``, ``IUpdateSearcher``,
``ISearchResult``, ``IUpdate``): a search syncs the signed catalog (only the bins this
device's inventory selects), evaluates applicability, overlays the device's own records
(hidden, EULA accepted, downloaded) and filters by the criteria (docs/search.md).
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tidings.agent.ledger import Ledger
from tidings.agent.state import AgentState
from tidings.clock import Clock, SystemClock
from tidings.manifest import InstallBehaviour, UpdateManifest
from tidings.scan.applicability import ApplicabilityResult, Evaluated, RuleMemo, evaluate
from tidings.scan.criteria import parse_criteria
from tidings.scan.inventory import collect_inventory
from tidings.scan.inventory_model import Inventory
from tidings.scan.sync import Progress, sync_catalog
from tidings.trust.catalog_reader import BinCache, BinEntry, CatalogReader
from tidings.trust.fetcher import FetcherConfig, HttpxFetcher

INVENTORY_FILE = "inventory.toml"  # in the state directory: overrides the real providers


@dataclass(frozen=True)
class ScanStats:
    """What one search cost."""

    seconds: float
    bytes_received: int  # bytes of metadata downloaded
    bins_selected: int  # bins the inventory selected
    bins_verified: int  # bins verified (downloaded if changed) rather than taken from cache
    documents_fetched: int  # index documents downloaded (new content since the last scan)
    candidates: int  # manifests the index documents offered for evaluation


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Keep Python's cyclic garbage collector out of a search; it runs again right after.

    A long-lived session holds ~100,000 objects at 100k updates (parsed manifests, verdicts);
    a full collection pass over them costs ~70 ms and used to land inside ~40% of incremental
    searches. A search allocates only short-lived, acyclic objects, so nothing is lost by
    collecting after it instead: the same work, outside the user's wait.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Update:
    """One update as a search shows it (WUA's ``IUpdate``)."""

    def __init__(
        self,
        evaluated: Evaluated,
        ledger: Ledger,
        clock: Clock,
        *,
        hidden: bool,
        downloaded: bool,
        eula_accepted: bool,
    ) -> None:
        self._evaluated = evaluated
        self._ledger = ledger
        self._clock = clock
        self._hidden = hidden
        self._downloaded = downloaded
        self._eula_accepted = eula_accepted

    @property
    def manifest(self) -> UpdateManifest:
        """The signed manifest."""
        return self._evaluated.manifest

    @property
    def id(self) -> str:
        """The update's id (UUID)."""
        return self.manifest.id

    @property
    def update_id(self) -> str:
        """The update's id (WUA's ``Identity.UpdateID``)."""
        return self.manifest.id

    @property
    def revision(self) -> int:
        """The revision number."""
        return self.manifest.revision

    @property
    def title(self) -> str:
        """The title."""
        return self.manifest.title

    @property
    def description(self) -> str:
        """The description."""
        return self.manifest.description

    @property
    def kind(self) -> str:
        """``os``, ``app``, ``driver``, ``definitions`` or ``store``."""
        return self.manifest.kind.value

    @property
    def classification(self) -> str:
        """security, critical, update, ..."""
        return self.manifest.classification.value

    @property
    def severity(self) -> str:
        """critical, important, moderate, low, unspecified."""
        return self.manifest.severity.value

    @property
    def kb_ids(self) -> tuple[str, ...]:
        """Knowledge-base article ids."""
        return self.manifest.kb

    @property
    def cve_ids(self) -> tuple[str, ...]:
        """CVE ids fixed."""
        return self.manifest.cves

    @property
    def categories(self) -> tuple[str, ...]:
        """Categories as published."""
        return self.manifest.categories

    @property
    def supersedes(self) -> tuple[str, ...]:
        """Ids of the updates this one replaces."""
        return self.manifest.supersedes

    @property
    def update_type(self) -> str:
        """WUA's ``Type``: Software or Driver."""
        return self._evaluated.update_type

    @property
    def category_ids(self) -> frozenset[str]:
        """What ``CategoryIDs contains`` matches."""
        return self._evaluated.category_ids

    @property
    def is_installed(self) -> bool:
        """Installed on this device."""
        return self._evaluated.is_installed

    @property
    def is_present(self) -> bool:
        """WUA's ``IsPresent``."""
        return self._evaluated.is_present

    @property
    def is_assigned(self) -> bool:
        """Chosen for automatic install."""
        return self._evaluated.is_assigned

    @property
    def browse_only(self) -> bool:
        """Optional: shown only when the user browses."""
        return self._evaluated.browse_only

    @property
    def reboot_required(self) -> bool:
        """Installing it needs a reboot."""
        return self._evaluated.reboot_required

    @property
    def deployment_action(self) -> str:
        """WUA's ``DeploymentAction``."""
        return self._evaluated.deployment_action

    @property
    def is_superseded(self) -> bool:
        """Replaced by an installed or applicable update."""
        return self._evaluated.is_superseded

    @property
    def device(self) -> str | None:
        """Drivers: the device instance it is best for."""
        return self._evaluated.device

    @property
    def install_behaviour(self) -> InstallBehaviour:
        """Reboot, uninstall, user input and impact, as signed."""
        return self.manifest.install

    @property
    def download_size(self) -> int:
        """Bytes of all payloads."""
        return sum(p.size for p in self.manifest.payloads)

    @property
    def is_downloaded(self) -> bool:
        """Whether the payloads are downloaded and verified on this device."""
        return self._downloaded

    @property
    def is_hidden(self) -> bool:
        """Whether the user hid this update (persisted; hidden updates are not offered)."""
        return self._hidden

    @is_hidden.setter
    def is_hidden(self, value: bool) -> None:
        self._ledger.set_hidden(self.id, value, self._clock.now())
        self._hidden = value

    @property
    def eula_text(self) -> str | None:
        """The licence to accept before install, if any."""
        return self.manifest.eula.text if self.manifest.eula else None

    @property
    def eula_accepted(self) -> bool:
        """True when there is no EULA or the user accepted this revision's EULA."""
        return self.manifest.eula is None or self._eula_accepted

    def accept_eula(self) -> None:
        """Record the user's acceptance of this revision's EULA (WUA's ``AcceptEula``)."""
        self._ledger.accept_eula(self.id, self.revision, self._clock.now())
        self._eula_accepted = True

    def __repr__(self) -> str:
        return f"<Update {self.id} r{self.revision} {self.title!r}>"


@dataclass(frozen=True)
class Withheld:
    """An update that matches the criteria and would be offered, but for its prerequisites."""

    update: Update
    missing: tuple[str, ...]  # prerequisite ids not installed, in manifest order
    unpublished: tuple[str, ...]  # those of ``missing`` the catalog does not hold either


@dataclass(frozen=True)
class SearchResult:
    """WUA's ``ISearchResult``: the updates found and what went wrong along the way.

    ``withheld`` is a Tidings addition: what the criteria matched but the device is not
    offered until a prerequisite is installed, so that an empty result can say why.
    """

    updates: tuple[Update, ...]
    warnings: tuple[str, ...]
    stats: ScanStats
    withheld: tuple[Withheld, ...] = ()


class UpdateSearcher:
    """Searches the catalog for this device (WUA's ``IUpdateSearcher``)."""

    def __init__(self, session: UpdateSession) -> None:
        self._session = session

    def search(
        self, criteria: str | None = None, *, progress: Progress | None = None
    ) -> SearchResult:
        """Sync the catalog, evaluate it for this device and filter by ``criteria``.

        Args:
            criteria: WUA-style criteria (docs/search.md); default ``IsInstalled=0 and
                IsHidden=0``. Parsed before any network traffic.
            progress: Called with (step, done, total) while syncing.

        Raises:
            CriteriaError: the criteria are invalid (position and problem named).
            IntegrityError: catalog metadata failed verification; nothing from it is used.
            TransportError: the update service could not be reached.
        """
        parsed = parse_criteria(criteria)
        return self._session._search(parsed.matches, progress)


class UpdateSession:
    """A device's session with the update service (WUA's ``IUpdateSession``).

    Keep one session for the life of the agent: it caches verified, parsed bins so that
    scans after the first cost what changed.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        fetcher_config: FetcherConfig | None = None,
        inventory: Inventory | None = None,
    ) -> None:
        state_dir = Path(state_dir)
        self.state = AgentState.load(state_dir)
        self.clock = clock or SystemClock()
        self.fetcher_config = fetcher_config
        self.ledger = Ledger(state_dir / "agent.db")
        self._inventory = inventory
        self._cache = BinCache()
        self._last_evaluation: tuple[object, ApplicabilityResult] | None = None
        self._rule_memo = RuleMemo()
        self._fetcher: HttpxFetcher | None = None

    def close(self) -> None:
        """Release the session's files and its connection to the service."""
        if self._fetcher is not None:
            self._fetcher.close()
            self._fetcher = None
        self.ledger.close()

    def _connection(self) -> HttpxFetcher:
        """The pinned HTTPS client, kept for the session: later scans skip the TLS handshake."""
        if self._fetcher is None:
            self._fetcher = HttpxFetcher(
                ca_file=self.state.ca_path,
                pin=self.state.identity.pin,
                base_url=self.state.identity.server,
                config=self.fetcher_config,
                clock=self.clock,
            )
        return self._fetcher

    def __enter__(self) -> UpdateSession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def create_searcher(self) -> UpdateSearcher:
        """A searcher bound to this session."""
        return UpdateSearcher(self)

    def inventory(self) -> Inventory:
        """This device's inventory: real providers, overridden by ``inventory.toml`` if present."""
        if self._inventory is not None:
            return self._inventory
        override = self.state.state_dir / INVENTORY_FILE
        return collect_inventory(
            override_file=override if override.exists() else None,
            installed_updates=frozenset(self.ledger.installed()),
        )

    def _reader(self, fetcher: HttpxFetcher) -> CatalogReader:
        trust = self.state.state_dir / "trust"
        metadata_dir = trust / "metadata"
        have_local_root = (metadata_dir / "root.json").exists()
        server = self.state.identity.server.rstrip("/")
        return CatalogReader(
            metadata_dir=metadata_dir,
            metadata_url=f"{server}/metadata/",
            targets_url=f"{server}/targets/",
            download_dir=self.state.state_dir / "downloads",
            fetcher=fetcher,
            # After the first scan python-tuf's own copy (rotated forward) is the trust anchor.
            bootstrap=None if have_local_root else self.state.root_path.read_bytes(),
            cache=self._cache,
        )

    def _evaluate(self, entries: tuple[BinEntry, ...], inventory: Inventory) -> ApplicabilityResult:
        """Applicability, reused while neither the candidates nor the inventory changed.

        The key is the candidates themselves, not their ids and revisions: the reader hands
        out the same objects for unchanged documents, so comparing is cheap, and a manifest
        that changed under the same id and revision is never judged by an old verdict.
        """
        key = (tuple(e.manifest for e in entries), inventory)
        if self._last_evaluation is None or self._last_evaluation[0] != key:
            result = evaluate([e.manifest for e in entries], inventory, self._rule_memo)
            self._last_evaluation = (key, result)
        return self._last_evaluation[1]

    def _search(self, matches: Callable[[Update], bool], progress: Progress | None) -> SearchResult:
        with _collector_paused():
            return self._search_unpaused(matches, progress)

    def _search_unpaused(
        self, matches: Callable[[Update], bool], progress: Progress | None
    ) -> SearchResult:
        started = time.monotonic()
        inventory = self.inventory()
        fetcher = self._connection()
        received_before = fetcher.bytes_received
        try:
            synced = sync_catalog(self._reader(fetcher), inventory, progress=progress)
        except BaseException:
            self._fetcher = None  # a failed scan starts the next one on a fresh connection
            fetcher.close()
            raise
        result = self._evaluate(synced.entries, inventory)
        hidden, accepted = self.ledger.hidden(), self.ledger.eula_accepted()
        downloaded = self.ledger.downloaded()

        def shown(e: Evaluated) -> Update:
            return Update(
                e,
                self.ledger,
                self.clock,
                hidden=e.update_id in hidden,
                downloaded=(e.update_id, e.revision) in downloaded,
                eula_accepted=(e.update_id, e.revision) in accepted,
            )

        updates = [shown(e) for e in result.updates]
        withheld = [(u, e) for e in result.withheld if matches(u := shown(e))]
        published = {e.update_id for e in result.evaluated} if withheld else set()
        stats = ScanStats(
            time.monotonic() - started,
            fetcher.bytes_received - received_before,
            len(synced.bins),
            len(synced.bins_verified),
            len(synced.documents_fetched),
            len(synced.entries),
        )
        return SearchResult(
            tuple(u for u in updates if matches(u)),
            (*synced.warnings, *result.warnings),
            stats,
            tuple(
                Withheld(
                    u,
                    e.missing_prerequisites,
                    tuple(p for p in e.missing_prerequisites if p not in published),
                )
                for u, e in withheld
            ),
        )
