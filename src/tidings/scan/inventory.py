"""Inventory providers: what this machine is, read from Linux and from an inventory TOML file.

The real providers read ``/etc/os-release`` and the PCI/USB ``modalias`` files under
``/sys/bus`` and turn them into Windows-style facts (``OsInfo``, hardware and compatible IDs),
so that the same manifests serve real and simulated devices. An inventory TOML file
(``load_inventory_file``) overrides whole parts (``os``, ``products``, ``devices``, ``store``)
of what the machine reports: that is how tests and demos play a Windows-like device.

Invariants: every read is bounded (a sysfs file at most 4 KiB, the TOML file at most 1 MiB);
missing or unreadable sysfs files are skipped, never fatal; a bad inventory file raises
``ConfigError`` with one line naming the file, the field and the problem. The format is
documented in docs/applicability.md.
"""

from __future__ import annotations

import datetime
import json
import platform
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from tidings.errors import ConfigError
from tidings.fsutil import TooLargeError, read_bounded
from tidings.manifest import Version
from tidings.scan.inventory_model import (
    HardwareDevice,
    InstalledProduct,
    Inventory,
    OsInfo,
    StorePackage,
)

MAX_INVENTORY_FILE_BYTES = 1_048_576  # bytes
MAX_SYSFS_FILE_BYTES = 4096  # bytes
MAX_OS_RELEASE_BYTES = 65_536  # bytes
MAX_ITEMS = 10_000  # per array in the inventory file, and devices per bus
MAX_TEXT = 200  # characters per string in the inventory file
ARCHITECTURES = ("x86", "x64", "arm64")
_MACHINE_ARCH = {
    "x86_64": "x64",
    "amd64": "x64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "x86",
    "i486": "x86",
    "i586": "x86",
    "i686": "x86",
    "x86": "x86",
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
_HARDWARE_ID = re.compile(r"[!-~]{1,200}")

ProductsProvider = Callable[[], tuple[InstalledProduct, ...]]
StoreProvider = Callable[[], tuple[StorePackage, ...]]


@dataclass(frozen=True)
class InventoryOverride:
    """Parts of an inventory given by a file; ``None`` means "ask the real provider"."""

    os: OsInfo | None = None
    products: tuple[InstalledProduct, ...] | None = None
    devices: tuple[HardwareDevice, ...] | None = None
    store: tuple[StorePackage, ...] | None = None


# --- the inventory TOML file ------------------------------------------------------------------


class _Reader:
    """Typed, bounded fields from one table of the file; errors name the dotted field path."""

    def __init__(self, source: str, table: Mapping[str, Any], where: str, fields: set[str]):
        self.source, self.table, self.where = source, table, where
        for key in table:
            if key not in fields:
                self.fail(key, f"unknown key (expected one of {', '.join(sorted(fields))})")

    def fail(self, key: str, problem: str) -> NoReturn:
        path = f"{self.where}.{key}" if self.where else key
        raise ConfigError(f"{self.source}: {path}: {problem}")

    def text(self, key: str, pattern: re.Pattern[str] | None = None, what: str = "") -> str:
        value = self.table.get(key)
        if value is None:
            self.fail(key, "missing")
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {_shown(value)}")
        if not 1 <= len(value) <= MAX_TEXT or not value.isprintable():
            self.fail(key, f"expected 1-{MAX_TEXT} printable characters, got {_shown(value)}")
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(key, f"expected {what}, got {_shown(value)}")
        return value

    def version(self, key: str, *, required: bool = True) -> Version | None:
        if key not in self.table and not required:
            return None
        text = self.text(key)
        try:
            return Version.parse(text)
        except ValueError as e:
            self.fail(key, str(e))

    def integer(self, key: str, low: int, high: int) -> int:
        value = self.table.get(key)
        if value is None:
            self.fail(key, "missing")
        if type(value) is not int:
            self.fail(key, f"expected an integer, got {_shown(value)}")
        if not low <= value <= high:
            self.fail(key, f"expected an integer from {low} to {high}, got {value}")
        return value

    def date(self, key: str) -> datetime.date | None:
        value = self.table.get(key)
        if value is None:
            return None
        if type(value) is not datetime.date:
            self.fail(key, f"expected a date such as 2025-01-01, got {_shown(value)}")
        return value

    def ids(self, key: str) -> tuple[str, ...]:
        value = self.table.get(key, [])
        if not isinstance(value, list) or len(value) > MAX_ITEMS:
            self.fail(key, f"expected an array of at most {MAX_ITEMS} strings")
        for index, item in enumerate(value):
            if not isinstance(item, str) or not _HARDWARE_ID.fullmatch(item):
                self.fail(
                    f"{key}[{index}]",
                    f"expected a hardware ID (1-200 printable ASCII characters, no spaces),"
                    f" got {_shown(item)}",
                )
        return tuple(value)

    def tables(self, key: str) -> list[tuple[str, Mapping[str, Any]]]:
        value = self.table[key]
        if not isinstance(value, list) or len(value) > MAX_ITEMS:
            self.fail(key, f"expected an array of at most {MAX_ITEMS} tables")
        found: list[tuple[str, Mapping[str, Any]]] = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                self.fail(f"{key}[{index}]", f"expected a table, got {_shown(item)}")
            found.append((f"{key}[{index}]", item))
        return found


def _shown(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value[:60]) + ("..." if len(value) > 60 else "")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | datetime.date | datetime.time):
        return str(value)
    return "an array" if isinstance(value, list) else "a table"


def _read_os(source: str, table: Mapping[str, Any]) -> OsInfo:
    r = _Reader(source, table, "os", {"product", "version", "build", "architecture"})
    product = r.text("product", _NAME, "a product name such as tidings-os-11")
    version = r.version("version")
    assert version is not None
    build = r.integer("build", 0, 2**32 - 1)
    arch = r.text("architecture")
    if arch not in ARCHITECTURES:
        r.fail("architecture", f"expected one of {', '.join(ARCHITECTURES)}, got {_shown(arch)}")
    return OsInfo(product=product, version=version, build=build, architecture=arch)


def _read_device(source: str, where: str, table: Mapping[str, Any]) -> HardwareDevice:
    fields = {"instance_id", "hardware_ids", "compatible_ids", "driver_version", "driver_date"}
    r = _Reader(source, table, where, fields)
    instance_id = r.text("instance_id")
    hardware_ids, compatible_ids = r.ids("hardware_ids"), r.ids("compatible_ids")
    if not hardware_ids and not compatible_ids:
        r.fail("hardware_ids", "a device needs at least one hardware or compatible ID")
    return HardwareDevice(
        instance_id=instance_id,
        hardware_ids=hardware_ids,
        compatible_ids=compatible_ids,
        driver_version=r.version("driver_version", required=False),
        driver_date=r.date("driver_date"),
    )


def _read_named_versions(
    source: str, where: str, table: Mapping[str, Any], name_key: str
) -> tuple[str, Version]:
    r = _Reader(source, table, where, {name_key, "version"})
    name = r.text(name_key, _NAME, "a name of letters, digits and . _ + -")
    version = r.version("version")
    assert version is not None
    return name, version


def load_inventory_file(path: Path) -> InventoryOverride:
    """Read an inventory TOML file (docs/applicability.md, "Inventory file").

    Args:
        path: the file; at most 1 MiB of UTF-8 TOML.

    Returns:
        The parts the file gives; the parts it leaves out are ``None``.

    Raises:
        ConfigError: unreadable, too large, not TOML, an unknown key or a bad value; the
            message names the file, the field and the problem on one line.
    """
    source = path.name
    try:
        raw = read_bounded(path, MAX_INVENTORY_FILE_BYTES)
    except OSError as e:
        raise ConfigError(f"{source}: cannot read the inventory file ({e.strerror})") from None
    except TooLargeError:
        raise ConfigError(f"{source}: larger than {MAX_INVENTORY_FILE_BYTES} bytes") from None
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML ({e})") from None
    top = _Reader(source, data, "", {"os", "products", "devices", "store"})
    os_info = None
    if "os" in data:
        if not isinstance(data["os"], dict):
            top.fail("os", f"expected a table, got {_shown(data['os'])}")
        os_info = _read_os(source, data["os"])
    products = devices = store = None
    if "products" in data:
        products = tuple(
            InstalledProduct(*_read_named_versions(source, where, t, "product"))
            for where, t in top.tables("products")
        )
    if "devices" in data:
        devices = tuple(_read_device(source, where, t) for where, t in top.tables("devices"))
    if "store" in data:
        store = tuple(
            StorePackage(*_read_named_versions(source, where, t, "package"))
            for where, t in top.tables("store")
        )
    return InventoryOverride(os=os_info, products=products, devices=devices, store=store)


# --- Linux providers --------------------------------------------------------------------------


def _read_small(path: Path, limit: int) -> str | None:
    """The text of a small file, or None if missing, unreadable, too large or not text."""
    try:
        with path.open("rb") as f:
            raw = f.read(limit + 1)
        if len(raw) > limit:
            return None
        return raw.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _os_release_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        fields[key.strip()] = value.replace('\\"', '"').replace("\\\\", "\\")
    return fields


def _loose_version(text: str) -> Version:
    parts = [min(int(p), 2**32 - 1) for p in re.findall(r"[0-9]+", text)[:6]]
    return Version(tuple(parts) or (0,))


def architecture_of(machine: str) -> str:
    """``platform.machine()`` in manifest terms: x64, arm64 or x86; others lower-cased as is."""
    return _MACHINE_ARCH.get(machine.lower(), machine.lower() or "unknown")


def os_from_os_release(path: Path = Path("/etc/os-release"), machine: str | None = None) -> OsInfo:
    """The OS from an os-release(5) file.

    ``product`` is ``ID-VERSION_ID`` lower-cased (``debian-12``; ``ID`` alone without a
    ``VERSION_ID``; ``ID`` defaults to ``linux`` as os-release(5) says); ``version`` the digits
    of ``VERSION_ID`` (``22.04`` -> ``22.4``; none -> ``0``); ``build`` a numeric ``BUILD_ID``,
    else 0. A missing or unreadable file gives ``linux`` version 0.
    """
    fields = _os_release_fields(_read_small(path, MAX_OS_RELEASE_BYTES) or "")
    name = fields.get("ID") or "linux"
    version_id = fields.get("VERSION_ID", "")
    product = f"{name}-{version_id}" if version_id else name
    product = re.sub(r"[^a-z0-9._+-]", "-", product.lower()).lstrip("._+-")[:128] or "linux"
    build_id = fields.get("BUILD_ID", "")
    build = min(int(build_id), 2**32 - 1) if build_id.isascii() and build_id.isdigit() else 0
    return OsInfo(
        product=product,
        version=_loose_version(version_id),
        build=build,
        architecture=architecture_of(platform.machine() if machine is None else machine),
    )


_PCI_MODALIAS = re.compile(
    r"pci:v([0-9A-F]{8})d([0-9A-F]{8})sv([0-9A-F]{8})sd([0-9A-F]{8})"
    r"bc([0-9A-F]{2})sc([0-9A-F]{2})i([0-9A-F]{2})",
    re.IGNORECASE,
)
_USB_MODALIAS = re.compile(
    r"usb:v([0-9A-F]{4})p([0-9A-F]{4})d([0-9A-F]{4})dc([0-9A-F]{2})dsc([0-9A-F]{2})"
    r"dp([0-9A-F]{2})ic([0-9A-F]{2})isc([0-9A-F]{2})ip([0-9A-F]{2})",
    re.IGNORECASE,
)


def pci_ids(modalias: str, revision: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Windows-style (hardware IDs, compatible IDs) of a PCI function, most specific first.

    ``revision`` is the sysfs ``revision`` file's text (``0x0c``), or None.

    Raises:
        ValueError: ``modalias`` is not a PCI modalias.
    """
    match = _PCI_MODALIAS.fullmatch(modalias.strip())
    if match is None:
        raise ValueError("not a PCI modalias")
    ven, dev, sv, sd, bc, sc, pi = (g.upper() for g in match.groups())
    base = f"PCI\\VEN_{ven[-4:]}&DEV_{dev[-4:]}"
    subsys = f"{base}&SUBSYS_{sd[-4:]}{sv[-4:]}"
    hardware = [subsys, base]
    rev = _hex_byte(revision)
    if rev is not None:
        hardware.insert(0, f"{subsys}&REV_{rev}")
    compatible = (
        f"PCI\\VEN_{ven[-4:]}&CC_{bc}{sc}{pi}",
        f"PCI\\VEN_{ven[-4:]}&CC_{bc}{sc}",
        f"PCI\\CC_{bc}{sc}{pi}",
        f"PCI\\CC_{bc}{sc}",
    )
    return tuple(hardware), compatible


def _hex_byte(text: str | None) -> str | None:
    if text is None:
        return None
    match = re.fullmatch(r"(?:0x)?([0-9a-fA-F]{1,2})", text.strip())
    return None if match is None else match.group(1).upper().zfill(2)


def usb_ids(modalias: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Windows-style (hardware IDs, compatible IDs) of a USB interface, most specific first.

    The class triple comes from the interface (``ic``/``isc``/``ip``), as Windows does for the
    interfaces of a composite device; sysfs has a modalias only on interfaces.

    Raises:
        ValueError: ``modalias`` is not a USB interface modalias.
    """
    match = _USB_MODALIAS.match(modalias.strip())
    if match is None:
        raise ValueError("not a USB modalias")
    vid, pid, rev, _, _, _, ic, isc, ip = (g.upper() for g in match.groups())
    base = f"USB\\VID_{vid}&PID_{pid}"
    hardware = (f"{base}&REV_{rev}", base)
    compatible = (
        f"USB\\Class_{ic}&SubClass_{isc}&Prot_{ip}",
        f"USB\\Class_{ic}&SubClass_{isc}",
        f"USB\\Class_{ic}",
    )
    return hardware, compatible


def _device_from_sysfs(bus: str, path: Path) -> HardwareDevice | None:
    modalias = _read_small(path / "modalias", MAX_SYSFS_FILE_BYTES)
    if modalias is None:
        return None
    try:
        if bus == "pci":
            revision = _read_small(path / "revision", MAX_SYSFS_FILE_BYTES)
            hardware, compatible = pci_ids(modalias, revision)
        else:
            hardware, compatible = usb_ids(modalias)
    except ValueError:
        return None
    # Windows-like instance id: enumerator and device ID, then the (stable) sysfs name.
    return HardwareDevice(
        instance_id=f"{hardware[-1]}\\{path.name}",
        hardware_ids=hardware,
        compatible_ids=compatible,
    )


def devices_from_sysfs(root: Path = Path("/sys/bus")) -> tuple[HardwareDevice, ...]:
    """PCI functions and USB interfaces under ``root`` (``<root>/{pci,usb}/devices/*``).

    Devices without a readable, well-formed ``modalias`` are skipped; Linux has no driver
    version in the Windows sense, so ``driver_version`` and ``driver_date`` stay None.
    Sorted by instance id; at most ``MAX_ITEMS`` per bus.
    """
    found: list[HardwareDevice] = []
    for bus in ("pci", "usb"):
        try:
            entries = sorted((root / bus / "devices").iterdir())[:MAX_ITEMS]
        except OSError:
            continue
        for entry in entries:
            device = _device_from_sysfs(bus, entry)
            if device is not None:
                found.append(device)
    return tuple(sorted(found, key=lambda d: d.instance_id))


def collect_inventory(
    *,
    override_file: Path | None,
    installed_updates: frozenset[str],
    sysfs_root: Path = Path("/sys/bus"),
    os_release: Path = Path("/etc/os-release"),
    products_provider: ProductsProvider | None = None,
    store_provider: StoreProvider | None = None,
) -> Inventory:
    """This device's inventory: the real providers, with parts replaced by an override file.

    On Linux there is no product or store registry: without a provider (or the file) those
    parts are empty. Parts the override file gives are not read from the machine at all.

    Raises:
        ConfigError: the override file is bad (see ``load_inventory_file``).
    """
    override = InventoryOverride() if override_file is None else load_inventory_file(override_file)
    os_info = override.os if override.os is not None else os_from_os_release(os_release)
    products = override.products
    if products is None:
        products = products_provider() if products_provider is not None else ()
    devices = override.devices if override.devices is not None else devices_from_sysfs(sysfs_root)
    store = override.store
    if store is None:
        store = store_provider() if store_provider is not None else ()
    return Inventory(
        os=os_info,
        products=products,
        devices=devices,
        store=store,
        installed_updates=installed_updates,
    )
