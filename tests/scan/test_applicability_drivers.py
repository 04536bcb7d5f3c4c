"""Driver ranking and selection: one assigned driver per device, others optional."""

from __future__ import annotations

from scan_helpers import device, driver, inventory, manifest, os_rule, uid

from tidings.manifest import UpdateManifest
from tidings.scan.applicability import ApplicabilityResult, Evaluated, evaluate
from tidings.scan.inventory_model import HardwareDevice

HW_SPECIFIC = "PCI\\VEN_8086&DEV_46A6&SUBSYS_00000000&REV_0C"
HW_GENERIC = "PCI\\VEN_8086&DEV_46A6"
CC_VENDOR = "PCI\\VEN_8086&CC_0300"
CC_GENERIC = "PCI\\CC_0300"
GPU = device("PCI\\VEN_8086&DEV_46A6\\3&1", (HW_SPECIFIC, HW_GENERIC), (CC_VENDOR, CC_GENERIC))


def run(drivers: list[UpdateManifest], *devices: HardwareDevice) -> ApplicabilityResult:
    return evaluate(drivers, inventory(devices=devices or (GPU,)))


def verdict(result: ApplicabilityResult, n: int) -> Evaluated:
    found = result.get(uid(n))
    assert found is not None
    return found


def assigned(result: ApplicabilityResult) -> list[tuple[str, str | None]]:
    return [(e.update_id, e.device) for e in result.updates if e.is_assigned]


def test_hardware_id_match_beats_a_newer_compatible_id_match() -> None:
    by_hwid = driver(1, "1.0", hardware_ids=(HW_GENERIC,))
    by_compat = driver(2, "9.0", "2027-01-01", compatible_ids=(CC_VENDOR,))
    result = run([by_compat, by_hwid])
    assert assigned(result) == [(uid(1), GPU.instance_id)]
    newer = verdict(result, 2)
    assert newer.is_applicable and newer.browse_only and not newer.is_assigned
    assert newer.device is None


def test_earlier_position_in_the_device_list_beats_later() -> None:
    specific = driver(1, "1.0", hardware_ids=(HW_SPECIFIC,))
    generic = driver(2, "5.0", hardware_ids=(HW_GENERIC,))
    result = run([generic, specific])
    assert assigned(result) == [(uid(1), GPU.instance_id)]
    assert verdict(result, 1).match_rank == (0, 0, 0)
    assert verdict(result, 2).match_rank == (0, 0, 1)


def test_earlier_compatible_id_beats_later_compatible_id() -> None:
    vendor_class = driver(1, "1.0", compatible_ids=(CC_VENDOR,))
    any_class = driver(2, "5.0", compatible_ids=(CC_GENERIC,))
    assert assigned(run([any_class, vendor_class])) == [(uid(1), GPU.instance_id)]


def test_device_hardware_id_listed_as_driver_compatible_id_beats_device_compatible_id() -> None:
    # Windows rank 0x1000 (device HWID ~ INF compatible ID) beats 0x2000 (device CID ~ INF HWID).
    a = driver(1, "1.0", compatible_ids=(HW_GENERIC,))
    b = driver(2, "2.0", hardware_ids=(CC_VENDOR,))
    result = run([a, b])
    assert assigned(result) == [(uid(1), GPU.instance_id)]
    assert verdict(result, 1).match_rank == (0, 1, 1)
    assert verdict(result, 2).match_rank == (1, 0, 2)


def test_ids_compare_case_insensitively() -> None:
    d = driver(1, hardware_ids=(HW_GENERIC.lower(),))
    assert assigned(run([d])) == [(uid(1), GPU.instance_id)]


def test_newer_version_wins_among_equal_rank() -> None:
    old = driver(1, "30.0.1", "2027-06-01", hardware_ids=(HW_GENERIC,))
    new = driver(2, "31.0", "2026-01-01", hardware_ids=(HW_GENERIC,))
    result = run([old, new])
    assert assigned(result) == [(uid(2), GPU.instance_id)]
    assert verdict(result, 1).browse_only and verdict(result, 1).is_applicable


def test_newer_date_breaks_a_version_tie() -> None:
    early = driver(1, "31.0", "2026-01-01", hardware_ids=(HW_GENERIC,))
    late = driver(2, "31.0", "2026-02-01", hardware_ids=(HW_GENERIC,))
    assert assigned(run([late, early])) == [(uid(2), GPU.instance_id)]


def test_driver_older_than_the_installed_one_is_never_offered() -> None:
    gpu = device("gpu", (HW_GENERIC,), driver_version="31.0", driver_date="2026-01-01")
    older = driver(1, "30.0", "2027-01-01", hardware_ids=(HW_GENERIC,))
    same = driver(2, "31.0", "2020-01-01", hardware_ids=(HW_GENERIC,))
    newer = driver(3, "31.1", hardware_ids=(HW_GENERIC,))
    result = run([older, same, newer], gpu)
    assert verdict(result, 1).is_installed and not verdict(result, 1).is_applicable
    assert verdict(result, 2).is_installed and not verdict(result, 2).is_applicable
    assert assigned(result) == [(uid(3), "gpu")]


def test_best_ranked_driver_older_than_installed_leaves_the_next_one_assigned() -> None:
    gpu = device("gpu", (HW_SPECIFIC, HW_GENERIC), driver_version="31.0")
    specific_but_old = driver(1, "30.0", hardware_ids=(HW_SPECIFIC,))
    generic_newer = driver(2, "32.0", hardware_ids=(HW_GENERIC,))
    assert assigned(run([specific_but_old, generic_newer], gpu)) == [(uid(2), "gpu")]


def test_one_driver_assigned_per_device_the_rest_browse_only() -> None:
    drivers = [driver(n, f"{n}.0", hardware_ids=(HW_GENERIC,)) for n in range(1, 6)]
    result = run(drivers)
    assert assigned(result) == [(uid(5), GPU.instance_id)]
    assert all(verdict(result, n).browse_only for n in range(1, 5))
    assert sum(e.is_applicable for e in result.updates) == 5


def test_a_driver_for_two_devices_is_returned_once() -> None:
    a = device("a", ("USB\\VID_1&PID_2",))
    b = device("b", ("USB\\VID_1&PID_2",))
    d = driver(1, hardware_ids=("USB\\VID_1&PID_2",))
    result = run([d], a, b)
    assert [(e.update_id, e.device) for e in result.updates] == [(uid(1), "a")]


def test_a_driver_best_for_one_device_only_is_assigned() -> None:
    a = device("a", ("ID_A", "ID_SHARED"))
    b = device("b", ("ID_B", "ID_SHARED"))
    shared = driver(1, "1.0", hardware_ids=("ID_SHARED",))
    for_a = driver(2, "1.0", hardware_ids=("ID_A",))
    result = run([shared, for_a], a, b)
    assert sorted(assigned(result)) == sorted([(uid(1), "b"), (uid(2), "a")])


def test_a_driver_needed_by_one_device_is_offered_even_if_another_has_it() -> None:
    a = device("a", ("ID",), driver_version="2.0")
    b = device("b", ("ID",), driver_version="1.0")
    result = run([driver(1, "2.0", hardware_ids=("ID",))], a, b)
    assert assigned(result) == [(uid(1), "b")]
    assert not verdict(result, 1).is_installed


def test_driver_matching_no_device_is_not_installable() -> None:
    e = verdict(run([driver(1, hardware_ids=("PCI\\VEN_FFFF",))]), 1)
    assert not e.is_installable and not e.is_applicable and e.match_rank is None


def test_driver_os_rule_still_applies() -> None:
    d = driver(1, hardware_ids=(HW_GENERIC,), os=os_rule(architectures=("arm64",)))
    assert not verdict(run([d]), 1).is_applicable


def test_installed_driver_by_id_is_reported_installed() -> None:
    d = driver(1, hardware_ids=(HW_GENERIC,))
    result = evaluate([d], inventory(devices=(GPU,), installed=(1,)))
    assert verdict(result, 1).is_installed and not verdict(result, 1).is_applicable


def test_superseded_driver_is_not_the_best() -> None:
    old = driver(1, "9.0", hardware_ids=(HW_SPECIFIC,))
    new = driver(2, "1.0", hardware_ids=(HW_GENERIC,), supersedes=(1,))
    result = run([old, new])
    assert verdict(result, 1).is_superseded
    assert assigned(result) == [(uid(2), GPU.instance_id)]


def test_drivers_and_software_mix() -> None:
    result = run([driver(1, hardware_ids=(HW_GENERIC,)), manifest(2, os=os_rule())])
    assert {e.update_type for e in result.updates if e.is_assigned} == {"Driver", "Software"}
