"""Sample device inventories for ``tidings demo`` and tests: three simulated devices.

Each is an ``inventory.toml`` (docs/applicability.md) written into an enrolled device's state
directory, where it overrides the real inventory providers.
"""

from __future__ import annotations

SAMPLE_DEVICES: dict[str, str] = {
    # A current x64 desktop: gets the OS update, the app update, the driver, definitions, store.
    "desktop-x64": """
[os]
product = "tidings-os-11"
version = "10.0.22631"
build = 22631
architecture = "x64"

[[products]]
product = "contoso-editor"
version = "2.1"

[[products]]
product = "tidings-defender"
version = "1.0"

[[devices]]
instance_id = "PCI\\\\VEN_8086&DEV_46A6\\\\3&11583659&0&10"
hardware_ids = ["PCI\\\\VEN_8086&DEV_46A6&SUBSYS_00000000", "PCI\\\\VEN_8086&DEV_46A6"]
compatible_ids = ["PCI\\\\VEN_8086&CC_0300", "PCI\\\\CC_0300"]
driver_version = "30.0.101.1000"
driver_date = 2025-01-01

[[store]]
package = "Contoso.Notes"
version = "2.1.0.0"
""",
    # An arm64 laptop on an older build with no Intel graphics and no editor.
    "laptop-arm64": """
[os]
product = "tidings-os-11"
version = "10.0.22000"
build = 22000
architecture = "arm64"

[[products]]
product = "tidings-defender"
version = "1.0"

[[devices]]
instance_id = "USB\\\\VID_046D&PID_C52B\\\\5&1"
hardware_ids = ["USB\\\\VID_046D&PID_C52B"]
compatible_ids = ["USB\\\\Class_03"]
""",
    # A kiosk on another OS product, with the store app already current: nothing to do.
    "kiosk": """
[os]
product = "tidings-os-10"
version = "10.0.19045"
build = 19045
architecture = "x64"

[[store]]
package = "Contoso.Notes"
version = "2.3.0.0"
""",
}
