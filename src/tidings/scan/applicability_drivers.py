"""Driver matching and ranking, modelled on Windows Plug and Play driver selection (pure).

A device lists its IDs most specific first: hardware IDs, then compatible IDs. A driver
matches a device when one of the driver's IDs equals one of the device's IDs (compared
case-insensitively). The match's rank is the tuple ``(device_side, driver_side, position)``,
lower is better, as in Windows' rank ranges 0x0000-0x3FFF:

- ``device_side``: 0 when the device's *hardware* ID matched, 1 for a compatible ID;
- ``driver_side``: 0 when the ID is in the driver's ``hardware_ids``, 1 for ``compatible_ids``;
- ``position``: the ID's index in the device's combined list (hardware IDs first).

Among drivers that a device needs, the best is the lowest rank, then the newest version, then
the newest date (then the lowest id, only so that the choice is deterministic). A device
*needs* a driver when it has no driver or an older version (same version = installed).

Drivers are indexed by lower-cased ID, so matching costs O(device IDs + matches).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tidings.manifest import DriverRule, UpdateManifest
from tidings.scan.inventory_model import HardwareDevice

Rank = tuple[int, int, int]


@dataclass(frozen=True)
class DeviceMatch:
    """One device a driver matches: its index in ``Inventory.devices`` and the match's rank."""

    device: int
    rank: Rank


@dataclass(frozen=True)
class DriverFit:
    """How one driver fits this device inventory."""

    matches: tuple[DeviceMatch, ...]  # every matching device, inventory order
    needed_by: tuple[DeviceMatch, ...]  # matching devices with no driver or an older one

    @property
    def installed(self) -> bool:
        """Every device it matches already has this driver version or a newer one."""
        return bool(self.matches) and not self.needed_by


def _index(drivers: Iterable[UpdateManifest]) -> dict[str, list[tuple[str, int]]]:
    by_id: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for m in drivers:
        rule = m.applicability.driver
        if rule is None:
            continue
        for side, ids in enumerate((rule.hardware_ids, rule.compatible_ids)):
            for hardware_id in ids:
                by_id[hardware_id.lower()].append((m.id, side))
    return by_id


def _device_needs(device: HardwareDevice, rule: DriverRule) -> bool:
    return device.driver_version is None or device.driver_version < rule.version


def fit_drivers(
    drivers: Sequence[UpdateManifest], devices: Sequence[HardwareDevice]
) -> dict[str, DriverFit]:
    """Match every driver manifest against every device.

    Returns:
        A ``DriverFit`` for every driver in ``drivers`` (empty when it matches no device).
    """
    index = _index(drivers)
    rules = {m.id: m.applicability.driver for m in drivers}
    matches: dict[str, list[DeviceMatch]] = defaultdict(list)
    for number, device in enumerate(devices):
        best: dict[str, Rank] = {}
        combined = (*device.hardware_ids, *device.compatible_ids)
        for position, device_id in enumerate(combined):
            device_side = 0 if position < len(device.hardware_ids) else 1
            for driver_id, driver_side in index.get(device_id.lower(), ()):
                rank = (device_side, driver_side, position)
                if driver_id not in best or rank < best[driver_id]:
                    best[driver_id] = rank
        for driver_id, rank in best.items():
            matches[driver_id].append(DeviceMatch(number, rank))
    fits = {}
    for m in drivers:
        rule = rules[m.id]
        found = tuple(matches.get(m.id, ()))
        needed = tuple(
            f for f in found if rule is not None and _device_needs(devices[f.device], rule)
        )
        fits[m.id] = DriverFit(found, needed)
    return fits


def _better(a: tuple[Rank, DriverRule, str], b: tuple[Rank, DriverRule, str]) -> bool:
    (rank_a, rule_a, id_a), (rank_b, rule_b, id_b) = a, b
    if rank_a != rank_b:
        return rank_a < rank_b
    if rule_a.version != rule_b.version:
        return rule_a.version > rule_b.version
    if rule_a.date != rule_b.date:
        return rule_a.date > rule_b.date
    return id_a < id_b


def best_per_device(
    fits: Mapping[str, DriverFit], offered: Mapping[str, UpdateManifest]
) -> dict[str, DeviceMatch]:
    """Choose at most one driver per device among the ``offered`` drivers that it needs.

    Returns:
        For each chosen driver, the first device (in inventory order) it is the best for.
    """
    contenders: dict[int, list[tuple[Rank, DriverRule, str]]] = defaultdict(list)
    for driver_id, m in offered.items():
        rule = m.applicability.driver
        if rule is None:
            continue
        for match in fits[driver_id].needed_by:
            contenders[match.device].append((match.rank, rule, driver_id))
    chosen: dict[str, DeviceMatch] = {}
    for device in sorted(contenders):
        candidates = contenders[device]
        winner = candidates[0]
        for candidate in candidates[1:]:
            if _better(candidate, winner):
                winner = candidate
        rank, _, driver_id = winner
        chosen.setdefault(driver_id, DeviceMatch(device, rank))
    return chosen
