"""A deterministic synthetic update catalog for the benchmarks (bench/publish.py, bench/scan.py).

``SyntheticCatalog(seed, payload_dir, catalog_size=N)`` makes ``AuthoredManifest`` values of
every kind, shaped like a real catalog of about ``N`` updates:

* ``os`` (35%): OS products ("feature versions") x ``x86``/``x64``/``arm64``; one architecture
  per update for most (as Windows Update publishes "for x64-based Systems"), a few for 2-3 or
  any; cumulative, security-only, servicing-stack, dynamic and feature updates with KB numbers,
  0-12 CVEs and build ranges; a cumulative update supersedes the previous one of its product
  and architecture. Each (product, architecture) is its own index key.
* ``app`` (25%): application products; 10% apply to two; version ranges; 8% carry a EULA.
* ``driver`` (20%): 44 hardware vendors (PCI, USB, HD Audio, ACPI), each with a pool of device
  IDs such as ``PCI\\VEN_8086&DEV_46A6``; 1-4 hardware IDs (some with ``&SUBSYS_``) and 0-2
  compatible IDs of the same vendor (class codes such as ``PCI\\VEN_8086&CC_030000``): the
  catalog refuses a driver spanning vendor namespaces.
* ``definitions`` (5%): anti-malware products, each update superseding the previous one.
* ``store`` (15%): store packages.

How it grows. A real catalog grows by covering more products, hardware and OS versions, while
one product's history follows its release cadence. So the vocabulary scales with ``N`` and an
item's expected history does not. Per 100,000 updates there are 20 OS products, 3,000 app
products, 4,000 store packages, 30 definitions products and 40-400 device IDs per vendor,
with floors for small catalogs (2, 30, 30, 3 and 4). Each item gets a popularity weight once:
apps and store packages from a bounded Pareto (alpha 1.2 on [1, 200]: most have a handful of
updates, the busiest a few hundred); OS and definitions products from a narrow range around
the hand-set weights of the first ones (``OS_PRODUCTS``, ``DEFINITION_PRODUCTS``: cadences
differ little); the 44 vendors keep fixed weights, device IDs in a pool are equally likely. An
item's expected history is its weight x its kind's updates / its kind's total weight, and that
total grows with the catalog, so the history is the same at 10k, 100k or 1M updates. What
grows with the catalog: the number of keys, each vendor's drivers and so each class-code
compatible ID's history, and the history of an item that a floor keeps: below 100k the OS
floor (2 products) gives each OS product a smaller share of a smaller catalog (at 10k,
``tidings-os-11`` has 3,500 x 5/8 updates where 100k gives it 35,000 x 5/(12.3 + 14 x 2)).

The vocabulary depends on ``N`` only, never on ``seed``, so another stream (the benchmarks'
probes) lands on the same keys if it passes the same ``catalog_size``. Each vocabulary is a
prefix of every larger one (items are drawn in a fixed order, each with its weight): an item
of the 10k catalog has the same weight, and expected history, in the 1M catalog, so a device
that keeps one inventory at every size takes it from the smallest vocabulary. Products and
packages are listed most popular first.

``payload_files=False`` writes no files: the manifests then carry the ``PayloadFile`` values
the publisher would compute for their payload bytes, and ``bulk_prepared`` hands them to
``Publisher.commit_prepared`` with no hashing. Release dates are spread over 2019-2026 in
publishing order. Every manifest passes ``check`` (``validate_manifest``).
"""

from __future__ import annotations

import collections
import datetime
import functools
import hashlib
import itertools
import random
import statistics
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from tidings.catalog.piecemap import PieceMap
from tidings.manifest import (
    SCHEMA_VERSION,
    Applicability,
    AuthoredManifest,
    Classification,
    DriverRule,
    Eula,
    Impact,
    InstallBehaviour,
    Kind,
    OsRule,
    PayloadFile,
    PayloadSource,
    ProductRule,
    Reboot,
    Severity,
    StoreRule,
    UpdateManifest,
    Version,
    validate_manifest,
)

if TYPE_CHECKING:
    from tidings.catalog.publisher import Prepared

T = TypeVar("T")
OsProduct = tuple[str, float, int, tuple[str, ...]]  # (product, weight, first build, archs)

KIND_WEIGHTS: dict[Kind, float] = {
    Kind.OS: 0.35,
    Kind.APP: 0.25,
    Kind.DRIVER: 0.20,
    Kind.DEFINITIONS: 0.05,
    Kind.STORE: 0.15,
}
BASE_CATALOG_SIZE = 100_000  # updates: the catalog size the "per base" counts describe
OS_PER_BASE, MIN_OS = 20, 2  # OS products (feature versions) per BASE_CATALOG_SIZE, floor
APPS_PER_BASE, STORE_PER_BASE, MIN_PRODUCTS = 3_000, 4_000, 30  # app products, store packages
DEFINITIONS_PER_BASE = 30  # definitions products; the floor is DEFINITION_PRODUCTS' three
DEVICES_PER_BASE, MIN_DEVICES = (40, 400), 4  # device IDs per vendor (uniform), floor
MAX_DEVICES = 32_768  # of the 65,536 four-hex-digit device IDs
OS_PRODUCTS: tuple[OsProduct, ...] = (  # the first six; more "-vNN" feature versions follow
    ("tidings-os-10", 3.0, 19041, ("x86", "x64", "arm64")),
    ("tidings-os-11", 5.0, 22000, ("x64", "arm64")),
    ("tidings-os-11-iot", 0.6, 22000, ("x64", "arm64")),
    ("tidings-server-2019", 1.0, 17763, ("x64",)),
    ("tidings-server-2022", 1.5, 20348, ("x64",)),
    ("tidings-server-2025", 1.2, 26100, ("x64", "arm64")),
)
OS_EXTRA_WEIGHTS = (0.6, 3.5)  # uniform: mean 2.05 as the six above, below tidings-os-11's 5
OS_CATEGORIES = (  # (category, title words, classification, weight)
    ("cumulative", "Cumulative Update", Classification.SECURITY, 0.55),
    ("security-only", "Security Only Update", Classification.SECURITY, 0.15),
    ("servicing-stack", "Servicing Stack Update", Classification.CRITICAL, 0.12),
    ("dynamic-update", "Dynamic Update", Classification.UPDATE, 0.12),
    ("feature", "Feature Update", Classification.FEATURE, 0.06),
)
DEFINITION_PRODUCTS = (  # (product, weight): the first three; "-vNN" channels follow
    ("tidings-defender", 6.0),
    ("tidings-defender-server", 2.0),
    ("contoso-antimalware", 1.0),
)
DEFINITION_EXTRA_WEIGHTS = (1.0, 5.0)  # uniform: mean 3 as the three above, below 6
POPULARITY_ALPHA = 1.2  # apps and store packages: bounded Pareto weights...
POPULARITY_BOUNDS = (1.0, 200.0)  # ...on [1, 200]: the busiest item 200x the quietest
VENDORS = (  # (vendor, bus, vendor id, weight)
    ("Intel", "PCI", "8086", 9.0), ("Realtek", "PCI", "10EC", 5.0), ("AMD", "PCI", "1002", 4.0),
    ("NVIDIA", "PCI", "10DE", 4.0), ("Realtek Audio", "HDAUDIO", "10EC", 3.5),
    ("Intel Bluetooth", "USB", "8087", 3.0), ("Logitech", "USB", "046D", 2.5),
    ("Qualcomm", "PCI", "17CB", 2.2), ("MediaTek", "PCI", "14C3", 2.0),
    ("Broadcom", "PCI", "14E4", 1.8), ("Synaptics", "USB", "06CB", 1.6),
    ("Microsoft", "USB", "045E", 1.5), ("Samsung", "PCI", "144D", 1.4),
    ("Realtek Card Reader", "USB", "0BDA", 1.3), ("Conexant", "HDAUDIO", "14F1", 1.2),
    ("Intel Display Audio", "HDAUDIO", "8086", 1.2), ("Qualcomm Atheros", "PCI", "168C", 1.1),
    ("Marvell", "PCI", "11AB", 1.0), ("Elan", "USB", "04F3", 1.0), ("Goodix", "USB", "27C6", 0.9),
    ("HP", "USB", "03F0", 0.9), ("Canon", "USB", "04A9", 0.8), ("Epson", "USB", "04B8", 0.8),
    ("Brother", "USB", "04F9", 0.7), ("Lenovo", "USB", "17EF", 0.7), ("Dell", "USB", "413C", 0.7),
    ("ASMedia", "PCI", "1B21", 0.6), ("SK hynix", "PCI", "1C5C", 0.6),
    ("Western Digital", "PCI", "15B7", 0.6), ("Micron", "PCI", "1344", 0.5),
    ("Kingston", "PCI", "2646", 0.5), ("Razer", "USB", "1532", 0.5),
    ("Corsair", "USB", "1B1C", 0.4), ("SteelSeries", "USB", "1038", 0.4),
    ("Wacom", "USB", "056A", 0.4), ("Genesys Logic", "USB", "05E3", 0.3),
    ("Renesas", "PCI", "1912", 0.3), ("VIA", "PCI", "1106", 0.3), ("Creative", "PCI", "1102", 0.3),
    ("Cirrus Logic", "HDAUDIO", "1013", 0.3), ("Texas Instruments", "PCI", "104C", 0.2),
    ("Jabra", "USB", "0B0E", 0.2), ("Plantronics", "USB", "047F", 0.2),
    ("Intel ACPI", "ACPI", "INT", 0.5),
)  # fmt: skip
DRIVER_CLASSES = (  # (class, PCI class code)
    ("Display", "0300"), ("Net", "0200"), ("Net", "0280"), ("Media", "0403"),
    ("System", "0600"), ("HIDClass", "0C05"), ("USB", "0C03"), ("Bluetooth", "0D11"),
    ("SCSIAdapter", "0108"), ("Camera", "0480"), ("Biometric", "0C80"),
    ("Printer", "0701"), ("Sensor", "1180"), ("Extension", "FF00"),
)  # fmt: skip
WORDS = (
    "contoso", "fabrikam", "northwind", "adventure", "tailspin", "wingtip", "litware", "proseware",
    "adatum", "fourth", "coffee", "lucerne", "margie", "wide", "world", "alpine", "datum", "trey",
    "humongous", "blue", "yonder", "graphic", "woodgrove", "relecloud", "southridge", "photo",
    "studio", "editor", "notes", "mail", "chat", "sync", "vault", "backup", "player", "reader",
    "viewer", "office", "runtime", "toolkit", "agent", "monitor", "driver", "suite", "pro", "lite",
    "cloud", "desktop", "cam", "vpn", "print", "scan", "audio", "video", "code", "build", "deploy",
)  # fmt: skip
VOCABULARY_SEED = 0x5EED
PIECE_SIZE = 1_048_576  # bytes
MIX_DESCRIPTION = (
    "per 100k updates 20 OS products (floor 2), 3,000 app products and 4,000 store packages "
    "(floor 30), 30 definitions products (floor 3), 40-400 device IDs per vendor (floor 4): the "
    "vocabulary grows with the catalog, an item's history does not; weights per item: apps and "
    "store bounded Pareto (alpha 1.2, [1, 200]), OS and definitions narrow ranges, 44 vendors "
    "fixed; os 35%: x86/x64/arm64 (one architecture per update for 85%, 2-3 for 10%, any for "
    "5%), cumulative/security-only/servicing-stack/dynamic/feature, a KB each, 0-12 CVEs, build "
    "ranges, cumulative chains supersede; app 25%: 10% for 2 products, version ranges, 8% with "
    "a EULA; driver 20%: PCI/USB/HDAUDIO/ACPI, 1-4 hardware IDs + 0-2 vendor-scoped "
    "compatible IDs (PCI\\VEN_8086&CC_030000); definitions 5%: each update supersedes the "
    "previous; store 15%; release dates 2019-01..2026-11; one 64-512 byte payload per update "
    "(one per architecture for multi-arch OS updates)"
)
FIRST_DAY = datetime.date(2019, 1, 8)
LAST_DAY = datetime.date(2026, 11, 30)


# --- the vocabulary -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Weighted(Generic[T]):
    """Items with popularity weights, the heaviest first."""

    items: tuple[T, ...]
    weights: tuple[float, ...]
    cum_weights: tuple[float, ...]

    @classmethod
    def of(cls, pairs: Iterable[tuple[T, float]]) -> Weighted[T]:
        ordered = sorted(pairs, key=lambda pair: -pair[1])  # stable: ties keep draw order
        weights = tuple(w for _, w in ordered)
        return cls(tuple(i for i, _ in ordered), weights, tuple(itertools.accumulate(weights)))

    def pick(self, rng: random.Random, *, hot: bool = False) -> T:
        """A weighted random item, or the heaviest one for a ``hot`` update."""
        return self.items[0] if hot else rng.choices(self.items, cum_weights=self.cum_weights)[0]


@dataclass(frozen=True)
class Vocabulary:
    """What a catalog of ``catalog_size`` updates is about; the same for every seed."""

    catalog_size: int
    os_products: Weighted[OsProduct]
    apps: Weighted[str]
    store: Weighted[str]
    definitions: Weighted[str]
    device_pools: dict[str, tuple[str, ...]]  # vendor -> four-hex-digit device IDs


@functools.lru_cache(maxsize=4)
def vocabulary(catalog_size: int) -> Vocabulary:
    """The vocabulary of a catalog of ``catalog_size`` updates (see the module docstring)."""
    scale = catalog_size / BASE_CATALOG_SIZE

    def count(per_base: int, minimum: int) -> int:
        return max(minimum, round(per_base * scale))

    pool_sizes = _stream("pools")
    return Vocabulary(
        catalog_size=catalog_size,
        os_products=Weighted.of((p, p[1]) for p in _os_products(count(OS_PER_BASE, MIN_OS))),
        apps=Weighted.of(_popular("apps", count(APPS_PER_BASE, MIN_PRODUCTS), "-", str.lower)),
        store=Weighted.of(_popular("store", count(STORE_PER_BASE, MIN_PRODUCTS), ".", str.title)),
        definitions=Weighted.of(
            _definition_products(count(DEFINITIONS_PER_BASE, len(DEFINITION_PRODUCTS)))
        ),
        device_pools={
            vendor: _device_pool(vendor, count(pool_sizes.randint(*DEVICES_PER_BASE), MIN_DEVICES))
            for vendor, *_ in VENDORS
        },
    )


def _stream(part: str) -> random.Random:
    """The vocabulary's random stream for one part: each part stays the same when others grow."""
    return random.Random(f"{VOCABULARY_SEED}/{part}")


def _popular(
    part: str, count: int, sep: str, case: Callable[[str], str]
) -> list[tuple[str, float]]:
    """``count`` distinct names with a bounded Pareto weight each; a prefix of any larger count."""
    names, weights = _names(_stream(f"{part}/names"), sep, case), _stream(f"{part}/weights")
    alpha, (low, high) = POPULARITY_ALPHA, POPULARITY_BOUNDS
    tail = 1.0 - (low / high) ** alpha
    return [
        (name, low * (1.0 - weights.random() * tail) ** (-1.0 / alpha))  # inverse of the CDF
        for name in itertools.islice(names, count)
    ]


def _names(rng: random.Random, sep: str, case: Callable[[str], str]) -> Iterator[str]:
    """Distinct names of 2-3 ``WORDS``, numbered once the word combinations run short."""
    seen: set[str] = set()
    misses = 0
    while True:
        name = sep.join(case(word) for word in rng.sample(WORDS, rng.randint(2, 3)))
        if misses > 50:
            name = f"{name}{sep}{len(seen)}"
        if name in seen:
            misses += 1
            continue
        misses = 0
        seen.add(name)
        yield name


def _os_products(count: int) -> list[OsProduct]:
    """``OS_PRODUCTS``, then newer feature versions of each (``tidings-os-11-v01``...)."""
    rng, base = _stream("os"), len(OS_PRODUCTS)
    out = list(OS_PRODUCTS[:count])
    for i in range(base, count):
        name, _, first_build, archs = OS_PRODUCTS[i % base]
        version = i // base
        weight = rng.uniform(*OS_EXTRA_WEIGHTS)
        out.append((f"{name}-v{version:02d}", weight, first_build + 400 * version, archs))
    return out


def _definition_products(count: int) -> list[tuple[str, float]]:
    """``DEFINITION_PRODUCTS``, then more channels of each (``tidings-defender-v01``...)."""
    rng, base = _stream("definitions"), len(DEFINITION_PRODUCTS)
    extra = [
        (
            f"{DEFINITION_PRODUCTS[i % base][0]}-v{i // base:02d}",
            rng.uniform(*DEFINITION_EXTRA_WEIGHTS),
        )
        for i in range(base, count)
    ]
    return [*DEFINITION_PRODUCTS[:count], *extra]


def _device_pool(vendor: str, count: int) -> tuple[str, ...]:
    """``count`` distinct device IDs of ``vendor``; a prefix of any larger pool."""
    rng = _stream(f"pool/{vendor}")
    pool: dict[str, None] = {}
    while len(pool) < min(count, MAX_DEVICES):
        pool[f"{rng.getrandbits(16):04X}"] = None
    return tuple(pool)


# --- the stream ---------------------------------------------------------------------------------


@dataclass
class _Chains:
    """The latest update per supersedence chain, so new updates can supersede it."""

    latest: dict[tuple[str, ...], str] = field(default_factory=dict)

    def push(self, key: tuple[str, ...], update_id: str) -> tuple[str, ...]:
        previous = self.latest.get(key)
        self.latest[key] = update_id
        return () if previous is None else (previous,)


_OS_CATEGORIES = Weighted.of((c, c[3]) for c in OS_CATEGORIES)
_VENDORS = Weighted.of((v, v[3]) for v in VENDORS)


class SyntheticCatalog:
    """Makes realistic ``AuthoredManifest`` values for a catalog of about ``catalog_size``.

    ``payload_files`` writes each update's tiny payload files under ``payload_dir``; without
    them the manifests carry their ``PayloadFile`` values already (see ``bulk_prepared``).
    """

    def __init__(
        self,
        seed: int,
        payload_dir: Path,
        *,
        catalog_size: int = BASE_CATALOG_SIZE,
        payload_files: bool = True,
    ) -> None:
        self.rng = random.Random(seed)
        self.payload_dir = payload_dir
        self.payload_files = payload_files
        self.count = 0
        self._hot = False
        self._chains = _Chains()
        self._kb = 4_000_000
        self._cve = 20_000
        self.vocabulary = vocabulary(catalog_size)
        self.app_products = self.vocabulary.apps.items  # most popular first
        self.store_packages = self.vocabulary.store.items  # most popular first
        self.os_products = self.vocabulary.os_products.items  # most popular first
        self.definition_products = self.vocabulary.definitions.items  # most popular first
        self.device_pools = self.vocabulary.device_pools

    def typical_os_product(self) -> tuple[str, int, tuple[str, ...]]:
        """``(product, first build, architectures)`` of the most popular OS product on x64."""
        product, _, first_build, archs = next(p for p in self.os_products if "x64" in p[3])
        return product, first_build, archs

    def generate(self, total: int) -> Iterator[AuthoredManifest]:
        """``total`` updates of mixed kinds, in publishing (release date) order."""
        kinds, weights = list(KIND_WEIGHTS), list(KIND_WEIGHTS.values())
        for i in range(total):
            kind = self.rng.choices(kinds, weights)[0]
            yield self.make(kind, day=_day_at(i, total))

    def make(
        self, kind: Kind, *, day: datetime.date = LAST_DAY, hot: bool = False
    ) -> AuthoredManifest:
        """One new update of ``kind`` released on ``day``.

        ``hot`` files it under the busiest key of its kind (the most popular OS product and
        architecture, app product, driver vendor, definitions product or store package),
        where a real catalog's next update most likely lands and its bins are largest.
        """
        maker = {
            Kind.OS: self._os,
            Kind.APP: self._app,
            Kind.DRIVER: self._driver,
            Kind.DEFINITIONS: self._definitions,
            Kind.STORE: self._store,
        }[kind]
        self.count += 1
        update_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self._hot = hot
        try:
            manifest, payload_names = maker(update_id, day)
        finally:
            self._hot = False
        payloads = [(name, self._payload_bytes(update_id, name)) for name in payload_names]
        source = f"synthetic-{self.count}.toml"
        if not self.payload_files:
            files = tuple(_payload_file(name, data) for name, data in payloads)
            return AuthoredManifest(source, replace(manifest, payloads=files), ())
        sources = tuple(self._write_payload(update_id, name, data) for name, data in payloads)
        return AuthoredManifest(source, manifest, sources)

    # --- one maker per kind -------------------------------------------------------------------

    def _os(self, update_id: str, day: datetime.date) -> tuple[UpdateManifest, list[str]]:
        rng = self.rng
        product, _, first_build, archs = self._pick(self.vocabulary.os_products)
        category, words, classification, _ = self._pick(_OS_CATEGORIES)
        roll = 0.0 if self._hot else rng.random()
        if roll < 0.85:
            chosen: tuple[str, ...] = (archs[0] if self._hot else rng.choice(archs),)
        elif roll < 0.95 or len(archs) == 1:
            chosen = archs
        else:
            chosen = ()  # any architecture (e.g. a servicing stack update)
        kb = self._next_kb()
        build = first_build + rng.randint(0, 700)
        supersedes = self._chains.push((product, *chosen, category), update_id)
        if category not in ("cumulative", "security-only"):
            supersedes = supersedes if rng.random() < 0.3 else ()
        arch_text = " and ".join(chosen) if chosen else "all"
        title = f"{day:%Y-%m} {words} for {product} ({kb})"
        manifest = self._manifest(
            update_id, Kind.OS, f"{title} for {arch_text}-based Systems", day,
            classification=classification,
            severity=rng.choice(list(Severity)) if classification is Classification.SECURITY
            else Severity.UNSPECIFIED,
            kb=(kb,), cves=self._cves(day, 0, 12 if category == "cumulative" else 4),
            products=(product,), categories=(category,), supersedes=supersedes,
            applicability=Applicability(
                os=OsRule(product, chosen, min_build=build - rng.randint(0, 200), max_build=build)
            ),
            install=InstallBehaviour(
                reboot=Reboot.ALWAYS if category != "dynamic-update" else Reboot.NEVER,
                can_uninstall=category != "servicing-stack",
                impact=Impact.EXCLUSIVE if category == "feature" else Impact.NORMAL,
            ),
        )  # fmt: skip
        names = [f"{kb.lower()}-{arch}.msu" for arch in chosen] or [f"{kb.lower()}.msu"]
        return manifest, names

    def _app(self, update_id: str, day: datetime.date) -> tuple[UpdateManifest, list[str]]:
        rng = self.rng
        products = [self._pick(self.vocabulary.apps)]
        if rng.random() < 0.10 and not self._hot:
            products = list(dict.fromkeys([*products, self._pick(self.vocabulary.apps)]))
        major, minor, patch = rng.randint(1, 30), rng.randint(0, 20), rng.randint(1, 99)
        new = Version((major, minor, patch))
        installed = tuple(ProductRule(p, Version((major,)), new) for p in products)
        supersedes = self._chains.push(("app", products[0]), update_id)
        supersedes = supersedes if rng.random() < 0.3 else ()
        security = rng.random() < 0.25
        eula = (
            Eula(f"{products[0]} licence terms. " + self._words(30))
            if rng.random() < 0.08
            else None
        )
        manifest = self._manifest(
            update_id, Kind.APP, f"{_display(products[0])} {new}", day,
            classification=Classification.SECURITY if security else Classification.UPDATE,
            severity=rng.choice(list(Severity)) if security else Severity.UNSPECIFIED,
            cves=self._cves(day, 1, 3) if security else (),
            products=tuple(products), categories=("application",), supersedes=supersedes,
            applicability=Applicability(installed=installed),
            install=InstallBehaviour(reboot=rng.choice([Reboot.NEVER, Reboot.CAN_REQUEST])),
            eula=eula,
        )  # fmt: skip
        return manifest, [f"{products[0]}-{new}.{rng.choice(['msi', 'exe', 'msix'])}"]

    def _driver(self, update_id: str, day: datetime.date) -> tuple[UpdateManifest, list[str]]:
        rng = self.rng
        vendor, bus, vid, _ = self._pick(_VENDORS)
        driver_class, class_code = rng.choice(DRIVER_CLASSES)
        pool = self.device_pools[vendor]
        devices = rng.sample(pool, min(len(pool), rng.choices([1, 2, 3, 4], [50, 25, 15, 10])[0]))
        hardware_ids = tuple(_hardware_id(rng, bus, vid, dev) for dev in devices)
        compatible: list[str] = []
        # Vendor-scoped only: the catalog refuses a driver whose IDs span vendor namespaces,
        # and a bus-wide ID such as PCI\\CC_0300 is a namespace of its own.
        for form in range(rng.choices([0, 1, 2], [40, 45, 15])[0]):
            if bus == "PCI":
                compatible.append(f"PCI\\VEN_{vid}&CC_{class_code}{'00' if form == 0 else ''}")
            elif bus == "USB":
                compatible.append(f"USB\\VID_{vid}&Class_{class_code[:2]}")
            else:
                compatible.append(_hardware_id(rng, bus, vid, rng.choice(pool)))
        compatible_ids = tuple(c for c in dict.fromkeys(compatible) if c not in hardware_ids)
        version = Version((rng.randint(1, 32), 0, rng.randint(0, 200), rng.randint(0, 9999)))
        manifest = self._manifest(
            update_id, Kind.DRIVER, f"{vendor} - {driver_class} - {version}", day,
            classification=Classification.DRIVER, categories=(driver_class.lower(),),
            applicability=Applicability(
                driver=DriverRule(hardware_ids, compatible_ids, version, day, driver_class, vendor)
            ),
            install=InstallBehaviour(reboot=rng.choice([Reboot.NEVER, Reboot.CAN_REQUEST])),
        )  # fmt: skip
        return manifest, [f"{vendor.split()[0].lower()}-{devices[0].lower()}-{version}.cab"]

    def _definitions(self, update_id: str, day: datetime.date) -> tuple[UpdateManifest, list[str]]:
        rng = self.rng
        product = self._pick(self.vocabulary.definitions)
        version = Version((1, 300 + (day - FIRST_DAY).days // 30, rng.randint(0, 999), 0))
        manifest = self._manifest(
            update_id, Kind.DEFINITIONS, f"Security Intelligence Update {version} for {product}",
            day, classification=Classification.DEFINITIONS, products=(product,),
            categories=("definitions",), supersedes=self._chains.push(("defs", product), update_id),
            install=InstallBehaviour(reboot=Reboot.NEVER, impact=Impact.MINOR),
        )  # fmt: skip
        return manifest, [f"mpam-{product}-{version}.vdm"]

    def _store(self, update_id: str, day: datetime.date) -> tuple[UpdateManifest, list[str]]:
        rng = self.rng
        package = self._pick(self.vocabulary.store)
        version = Version((rng.randint(1, 40), rng.randint(0, 30), rng.randint(0, 999), 0))
        manifest = self._manifest(
            update_id, Kind.STORE, f"{package} {version}", day,
            classification=Classification.UPDATE, categories=("store",),
            applicability=Applicability(store=StoreRule(package, version)),
            install=InstallBehaviour(reboot=Reboot.NEVER),
        )  # fmt: skip
        return manifest, [f"{package}_{version}.msixbundle"]

    # --- shared parts -------------------------------------------------------------------------

    def _manifest(
        self,
        update_id: str,
        kind: Kind,
        title: str,
        day: datetime.date,
        *,
        classification: Classification,
        applicability: Applicability = Applicability(),  # noqa: B008 (immutable value)
        install: InstallBehaviour = InstallBehaviour(),  # noqa: B008 (immutable value)
        severity: Severity = Severity.UNSPECIFIED,
        kb: tuple[str, ...] = (),
        cves: tuple[str, ...] = (),
        products: tuple[str, ...] = (),
        categories: tuple[str, ...] = (),
        supersedes: tuple[str, ...] = (),
        eula: Eula | None = None,
    ) -> UpdateManifest:
        return UpdateManifest(
            schema=SCHEMA_VERSION,
            id=update_id,
            revision=1,
            kind=kind,
            title=title[:300],
            description=f"{title}. " + self._words(self.rng.randint(12, 60)),
            classification=classification,
            severity=severity,
            kb=kb,
            cves=cves,
            release_date=day,
            products=products,
            categories=categories,
            supersedes=supersedes,
            prerequisites=(),
            bundle=(),
            applicability=applicability,
            install=install,
            eula=eula,
            payloads=(),
        )

    def _pick(self, weighted: Weighted[T]) -> T:
        return weighted.pick(self.rng, hot=self._hot)

    def _payload_bytes(self, update_id: str, name: str) -> bytes:
        size = self.rng.randint(64, 512)
        body = (update_id + name).encode()
        return (body * (size // len(body) + 1))[:size]

    def _write_payload(self, update_id: str, name: str, data: bytes) -> PayloadSource:
        folder = self.payload_dir / f"{self.count // 1000:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{update_id}.{name}"
        path.write_bytes(data)
        return PayloadSource(name=name, path=path, sha256=None, size=None, piece_size=PIECE_SIZE)

    def _next_kb(self) -> str:
        self._kb += self.rng.randint(1, 40)
        return f"KB{self._kb}"

    def _cves(self, day: datetime.date, low: int, high: int) -> tuple[str, ...]:
        count = self.rng.randint(low, high)
        out = []
        for _ in range(count):
            self._cve += self.rng.randint(1, 30)
            out.append(f"CVE-{day.year}-{self._cve % 60000 + 1000}")
        return tuple(dict.fromkeys(out))

    def _words(self, count: int) -> str:
        return " ".join(self.rng.choices(WORDS, k=count)).capitalize() + "."


# --- using what it makes ------------------------------------------------------------------------


def check(authored: AuthoredManifest) -> None:
    """Validate a synthetic manifest as the publisher will sign it.

    With payload files the publisher fills the payload hashes in, so placeholders stand in for
    them; without, the manifest's own ``payloads`` are checked.

    Raises:
        ManifestError: the generator made a manifest that breaks a schema rule.
    """
    payloads = authored.manifest.payloads
    if authored.payload_sources:
        payloads = tuple(
            PayloadFile(s.name, 0, "0" * 64, s.piece_size, "0" * 64, 0)
            for s in authored.payload_sources
        )
    validate_manifest(replace(authored.manifest, payloads=payloads), source=authored.source)


def bulk_prepared(authored: AuthoredManifest) -> Prepared:
    """``authored`` ready for ``Publisher.commit_prepared``, with no payload in the store.

    For building big catalogs fast from ``SyntheticCatalog(..., payload_files=False)``: the
    manifest already pins its payloads, whose files are then never served.

    Raises:
        ValueError: ``authored`` names payload files: use ``Publisher.prepare`` for it.
    """
    from tidings.catalog.entries import manifest_document
    from tidings.catalog.publisher import Prepared

    if authored.payload_sources:
        raise ValueError(f"{authored.source} has payload files: use Publisher.prepare")
    document = manifest_document(authored.manifest)
    return Prepared(authored.manifest, document, hashlib.sha256(document).hexdigest(), ())


def key_histories(items: Iterable[AuthoredManifest]) -> dict[str, dict[str, int | str]]:
    """How long each key's history is (updates filed under it), per kind of key.

    Kinds: ``os`` (product/architecture, or product/any), ``app`` and ``definitions``
    (product), ``store`` (package), ``driver`` (hardware ID) and ``driver_compatible``
    (compatible ID). For each: ``keys`` (distinct keys), ``busiest`` (the key with the longest
    history), ``max``, ``p90`` and ``median`` updates per key.
    """
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for authored in items:
        for kind, key in _history_keys(authored.manifest):
            counts[kind][key] += 1
    out: dict[str, dict[str, int | str]] = {}
    for kind, counter in sorted(counts.items()):
        lengths = sorted(counter.values())
        busiest, longest = counter.most_common(1)[0]
        out[kind] = {
            "keys": len(counter),
            "busiest": busiest,
            "max": longest,
            "p90": lengths[int(0.9 * (len(lengths) - 1))],
            "median": int(statistics.median_low(lengths)),
        }
    return out


def _history_keys(manifest: UpdateManifest) -> Iterator[tuple[str, str]]:
    rules = manifest.applicability
    if rules.os is not None:
        for arch in rules.os.architectures or ("any",):
            yield "os", f"{rules.os.product}/{arch}"
    elif rules.driver is not None:
        yield from (("driver", hwid.upper()) for hwid in rules.driver.hardware_ids)
        yield from (("driver_compatible", cid.upper()) for cid in rules.driver.compatible_ids)
    elif rules.store is not None:
        yield "store", rules.store.package.lower()
    elif manifest.kind is Kind.APP:
        yield from (("app", p) for p in dict.fromkeys(r.product for r in rules.installed))
    elif manifest.kind is Kind.DEFINITIONS:
        yield from (("definitions", p) for p in manifest.products)


def _payload_file(name: str, data: bytes) -> PayloadFile:
    """What the publisher signs for a payload of ``data`` (one piece: it is under 1 MiB)."""
    digest = hashlib.sha256(data)
    piece_map = PieceMap(PIECE_SIZE, len(data), (digest.digest(),)).to_bytes()
    return PayloadFile(
        name, len(data), digest.hexdigest(), PIECE_SIZE,
        hashlib.sha256(piece_map).hexdigest(), len(piece_map),
    )  # fmt: skip


def _display(product: str) -> str:
    return " ".join(part.title() for part in product.split("-"))


def _hardware_id(rng: random.Random, bus: str, vid: str, dev: str) -> str:
    if bus == "USB":
        return f"USB\\VID_{vid}&PID_{dev}"
    if bus == "HDAUDIO":
        return f"HDAUDIO\\FUNC_01&VEN_{vid}&DEV_{dev}"
    if bus == "ACPI":
        return f"ACPI\\{vid}{dev}"
    if rng.random() < 0.3:
        return f"PCI\\VEN_{vid}&DEV_{dev}&SUBSYS_{rng.getrandbits(32):08X}"
    return f"PCI\\VEN_{vid}&DEV_{dev}"


def _day_at(index: int, total: int) -> datetime.date:
    span = (LAST_DAY - FIRST_DAY).days
    return FIRST_DAY + datetime.timedelta(days=span * index // max(total, 1))
