"""A deterministic synthetic catalog for the publishing benchmarks (bench/publish.py).

``SyntheticCatalog(seed, payload_dir)`` makes ``AuthoredManifest`` values of every kind, with a
tiny unique payload file each, from fixed-seed random choices shaped like a real update catalog:

* ``os`` (35%): 6 OS products x ``x86``/``x64``/``arm64``; one architecture per update for
  most (as Windows Update publishes "for x64-based Systems"), a few for 2-3 or for any
  architecture; cumulative, security-only, servicing-stack and feature updates with KB
  numbers, 0-12 CVEs and build ranges; a cumulative update supersedes the previous one of its
  product and architecture. Each (product, architecture) is its own index key.
* ``app`` (25%): 3,000 products with a Zipf long tail (a few busy products, most with a
  handful of updates); 10% apply to two products; version ranges; 8% carry a EULA.
* ``driver`` (20%): 44 hardware vendors (PCI, USB, HD Audio, ACPI) with Zipf popularity, each
  with a pool of device IDs such as ``PCI\\VEN_8086&DEV_46A6``; 1-4 hardware IDs (some with
  ``&SUBSYS_``) and 0-2 compatible IDs of the same vendor (class codes such as
  ``PCI\\VEN_8086&CC_030000``): the catalog refuses a driver spanning vendor namespaces.
* ``definitions`` (5%): 3 anti-malware products, each update superseding the previous one.
* ``store`` (15%): 4,000 store packages with a Zipf long tail.

Release dates are spread over 2019-2026 in publishing order. Every manifest can be checked
with ``tidings.manifest.validate_manifest``.
"""

from __future__ import annotations

import datetime
import itertools
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

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

T = TypeVar("T")

KIND_WEIGHTS: dict[Kind, float] = {
    Kind.OS: 0.35,
    Kind.APP: 0.25,
    Kind.DRIVER: 0.20,
    Kind.DEFINITIONS: 0.05,
    Kind.STORE: 0.15,
}
OS_PRODUCTS = (  # (product, weight, first build, architectures)
    ("tidings-os-10", 3.0, 19041, ("x86", "x64", "arm64")),
    ("tidings-os-11", 5.0, 22000, ("x64", "arm64")),
    ("tidings-os-11-iot", 0.6, 22000, ("x64", "arm64")),
    ("tidings-server-2019", 1.0, 17763, ("x64",)),
    ("tidings-server-2022", 1.5, 20348, ("x64",)),
    ("tidings-server-2025", 1.2, 26100, ("x64", "arm64")),
)
OS_CATEGORIES = (  # (category, title words, classification, weight)
    ("cumulative", "Cumulative Update", Classification.SECURITY, 0.55),
    ("security-only", "Security Only Update", Classification.SECURITY, 0.15),
    ("servicing-stack", "Servicing Stack Update", Classification.CRITICAL, 0.12),
    ("dynamic-update", "Dynamic Update", Classification.UPDATE, 0.12),
    ("feature", "Feature Update", Classification.FEATURE, 0.06),
)
APP_PRODUCTS = 3_000
STORE_PACKAGES = 4_000
DEFINITION_PRODUCTS = ("tidings-defender", "tidings-defender-server", "contoso-antimalware")
VENDORS = (  # (vendor, bus, vendor id, weight)
    ("Intel", "PCI", "8086", 9.0),
    ("Realtek", "PCI", "10EC", 5.0),
    ("AMD", "PCI", "1002", 4.0),
    ("NVIDIA", "PCI", "10DE", 4.0),
    ("Realtek Audio", "HDAUDIO", "10EC", 3.5),
    ("Intel Bluetooth", "USB", "8087", 3.0),
    ("Logitech", "USB", "046D", 2.5),
    ("Qualcomm", "PCI", "17CB", 2.2),
    ("MediaTek", "PCI", "14C3", 2.0),
    ("Broadcom", "PCI", "14E4", 1.8),
    ("Synaptics", "USB", "06CB", 1.6),
    ("Microsoft", "USB", "045E", 1.5),
    ("Samsung", "PCI", "144D", 1.4),
    ("Realtek Card Reader", "USB", "0BDA", 1.3),
    ("Conexant", "HDAUDIO", "14F1", 1.2),
    ("Intel Display Audio", "HDAUDIO", "8086", 1.2),
    ("Qualcomm Atheros", "PCI", "168C", 1.1),
    ("Marvell", "PCI", "11AB", 1.0),
    ("Elan", "USB", "04F3", 1.0),
    ("Goodix", "USB", "27C6", 0.9),
    ("HP", "USB", "03F0", 0.9),
    ("Canon", "USB", "04A9", 0.8),
    ("Epson", "USB", "04B8", 0.8),
    ("Brother", "USB", "04F9", 0.7),
    ("Lenovo", "USB", "17EF", 0.7),
    ("Dell", "USB", "413C", 0.7),
    ("ASMedia", "PCI", "1B21", 0.6),
    ("SK hynix", "PCI", "1C5C", 0.6),
    ("Western Digital", "PCI", "15B7", 0.6),
    ("Micron", "PCI", "1344", 0.5),
    ("Kingston", "PCI", "2646", 0.5),
    ("Razer", "USB", "1532", 0.5),
    ("Corsair", "USB", "1B1C", 0.4),
    ("SteelSeries", "USB", "1038", 0.4),
    ("Wacom", "USB", "056A", 0.4),
    ("Genesys Logic", "USB", "05E3", 0.3),
    ("Renesas", "PCI", "1912", 0.3),
    ("VIA", "PCI", "1106", 0.3),
    ("Creative", "PCI", "1102", 0.3),
    ("Cirrus Logic", "HDAUDIO", "1013", 0.3),
    ("Texas Instruments", "PCI", "104C", 0.2),
    ("Jabra", "USB", "0B0E", 0.2),
    ("Plantronics", "USB", "047F", 0.2),
    ("Intel ACPI", "ACPI", "INT", 0.5),
)
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
_OS_PRODUCT_CUM = list(itertools.accumulate(p[1] for p in OS_PRODUCTS))
_OS_CATEGORY_CUM = list(itertools.accumulate(c[3] for c in OS_CATEGORIES))
_VENDOR_CUM = list(itertools.accumulate(v[3] for v in VENDORS))
_DEFINITION_CUM = list(itertools.accumulate((6.0, 2.0, 1.0)))
VOCABULARY_SEED = 0x5EED
MIX_DESCRIPTION = (
    "os 35%: 6 products x x86/x64/arm64 (one architecture per update for 85%, 2-3 for 10%, "
    "any for 5%), cumulative/security-only/servicing-stack/dynamic/feature, a KB each, 0-12 "
    "CVEs, build ranges, cumulative chains supersede; app 25%: 3,000 products with a Zipf tail "
    "(s=1.1), 10% for 2 products, version ranges, 8% with a EULA; driver 20%: 44 vendors on "
    "PCI/USB/HDAUDIO/ACPI (Zipf popularity), 1-4 hardware IDs + 0-2 vendor-scoped "
    "compatible IDs (PCI\\VEN_8086&CC_030000); definitions 5%: 3 products, each update supersedes "
    "the previous; store 15%: 4,000 packages (Zipf, s=1.1); release dates 2019-01..2026-11; "
    "one 64-512 byte payload per update (one per architecture for multi-arch OS updates)"
)
FIRST_DAY = datetime.date(2019, 1, 8)
LAST_DAY = datetime.date(2026, 11, 30)


def zipf_cum_weights(count: int, exponent: float = 1.1) -> list[float]:
    """Cumulative weights of a Zipf long tail: item ``k`` weighs ``1 / (k+1)**exponent``."""
    return list(itertools.accumulate(1.0 / (k + 1) ** exponent for k in range(count)))


@dataclass
class _Chains:
    """The latest update per supersedence chain, so new updates can supersede it."""

    latest: dict[tuple[str, ...], str] = field(default_factory=dict)

    def push(self, key: tuple[str, ...], update_id: str) -> tuple[str, ...]:
        previous = self.latest.get(key)
        self.latest[key] = update_id
        return () if previous is None else (previous,)


class SyntheticCatalog:
    """Makes realistic ``AuthoredManifest`` values, each with one or more tiny payload files."""

    def __init__(self, seed: int, payload_dir: Path) -> None:
        self.rng = random.Random(seed)
        self.payload_dir = payload_dir
        self.count = 0
        self._hot = False
        self._chains = _Chains()
        self._kb = 4_000_000
        self._cve = 20_000
        # The vocabulary (product and package names, device IDs) is the same for every seed,
        # so updates from another stream (the benchmark's probes) land on the catalog's keys.
        setup = random.Random(VOCABULARY_SEED)
        self.app_products = _unique_names(setup, APP_PRODUCTS, "-", str.lower)
        self.store_packages = _unique_names(setup, STORE_PACKAGES, ".", str.title)
        self.app_cum = zipf_cum_weights(APP_PRODUCTS)
        self.store_cum = zipf_cum_weights(STORE_PACKAGES)
        self.device_pools = {
            v[0]: [f"{setup.getrandbits(16):04X}" for _ in range(setup.randint(40, 400))]
            for v in VENDORS
        }

    # --- the stream ---------------------------------------------------------------------------

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
        sources = tuple(self._payload(update_id, name) for name in payload_names)
        return AuthoredManifest(f"synthetic-{self.count}.toml", manifest, sources)

    # --- one maker per kind -------------------------------------------------------------------

    def _os(self, update_id: str, day: datetime.date) -> tuple[UpdateManifest, list[str]]:
        rng = self.rng
        product, _, first_build, archs = self._pick(OS_PRODUCTS, _OS_PRODUCT_CUM)
        category, words, classification, _ = self._pick(OS_CATEGORIES, _OS_CATEGORY_CUM)
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
        products = [self._pick(self.app_products, self.app_cum)]
        if rng.random() < 0.10 and not self._hot:
            products = list(dict.fromkeys([*products, self._pick(self.app_products, self.app_cum)]))
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
        vendor, bus, vid, _ = self._pick(VENDORS, _VENDOR_CUM)
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
        product = self._pick(DEFINITION_PRODUCTS, _DEFINITION_CUM)
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
        package = self._pick(self.store_packages, self.store_cum)
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

    def _pick(self, items: Sequence[T], cum_weights: Sequence[float]) -> T:
        """A weighted random item, or the heaviest one when making a ``hot`` update."""
        if self._hot:
            steps = [b - a for a, b in itertools.pairwise([0.0, *cum_weights])]
            return items[steps.index(max(steps))]
        return self.rng.choices(items, cum_weights=cum_weights)[0]

    def _payload(self, update_id: str, name: str) -> PayloadSource:
        size = self.rng.randint(64, 512)
        body = (update_id + name).encode()
        data = (body * (size // len(body) + 1))[:size]
        folder = self.payload_dir / f"{self.count // 1000:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{update_id}.{name}"
        path.write_bytes(data)
        return PayloadSource(name=name, path=path, sha256=None, size=None, piece_size=1_048_576)

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


def check(authored: AuthoredManifest) -> None:
    """Validate a synthetic manifest as the publisher will sign it (placeholder payload hashes).

    Raises:
        ManifestError: the generator made a manifest that breaks a schema rule.
    """
    payloads = tuple(
        PayloadFile(s.name, 0, "0" * 64, s.piece_size, "0" * 64, 0)
        for s in authored.payload_sources
    )
    validate_manifest(replace(authored.manifest, payloads=payloads), source=authored.source)


def _unique_names(rng: random.Random, count: int, sep: str, case: object) -> list[str]:
    names: dict[str, None] = {}
    while len(names) < count:
        parts = rng.sample(WORDS, rng.randint(2, 3))
        name = sep.join(case(p) for p in parts)  # type: ignore[operator]
        names[name] = None
    return list(names)


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
