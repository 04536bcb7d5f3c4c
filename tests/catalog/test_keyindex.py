"""The per-key merge tree of index documents: nothing lost, sizes bounded, hostile ones refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.catalog.keyindex import (
    IndexEntry,
    Segment,
    SegmentFormatError,
    SegmentName,
    SegmentPolicy,
    append_updates,
    key_digest,
    parse_segment,
    parse_segment_path,
    remove_updates,
    segment_document,
    segment_path,
)

KEY = "apps:contoso-notes"
POLICY = SegmentPolicy(segment_updates=4, fanout=3, top_level=4)


def entry(n: int) -> IndexEntry:
    return IndexEntry(f"id-{n}", {"id": f"id-{n}", "revision": 1}, "apps/0a")


class Store:
    """Published segments as a publisher keeps them: written, then read back on demand."""

    def __init__(self) -> None:
        self.docs: dict[tuple[int, int], bytes] = {}
        self.segments: list[Segment] = []
        self.reads = 0

    def load(self, seg: Segment) -> tuple[IndexEntry, ...]:
        self.reads += 1
        data = self.docs[(seg.level, seg.number)]
        return parse_segment(data, SegmentName(key_digest(KEY), seg.level, seg.number), KEY)[1]

    def publish(self, segments: list[Segment]) -> None:
        kept = {(s.level, s.number) for s in segments}
        for seg in segments:
            if seg.dirty:
                self.docs[(seg.level, seg.number)] = segment_document(KEY, seg)
        self.docs = {at: d for at, d in self.docs.items() if at in kept}
        self.segments = [Segment(s.level, s.number) for s in segments]

    def ids(self) -> list[str]:
        return [e.update_id for s in self.segments for e in self.load(s)]


def test_appends_fill_the_open_segment_before_starting_another() -> None:
    store = Store()
    store.publish(append_updates([], [entry(0), entry(1)], POLICY, store.load))
    store.publish(append_updates(store.segments, [entry(2)], POLICY, store.load))
    assert [(s.level, s.number) for s in store.segments] == [(0, 0)]
    assert store.ids() == ["id-0", "id-1", "id-2"]


def test_an_incremental_append_rewrites_only_the_open_segment() -> None:
    store = Store()
    store.publish(append_updates([], [entry(n) for n in range(10)], POLICY, store.load))
    after = append_updates(store.segments, [entry(10)], POLICY, store.load)
    assert [s for s in after if s.dirty] == [s for s in after if s.level == 0 and s.number == 2]


def test_sealed_segments_merge_a_level_up_so_a_long_history_stays_few_documents() -> None:
    store = Store()
    for n in range(200):
        store.publish(append_updates(store.segments, [entry(n)], POLICY, store.load))
    assert sorted(store.ids()) == sorted(f"id-{n}" for n in range(200))
    levels = [s.level for s in store.segments]
    assert max(levels) >= 3
    for level in set(levels):  # fewer than `fanout` sealed segments left on any level
        assert levels.count(level) <= POLICY.fanout - (0 if level == 0 else 1)
    assert len(store.segments) < 12


def test_top_level_segments_never_merge_so_no_document_outgrows_what_devices_accept() -> None:
    policy = SegmentPolicy(segment_updates=4, fanout=3, top_level=1)
    store = Store()
    for n in range(120):
        store.publish(append_updates(store.segments, [entry(n)], policy, store.load))
    assert max(s.level for s in store.segments) == 1
    assert max(len(store.load(s)) for s in store.segments) == 4 * 3  # one merge's worth
    assert sorted(store.ids()) == sorted(f"id-{n}" for n in range(120))


def test_a_bulk_append_builds_the_same_bounded_tree() -> None:
    store = Store()
    store.publish(append_updates([], [entry(n) for n in range(200)], POLICY, store.load))
    assert sorted(store.ids()) == sorted(f"id-{n}" for n in range(200))
    assert len(store.segments) < 12


def test_removing_an_update_rewrites_only_the_segment_that_held_it() -> None:
    store = Store()
    store.publish(append_updates([], [entry(n) for n in range(12)], POLICY, store.load))
    after = remove_updates(store.segments, {"id-5"}, store.load)
    assert len([s for s in after if s.dirty]) == 1
    store.publish(after)
    assert "id-5" not in store.ids() and len(store.ids()) == 11


def test_a_segment_emptied_by_removals_disappears() -> None:
    store = Store()
    store.publish(append_updates([], [entry(0)], POLICY, store.load))
    store.publish(remove_updates(store.segments, {"id-0"}, store.load))
    assert store.segments == [] and store.docs == {}


@settings(max_examples=60)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=120))
def test_any_sequence_of_publishes_and_revocations_loses_and_duplicates_nothing(
    steps: list[tuple[bool, int]],
) -> None:
    store, model = Store(), set()
    for is_add, n in steps:
        if is_add and f"id-{n}" not in model:
            store.publish(append_updates(store.segments, [entry(n)], POLICY, store.load))
            model.add(f"id-{n}")
        elif not is_add:
            store.publish(remove_updates(store.segments, {f"id-{n}"}, store.load))
            model.discard(f"id-{n}")
        ids = store.ids()
        assert sorted(ids) == sorted(model)
        level0 = [s for s in store.segments if s.level == 0]
        assert all(len(store.load(s)) <= POLICY.segment_updates for s in level0)


def test_segment_paths_name_one_key_directly_inside_its_bin() -> None:
    path = segment_path("apps/0a", KEY, 1, 7)
    assert parse_segment_path(path, "apps/0a") == SegmentName(key_digest(KEY), 1, 7)
    for hostile in (
        path.replace("apps/0a", "apps/0b"),  # another bin's directory
        f"apps/0a/x/{path.rpartition('/')[2]}",  # a subdirectory
        f"apps/0a/../0a/{path.rpartition('/')[2]}",
        "apps/0a/not-a-digest.0.1.json",
        path + ".gz",
        path + "\n",  # a regex "$" would let it through
    ):
        assert parse_segment_path(hostile, "apps/0a") is None


def test_a_document_of_another_key_is_refused_even_with_a_valid_hash() -> None:
    name = SegmentName(key_digest(KEY), 0, 0)
    other = segment_document("apps:fabrikam-mail", Segment(0, 0, (entry(1),)))
    with pytest.raises(SegmentFormatError, match="not a document of key"):
        parse_segment(other, name, KEY)


@pytest.mark.parametrize(
    "doc",
    [
        b"not json",
        b"[]",
        json.dumps({"key": KEY, "level": 0, "segment": 9, "updates": []}).encode(),
        json.dumps({"key": KEY, "level": 0, "segment": 0, "updates": {}}).encode(),
        json.dumps({"key": KEY, "level": 0, "segment": 0, "updates": [{"manifest": {}}]}).encode(),
        json.dumps(
            {"key": KEY, "level": 0, "segment": 0, "updates": [{"manifest": {"id": 1}}]}
        ).encode(),
    ],
)
def test_malformed_documents_are_refused_with_a_clear_error(doc: bytes) -> None:
    with pytest.raises(SegmentFormatError):
        parse_segment(doc, SegmentName(key_digest(KEY), 0, 0), KEY)
