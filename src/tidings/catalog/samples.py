"""A small sample catalog: one update of each kind, as TOML manifests with generated payloads.

Used by ``tidings demo`` and by tests; the manifests are what a real publisher would write.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from tidings.fsutil import atomic_write

SAMPLES: dict[str, str] = {
    "os-cumulative.toml": """
schema = 1
id = "3f0a1c52-6a77-4c4e-9a53-2f1e0b3c4d5e"
revision = 1
kind = "os"
title = "2026-11 Cumulative Update for Tidings OS 11 (KB5031354)"
description = "Security and quality fixes for Tidings OS 11."
classification = "security"
severity = "critical"
kb = ["KB5031354"]
cves = ["CVE-2026-21001", "CVE-2026-21002"]
release_date = 2026-11-10
products = ["tidings-os-11"]
categories = ["cumulative"]
[applicability.os]
product = "tidings-os-11"
architectures = ["x64", "arm64"]
min_build = 22000
max_build = 22631
[install]
reboot = "always"
can_uninstall = true
[[payload]]
path = "payloads/kb5031354-x64.bin"
""",
    "app-editor.toml": """
schema = 1
id = "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
revision = 1
kind = "app"
title = "Contoso Editor 2.4.1"
classification = "update"
severity = "moderate"
release_date = 2026-11-02
products = ["contoso-editor"]
[[applicability.installed]]
product = "contoso-editor"
min_version = "2.0"
max_version = "2.4.1"
[install]
reboot = "never"
[eula]
text = "Contoso Editor licence: use it kindly."
[[payload]]
path = "payloads/contoso-editor-2.4.1.pkg"
""",
    "driver-display.toml": """
schema = 1
id = "5b6c7d8e-9fa0-4b1c-8d2e-3f4a5b6c7d8e"
revision = 1
kind = "driver"
title = "Intel(R) Graphics Driver 31.0.101.4502"
classification = "driver"
release_date = 2026-09-01
[applicability.driver]
hardware_ids = ["PCI\\\\VEN_8086&DEV_46A6"]
compatible_ids = ["PCI\\\\VEN_8086&CC_0300"]
version = "31.0.101.4502"
date = 2026-09-01
class = "Display"
vendor = "Intel"
[install]
reboot = "can-request"
[[payload]]
path = "payloads/igfx-31.0.101.4502.cab"
""",
    "definitions.toml": """
schema = 1
id = "0d1e2f3a-4b5c-4d6e-8f7a-8b9c0d1e2f3a"
revision = 1
kind = "definitions"
title = "Security Intelligence Update 1.421.88.0"
classification = "definitions"
release_date = 2026-11-28
products = ["tidings-defender"]
[install]
reboot = "never"
impact = "minor"
[[payload]]
path = "payloads/defs-1.421.88.0.vdm"
piece_size = 16384
""",
    "store-notes.toml": """
schema = 1
id = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
revision = 1
kind = "store"
title = "Contoso Notes 2.3.0.0"
classification = "update"
release_date = 2026-11-20
[applicability.store]
package = "Contoso.Notes"
version = "2.3.0.0"
[[payload]]
path = "payloads/contoso-notes-2.3.0.0.msix"
""",
}

PAYLOAD_SIZES: dict[str, int] = {  # bytes; small, but several pieces each
    "kb5031354-x64.bin": 3 * 1_048_576 + 4321,
    "contoso-editor-2.4.1.pkg": 700_000,
    "igfx-31.0.101.4502.cab": 1_500_000,
    "defs-1.421.88.0.vdm": 100_000,
    "contoso-notes-2.3.0.0.msix": 400_000,
}


@functools.lru_cache(maxsize=16)
def generated_bytes(name: str, size: int) -> bytes:
    """Deterministic pseudo-random content for a sample payload."""
    out = bytearray()
    counter = 0
    seed = name.encode()
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


def write_samples(dest: Path) -> list[Path]:
    """Write the sample manifests and their payloads under ``dest``; return the manifests."""
    for name, size in PAYLOAD_SIZES.items():
        atomic_write(dest / "payloads" / name, generated_bytes(name, size), sync_dir=False)
    paths = []
    for name, text in SAMPLES.items():
        path = dest / name
        atomic_write(path, text.lstrip().encode(), sync_dir=False)
        paths.append(path)
    return paths
