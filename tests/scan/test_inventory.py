"""Inventory providers: the inventory TOML file, os-release, sysfs modalias, and the merge."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
from scan_helpers import V

from tidings.errors import ConfigError
from tidings.scan.inventory import (
    ARCHITECTURES,
    InventoryOverride,
    architecture_of,
    collect_inventory,
    devices_from_sysfs,
    load_inventory_file,
    os_from_os_release,
    pci_ids,
    usb_ids,
)
from tidings.scan.inventory_model import (
    HardwareDevice,
    InstalledProduct,
    Inventory,
    OsInfo,
    StorePackage,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "applicability.md"

FULL = r"""
[os]
product = "tidings-os-11"
version = "10.0.22631"
build = 22631
architecture = "x64"

[[products]]
product = "contoso-editor"
version = "2.1"

[[devices]]
instance_id = "PCI\\VEN_8086&DEV_46A6\\3&1"
hardware_ids = ["PCI\\VEN_8086&DEV_46A6&SUBSYS_00000000&REV_0C", "PCI\\VEN_8086&DEV_46A6"]
compatible_ids = ["PCI\\VEN_8086&CC_0300", "PCI\\CC_0300"]
driver_version = "30.0.101.1000"
driver_date = 2025-01-01

[[store]]
package = "Contoso.Notes"
version = "2.1.0.0"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the inventory file -----------------------------------------------------------------------


def test_inventory_file_gives_every_part(tmp_path: Path) -> None:
    override = load_inventory_file(write(tmp_path, FULL))
    assert override == InventoryOverride(
        os=OsInfo("tidings-os-11", V("10.0.22631"), 22631, "x64"),
        products=(InstalledProduct("contoso-editor", V("2.1")),),
        devices=(
            HardwareDevice(
                "PCI\\VEN_8086&DEV_46A6\\3&1",
                ("PCI\\VEN_8086&DEV_46A6&SUBSYS_00000000&REV_0C", "PCI\\VEN_8086&DEV_46A6"),
                ("PCI\\VEN_8086&CC_0300", "PCI\\CC_0300"),
                V("30.0.101.1000"),
                datetime.date(2025, 1, 1),
            ),
        ),
        store=(StorePackage("Contoso.Notes", V("2.1.0.0")),),
    )


def test_documented_example_loads(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    assert blocks
    for block in blocks:
        load_inventory_file(write(tmp_path, block))


def test_absent_parts_stay_none_and_empty_arrays_override(tmp_path: Path) -> None:
    override = load_inventory_file(write(tmp_path, "products = []\n"))
    assert override == InventoryOverride(products=())


BAD_FILES = [
    (
        '[os]\nproduct = "p"\nversion = "1"\nbuild = "x"\narchitecture = "x64"\n',
        'inventory.toml: os.build: expected an integer, got "x"',
    ),
    (
        '[os]\nproduct = "p"\nversion = "1"\nbuild = true\narchitecture = "x64"\n',
        "inventory.toml: os.build: expected an integer, got true",
    ),
    (
        '[os]\nproduct = "p"\nversion = "1"\nbuild = -1\narchitecture = "x64"\n',
        "inventory.toml: os.build: expected an integer from 0 to 4294967295, got -1",
    ),
    (
        '[os]\nproduct = "p"\nversion = "1.x"\nbuild = 1\narchitecture = "x64"\n',
        "inventory.toml: os.version: expected a dotted numeric version",
    ),
    (
        '[os]\nproduct = "p"\nversion = "1"\nbuild = 1\narchitecture = "mips"\n',
        'inventory.toml: os.architecture: expected one of x86, x64, arm64, got "mips"',
    ),
    (
        '[os]\nproduct = "p"\nversion = "1"\narchitecture = "x64"\n',
        "inventory.toml: os.build: missing",
    ),
    (
        '[os]\nproduct = "p"\nversion = "1"\nbuild = 1\narchitecture = "x64"\nbiuld = 2\n',
        "inventory.toml: os.biuld: unknown key",
    ),
    ("os = 3\n", "inventory.toml: os: expected a table, got 3"),
    ("osx = 3\n", "inventory.toml: osx: unknown key"),
    (
        '[[products]]\nproduct = "a b"\nversion = "1"\n',
        "inventory.toml: products[0].product: expected a name of letters",
    ),
    (
        '[[products]]\nproduct = "a"\nversion = "1"\n[[products]]\nproduct = "b"\n',
        "inventory.toml: products[1].version: missing",
    ),
    ("products = [1]\n", "inventory.toml: products[0]: expected a table, got 1"),
    ('products = "x"\n', "inventory.toml: products: expected an array"),
    (
        '[[devices]]\ninstance_id = "d"\nhardware_ids = ["A B"]\n',
        "inventory.toml: devices[0].hardware_ids[0]: expected a hardware ID",
    ),
    (
        '[[devices]]\ninstance_id = "d"\n',
        "inventory.toml: devices[0].hardware_ids: a device needs at least one",
    ),
    (
        '[[devices]]\ninstance_id = "d"\nhardware_ids = ["A"]\ndriver_date = "2025-01-01"\n',
        "inventory.toml: devices[0].driver_date: expected a date such as 2025-01-01",
    ),
    (
        '[[devices]]\ninstance_id = "d"\nhardware_ids = ["A"]\ndriver_version = 3\n',
        "inventory.toml: devices[0].driver_version: expected a string, got 3",
    ),
    ('[[store]]\npackage = "Contoso.Notes"\n', "inventory.toml: store[0].version: missing"),
    ("[os\n", "inventory.toml: not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_bad_inventory_file_names_file_field_and_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_inventory_file(write(tmp_path, text))
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_oversized_inventory_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "inventory.toml"
    path.write_bytes(b"#" * (1_048_576 + 1))
    with pytest.raises(ConfigError, match="larger than 1048576 bytes"):
        load_inventory_file(path)


def test_missing_and_non_utf8_inventory_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"inventory\.toml: cannot read"):
        load_inventory_file(tmp_path / "inventory.toml")
    (tmp_path / "inventory.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_inventory_file(tmp_path / "inventory.toml")


# --- os-release -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "product", "version", "build"),
    [
        ('ID=debian\nVERSION_ID="12"\n', "debian-12", "12", 0),
        ("ID=ubuntu\nVERSION_ID='22.04'\nBUILD_ID=20240101\n", "ubuntu-22.04", "22.4", 20240101),
        ("ID=arch\nBUILD_ID=rolling\n", "arch", "0", 0),
        ('# comment\nID="Fedora Linux"\nVERSION_ID=40\n', "fedora-linux-40", "40", 0),
        ("", "linux", "0", 0),
    ],
)
def test_os_release_parsing(
    tmp_path: Path, text: str, product: str, version: str, build: int
) -> None:
    path = tmp_path / "os-release"
    path.write_text(text, encoding="utf-8")
    info = os_from_os_release(path, machine="x86_64")
    assert (info.product, info.version, info.build) == (product, V(version), build)
    assert info.architecture == "x64"


def test_missing_os_release_gives_linux(tmp_path: Path) -> None:
    info = os_from_os_release(tmp_path / "nope", machine="aarch64")
    assert info == OsInfo("linux", V("0"), 0, "arm64")


@pytest.mark.parametrize(
    ("machine", "arch"),
    [
        ("x86_64", "x64"),
        ("AMD64", "x64"),
        ("aarch64", "arm64"),
        ("i686", "x86"),
        ("i386", "x86"),
        ("riscv64", "riscv64"),
    ],
)
def test_machine_architecture_mapping(machine: str, arch: str) -> None:
    assert architecture_of(machine) == arch


# --- sysfs modalias ---------------------------------------------------------------------------


def test_pci_modalias_gives_windows_style_ids() -> None:
    hardware, compatible = pci_ids(
        "pci:v00008086d000046A6sv00001028sd00000B1Abc03sc00i00\n", "0x0c\n"
    )
    assert hardware == (
        "PCI\\VEN_8086&DEV_46A6&SUBSYS_0B1A1028&REV_0C",
        "PCI\\VEN_8086&DEV_46A6&SUBSYS_0B1A1028",
        "PCI\\VEN_8086&DEV_46A6",
    )
    assert compatible == (
        "PCI\\VEN_8086&CC_030000",
        "PCI\\VEN_8086&CC_0300",
        "PCI\\CC_030000",
        "PCI\\CC_0300",
    )


def test_pci_without_revision_skips_the_rev_id() -> None:
    hardware, _ = pci_ids("pci:v00008086d000046a6sv00000000sd00000000bc03sc00i00", None)
    assert hardware == (
        "PCI\\VEN_8086&DEV_46A6&SUBSYS_00000000",
        "PCI\\VEN_8086&DEV_46A6",
    )


def test_usb_modalias_gives_windows_style_ids() -> None:
    hardware, compatible = usb_ids("usb:v046DpC52Bd1211dc00dsc00dp00ic03isc01ip02in00")
    assert hardware == ("USB\\VID_046D&PID_C52B&REV_1211", "USB\\VID_046D&PID_C52B")
    assert compatible == (
        "USB\\Class_03&SubClass_01&Prot_02",
        "USB\\Class_03&SubClass_01",
        "USB\\Class_03",
    )


@pytest.mark.parametrize("text", ["", "pci:garbage", "usb:v046D", "acpi:PNP0A08:"])
def test_malformed_modalias_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        pci_ids(text, None)
    with pytest.raises(ValueError):
        usb_ids(text)


def fake_sysfs(root: Path) -> Path:
    """A /sys/bus look-alike: real directories and files in the kernel's layout."""
    bus = root / "bus"
    gpu = bus / "pci" / "devices" / "0000:00:02.0"
    gpu.mkdir(parents=True)
    (gpu / "modalias").write_text("pci:v00008086d000046A6sv00000000sd00000000bc03sc00i00\n")
    (gpu / "revision").write_text("0x0c\n")
    bridge = bus / "pci" / "devices" / "0000:00:00.0"  # no revision file
    bridge.mkdir()
    (bridge / "modalias").write_text("pci:v00008086d00004621sv00000000sd00000000bc06sc00i00\n")
    (bus / "pci" / "devices" / "0000:00:1f.0").mkdir()  # no modalias: skipped
    huge = bus / "pci" / "devices" / "0000:00:1f.3"
    huge.mkdir()
    (huge / "modalias").write_text("pci:" + "0" * 5000)  # over 4 KiB: skipped
    bad = bus / "pci" / "devices" / "0000:00:1f.4"
    bad.mkdir()
    (bad / "modalias").write_bytes(b"\xff\xfe")  # not text: skipped
    usb = bus / "usb" / "devices"
    (usb / "1-1").mkdir(parents=True)  # a USB device node has no modalias
    (usb / "1-1:1.0").mkdir()
    (usb / "1-1:1.0" / "modalias").write_text("usb:v046DpC52Bd1211dc00dsc00dp00ic03isc01ip02in00\n")
    return bus


def test_devices_from_a_fake_sysfs_tree(tmp_path: Path) -> None:
    devices = devices_from_sysfs(fake_sysfs(tmp_path))
    assert [d.instance_id for d in devices] == [
        "PCI\\VEN_8086&DEV_4621\\0000:00:00.0",
        "PCI\\VEN_8086&DEV_46A6\\0000:00:02.0",
        "USB\\VID_046D&PID_C52B\\1-1:1.0",
    ]
    gpu = devices[1]
    assert gpu.hardware_ids[0] == "PCI\\VEN_8086&DEV_46A6&SUBSYS_00000000&REV_0C"
    assert gpu.driver_version is None and gpu.driver_date is None
    assert devices[0].hardware_ids[0] == "PCI\\VEN_8086&DEV_4621&SUBSYS_00000000"


def test_missing_sysfs_gives_no_devices(tmp_path: Path) -> None:
    assert devices_from_sysfs(tmp_path / "nothing") == ()


# --- collect_inventory ------------------------------------------------------------------------


def test_collect_without_override_uses_the_providers(tmp_path: Path) -> None:
    os_release = tmp_path / "os-release"
    os_release.write_text("ID=debian\nVERSION_ID=12\n")
    inv = collect_inventory(
        override_file=None,
        installed_updates=frozenset({"u"}),
        sysfs_root=fake_sysfs(tmp_path),
        os_release=os_release,
        products_provider=lambda: (InstalledProduct("contoso-editor", V("1")),),
    )
    assert inv.os is not None and inv.os.product == "debian-12"
    assert len(inv.devices) == 3
    assert inv.products == (InstalledProduct("contoso-editor", V("1")),)
    assert inv.store == () and inv.installed_updates == frozenset({"u"})


def test_override_parts_replace_only_those_parts(tmp_path: Path) -> None:
    os_release = tmp_path / "os-release"
    os_release.write_text("ID=debian\nVERSION_ID=12\n")
    override = write(tmp_path, '[[store]]\npackage = "Contoso.Notes"\nversion = "2.1"\n')
    inv = collect_inventory(
        override_file=override,
        installed_updates=frozenset(),
        sysfs_root=fake_sysfs(tmp_path),
        os_release=os_release,
        store_provider=lambda: (StorePackage("Other", V("1")),),
    )
    assert inv.store == (StorePackage("Contoso.Notes", V("2.1")),)
    assert inv.os is not None and inv.os.product == "debian-12"
    assert len(inv.devices) == 3


def test_full_override_needs_nothing_from_the_machine(tmp_path: Path) -> None:
    inv = collect_inventory(
        override_file=write(tmp_path, FULL),
        installed_updates=frozenset(),
        sysfs_root=tmp_path / "absent",
        os_release=tmp_path / "absent",
    )
    assert inv.os == OsInfo("tidings-os-11", V("10.0.22631"), 22631, "x64")
    assert [d.instance_id for d in inv.devices] == ["PCI\\VEN_8086&DEV_46A6\\3&1"]


def test_bad_override_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"inventory\.toml: os: expected a table"):
        collect_inventory(override_file=write(tmp_path, "os = 1\n"), installed_updates=frozenset())


def test_real_providers_on_this_machine() -> None:
    inv = collect_inventory(override_file=None, installed_updates=frozenset())
    assert isinstance(inv, Inventory)
    assert isinstance(inv.os, OsInfo)
    assert inv.os.architecture in ARCHITECTURES
    assert isinstance(inv.os.build, int) and inv.os.product
    for d in inv.devices:
        assert isinstance(d, HardwareDevice) and d.hardware_ids
        assert all(
            isinstance(i, str) and " " not in i for i in (*d.hardware_ids, *d.compatible_ids)
        )
