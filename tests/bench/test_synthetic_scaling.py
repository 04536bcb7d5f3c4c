"""The benchmarks' synthetic catalog grows by keys, not by history (bench/_synthetic.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# bench/ is not a package: its scripts import _synthetic from their own folder, as here.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _synthetic import (
    KIND_WEIGHTS,
    VENDORS,
    SyntheticCatalog,
    Weighted,
    bulk_prepared,
    check,
    key_histories,
    vocabulary,
)
from tidings.catalog.publisher import Publisher
from tidings.manifest import Kind

SIZES = (10_000, 100_000, 1_000_000)


def expected_history(weighted: Weighted[str], item: str, kind_updates: float) -> float:
    """Updates an item is expected to get: its share of its kind's weight, times the updates."""
    return weighted.weights[weighted.items.index(item)] / weighted.cum_weights[-1] * kind_updates


def test_vocabulary_is_the_same_for_every_seed(tmp_path: Path) -> None:
    a = SyntheticCatalog(1, tmp_path, catalog_size=20_000)
    b = SyntheticCatalog(2, tmp_path, catalog_size=20_000)
    assert a.vocabulary is b.vocabulary
    assert a.app_products == b.app_products and a.device_pools == b.device_pools


def test_vocabulary_grows_with_the_catalog() -> None:
    small, base, big = (vocabulary(n) for n in SIZES)
    assert [len(v.apps.items) for v in (small, base, big)] == [300, 3_000, 30_000]
    assert [len(v.store.items) for v in (small, base, big)] == [400, 4_000, 40_000]
    assert [len(v.os_products.items) for v in (small, base, big)] == [2, 20, 200]
    assert len(vocabulary(100).apps.items) == 30  # the floor
    assert sum(map(len, big.device_pools.values())) > 9 * sum(map(len, base.device_pools.values()))


def test_each_vocabulary_is_a_prefix_of_every_larger_one() -> None:
    small, big = vocabulary(10_000), vocabulary(1_000_000)
    weights = dict(zip(big.apps.items, big.apps.weights, strict=True))
    assert all(weights[a] == w for a, w in zip(small.apps.items, small.apps.weights, strict=True))
    assert set(small.store.items) <= set(big.store.items)
    assert set(small.os_products.items) <= set(big.os_products.items)
    for vendor, pool in small.device_pools.items():
        assert big.device_pools[vendor][: len(pool)] == pool


def test_an_items_expected_history_does_not_grow_with_the_catalog() -> None:
    """The 10 busiest apps and store packages of a 10k catalog keep their history up to 1M."""
    small = vocabulary(10_000)
    for size in SIZES[1:]:
        big = vocabulary(size)
        for kind, part in ((Kind.APP, "apps"), (Kind.STORE, "store")):
            for item in getattr(small, part).items[:10]:
                before = expected_history(getattr(small, part), item, 10_000 * KIND_WEIGHTS[kind])
                after = expected_history(getattr(big, part), item, size * KIND_WEIGHTS[kind])
                assert 0.5 < after / before < 2, (size, item)
        share = KIND_WEIGHTS[Kind.DEFINITIONS]
        before = expected_history(small.definitions, "tidings-defender", 10_000 * share)
        after = expected_history(big.definitions, "tidings-defender", size * share)
        assert 0.5 < after / before < 2


def test_app_products_are_listed_most_popular_first(tmp_path: Path) -> None:
    catalog = SyntheticCatalog(1, tmp_path, catalog_size=50_000)
    weights = catalog.vocabulary.apps.weights
    assert list(weights) == sorted(weights, reverse=True)
    assert catalog.typical_os_product() == ("tidings-os-11", 22000, ("x64", "arm64"))


def test_hot_updates_go_to_the_heaviest_item_of_their_kind(tmp_path: Path) -> None:
    catalog = SyntheticCatalog(3, tmp_path, catalog_size=200_000, payload_files=False)
    app = catalog.make(Kind.APP, hot=True).manifest
    store = catalog.make(Kind.STORE, hot=True).manifest
    os_rule = catalog.make(Kind.OS, hot=True).manifest.applicability.os
    driver = catalog.make(Kind.DRIVER, hot=True).manifest.applicability.driver
    assert app.applicability.installed[0].product == catalog.app_products[0]
    assert store.applicability.store is not None
    assert store.applicability.store.package == catalog.store_packages[0]
    assert os_rule is not None and (os_rule.product, os_rule.architectures) == (
        "tidings-os-11",
        ("x64",),
    )
    assert driver is not None and driver.vendor == max(VENDORS, key=lambda v: v[3])[0]


@pytest.mark.parametrize("payload_files", [True, False])
def test_every_manifest_passes_check(tmp_path: Path, payload_files: bool) -> None:
    count = 500 if payload_files else 3_000  # files cost disk time, the manifests are the same
    catalog = SyntheticCatalog(5, tmp_path, catalog_size=count, payload_files=payload_files)
    items = list(catalog.generate(count))
    for item in items:
        check(item)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) == (sum(len(i.payload_sources) for i in items) if payload_files else 0)


def test_manifests_without_files_pin_what_the_publisher_computes(
    tmp_path: Path, publisher: Publisher
) -> None:
    with_files = SyntheticCatalog(9, tmp_path / "payloads").generate(30)
    without = SyntheticCatalog(9, tmp_path / "none", payload_files=False).generate(30)
    for authored, bare in zip(with_files, without, strict=True):
        assert bare.payload_sources == ()
        assert publisher.prepare(authored).manifest == bare.manifest


def test_bulk_prepared_updates_commit_without_payload_files(
    tmp_path: Path, publisher: Publisher
) -> None:
    items = list(SyntheticCatalog(11, tmp_path, payload_files=False).generate(40))
    results = publisher.commit_prepared([bulk_prepared(item) for item in items])
    assert [r.update_id for r in results] == [i.manifest.id for i in items]
    with pytest.raises(ValueError, match="payload files"):
        bulk_prepared(next(SyntheticCatalog(11, tmp_path).generate(1)))


def test_key_histories_count_updates_per_key(tmp_path: Path) -> None:
    catalog = SyntheticCatalog(13, tmp_path, catalog_size=3_000, payload_files=False)
    items = list(catalog.generate(3_000))
    stats = key_histories(items)
    assert set(stats) == {"os", "app", "store", "driver", "driver_compatible", "definitions"}
    os_updates = [i for i in items if i.manifest.kind is Kind.OS]
    assert stats["os"]["keys"] <= 3 + 2 * 2  # two products' architectures, and "any"
    assert int(stats["os"]["max"]) <= len(os_updates)
    assert stats["definitions"]["busiest"] == "tidings-defender"
    store = catalog.make(Kind.STORE)
    assert key_histories([store, store])["store"]["max"] == 2
