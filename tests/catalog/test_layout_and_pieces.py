"""Pure parts of the catalog: bin layout, index keys, piece maps, content store."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tuf.api.metadata import DelegatedRole

from tidings.catalog.content import ContentStore
from tidings.catalog.index import hardware_key, key_text, os_key
from tidings.catalog.keyindex import segment_path
from tidings.catalog.layout import CatalogLayout, bin_of_role, hardware_namespace
from tidings.catalog.piecemap import PieceHasher, PieceMap, piece_map_of
from tidings.catalog.publisher import PublishResult
from tidings.errors import HashMismatchError, IntegrityError, PayloadError

LAYOUT = CatalogLayout()


@pytest.mark.parametrize(
    ("hwid", "namespace"),
    [
        ("PCI\\VEN_8086&DEV_46A6&SUBSYS_00000000", "pci-8086"),
        ("USB\\VID_046D&PID_C52B", "usb-046d"),
        ("PCI\\CC_0300", "pci"),
        ("ACPI\\PNP0A08", "acpi"),
        ("ROOT_DEVICE", "generic"),
        ("P C I!\\VEN_../../x", "pci"),
    ],
)
def test_hardware_ids_map_to_safe_vendor_namespaces(hwid: str, namespace: str) -> None:
    assert hardware_namespace(hwid) == namespace


@given(st.text(max_size=300))
def test_any_hardware_id_gives_a_bin_whose_paths_its_vendor_role_owns(hwid: str) -> None:
    key = hardware_key(hwid)
    family = LAYOUT.family(key.family)
    bin_ = family.bin_for_key(key.key)
    vendor = DelegatedRole(
        family.role, [], 1, True, LAYOUT.vendor_paths(family.path_prefix.split("/")[1])
    )
    drivers = DelegatedRole("drivers", [], 1, True, LAYOUT.kind_paths("drivers"))
    inner = DelegatedRole(bin_.role, [], 1, True, [family.delegated_path(bin_)])
    target = segment_path(bin_.directory, key_text(key), 3, 12)
    assert drivers.is_delegated_path(target)
    assert vendor.is_delegated_path(target)
    assert inner.is_delegated_path(target)


@given(st.text(min_size=1, max_size=50))
def test_bin_lookup_by_key_finds_the_bin_the_publisher_used(product: str) -> None:
    key = os_key(product, "x64")
    family = LAYOUT.family("os")
    assert family.bin_for_key(key.key) in family.bins()
    assert bin_of_role(family.bin_for_key(key.key).role, LAYOUT) == family.bin_for_key(key.key)


@pytest.mark.parametrize("role", ["vendor.ab", "vendor", "os.100", "os.0g", "drivers.00", "os.40"])
def test_names_that_only_look_like_bins_are_not_bins(role: str) -> None:
    with pytest.raises(ValueError, match="is not a bin"):
        bin_of_role(role, LAYOUT)


def test_a_vendor_role_cannot_claim_another_vendors_paths() -> None:
    intel = DelegatedRole("vendor.pci-8086", [], 1, True, LAYOUT.vendor_paths("pci-8086"))
    other = LAYOUT.family("vendor.pci-10de").bin(0)
    assert not intel.is_delegated_path(segment_path(other.directory, "vendor.pci-10de:X", 0, 0))


@given(st.binary(max_size=100_000), st.sampled_from([16_384, 32_768]))
def test_piece_map_round_trips_and_verifies_every_piece(data: bytes, piece_size: int) -> None:
    piece_map = piece_map_of([data[:777], data[777:]], piece_size)
    assert PieceMap.from_bytes(piece_map.to_bytes()) == piece_map
    for i in range(piece_map.count):
        start, end = piece_map.piece_range(i)
        piece_map.verify_piece(i, data[start:end])


def test_tampered_piece_is_detected() -> None:
    data = bytes(range(256)) * 200
    piece_map = piece_map_of([data], 16_384)
    piece = bytearray(data[:16_384])
    piece[100] ^= 1
    with pytest.raises(HashMismatchError, match="piece 0: SHA-256 mismatch"):
        piece_map.verify_piece(0, bytes(piece))
    with pytest.raises(HashMismatchError, match="bytes, expected"):
        piece_map.verify_piece(1, data[16_384:16_000])


@pytest.mark.parametrize(
    "doc",
    [
        b"not json",
        b'{"format":"tidings-piece-map/1","piece_size":1000,"length":0,"sha256":[]}',
        b'{"format":"tidings-piece-map/1","piece_size":16384,"length":20000,"sha256":[]}',
        b'{"format":"other","piece_size":16384,"length":0,"sha256":[]}',
        b'{"format":"tidings-piece-map/1","piece_size":16384,"length":1,"sha256":["zz"]}',
        b'{"format":"tidings-piece-map/1","piece_size":true,"length":0,"sha256":[]}',
    ],
)
def test_hostile_piece_maps_are_integrity_errors(doc: bytes) -> None:
    with pytest.raises(IntegrityError):
        PieceMap.from_bytes(doc)


def test_content_store_refuses_a_payload_of_another_size(tmp_path: Path) -> None:
    src = tmp_path / "p.bin"
    src.write_bytes(b"x" * 1000)
    store = ContentStore(tmp_path / "content")
    with pytest.raises(PayloadError, match="size is 1000 bytes, the manifest says 999"):
        store.add_file(src, expected_size=999)
    assert not list((tmp_path / "content").rglob("sha256/*/*"))
    stored = store.add_file(src, expected_sha256=hashlib.sha256(b"x" * 1000).hexdigest())
    assert store.path_of(stored.sha256).read_bytes() == b"x" * 1000


@pytest.mark.parametrize("torn", [b"", b"\x00" * 11, b"index doc"])
def test_content_torn_by_a_crash_is_rewritten_and_relinked_by_the_next_publish(
    tmp_path: Path, torn: bytes
) -> None:
    # A bulk publish writes documents unsynced and syncs once before its commit; power lost
    # before that can leave a name with the wrong bytes, which a re-run must not trust.
    store = ContentStore(tmp_path / "content")
    data = b'{"key":"apps:x"}'
    sha = hashlib.sha256(data).hexdigest()
    store.path_of(sha).parent.mkdir(parents=True)
    store.path_of(sha).write_bytes(torn)
    served = tmp_path / "repo/targets/apps/0a" / f"{sha}.doc.json"
    served.parent.mkdir(parents=True)
    os.link(store.path_of(sha), served)  # the crashed run had linked it too
    store.add_bytes(data, sha, durable=False)
    staged = store.stage_link(sha, served)  # the next publish stages it anew ...
    assert staged is not None
    os.replace(staged, served)  # ... and its commit renames it into place
    assert store.path_of(sha).read_bytes() == data
    assert served.read_bytes() == data
    assert os.path.samefile(store.path_of(sha), served)


def test_piece_hasher_matches_whole_file_hash() -> None:
    hasher = PieceHasher(16_384)
    hasher.update(b"a" * 40_000)
    sha, piece_map = hasher.finish()
    assert sha == hashlib.sha256(b"a" * 40_000).hexdigest()
    assert piece_map.count == 3


# Backslashes, quotes and control characters side by side: where the two encoders could differ.
tricky_text = st.text(st.sampled_from(list('ab\\"\n\t\r\x00\x01\x1f\x7fé\u2028u0/')), max_size=12)
json_text = st.text() | tricky_text
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | json_text | st.floats(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(json_text, inner, max_size=5),
    max_leaves=30,
)


@given(st.dictionaries(json_text, json_values, max_size=8))
def test_fast_canonical_json_is_byte_identical_to_the_reference_encoder(doc: dict) -> None:
    # A signature over other bytes than a device recomputes would make every device reject us;
    # and what the reference refuses (floats, NaN) must be refused, never signed or verified.
    from securesystemslib.exceptions import FormatError
    from securesystemslib.formats import encode_canonical

    from tidings.canonical import canonical_bytes

    try:
        reference = encode_canonical(doc).encode("utf-8")  # type: ignore[union-attr]
    except UnicodeEncodeError:
        return  # lone surrogates: neither encoder can produce UTF-8
    except FormatError:
        with pytest.raises(FormatError):
            canonical_bytes(doc)
        return
    assert canonical_bytes(doc) == reference


def test_python_tuf_verifies_over_the_same_bytes_with_the_fast_serializer(
    data_dir: Path, published: list[PublishResult]
) -> None:
    from securesystemslib.formats import encode_canonical
    from tuf.api.metadata import Metadata

    from tidings.canonical import use_fast_canonical_json

    use_fast_canonical_json()
    for path in (data_dir / "repo/metadata").glob("*.json"):
        md = Metadata.from_bytes(path.read_bytes())
        reference = encode_canonical(md.signed.to_dict()).encode("utf-8")  # type: ignore[union-attr]
        assert md.signed_bytes == reference, path.name
