"""The content store keeps one inode per content: republishing never turns links into copies."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from atomic_helpers import UpdateSpec, write_manifest

from tidings.catalog.content import ContentStore
from tidings.catalog.publisher import Publisher
from tidings.catalog.samples import generated_bytes
from tidings.clock import FixedClock
from tidings.manifest import load_manifest

PAYLOAD_BYTES = 1_500_000  # bytes: more than one piece and than SMALL_CONTENT_BYTES


def disk_usage(root: Path) -> int:
    """Bytes allocated under ``root``, each inode counted once (as ``du`` does)."""
    seen: set[int] = set()
    total = 0
    for path in root.rglob("*"):
        st = path.lstat()
        if path.is_file() and st.st_ino not in seen:
            seen.add(st.st_ino)
            total += st.st_blocks * 512
    return total


def test_storing_the_same_payload_twice_keeps_the_served_link_a_link(tmp_path: Path) -> None:
    src = tmp_path / "payload.bin"
    src.write_bytes(generated_bytes("same", PAYLOAD_BYTES))
    store = ContentStore(tmp_path / "content")
    first = store.add_file(src)
    served = tmp_path / "repo/targets/apps/0a" / f"{first.sha256}.x.payload.p.bin"
    served.parent.mkdir(parents=True)
    os.link(store.path_of(first.sha256), served)  # as a published payload is served
    inode = served.stat().st_ino

    second = store.add_file(src)

    assert second == first
    content = store.path_of(first.sha256).stat()
    assert (content.st_ino, content.st_nlink) == (inode, 2)  # still one file, two names
    assert not list((tmp_path / "content" / "tmp").iterdir())  # the discarded copy is gone


@pytest.mark.parametrize("damage", ["same-size", "truncated", "empty"])
def test_a_content_file_whose_bytes_do_not_match_its_name_is_replaced(
    tmp_path: Path, damage: str
) -> None:
    data = generated_bytes("torn", PAYLOAD_BYTES)
    src = tmp_path / "payload.bin"
    src.write_bytes(data)
    store = ContentStore(tmp_path / "content")
    sha = hashlib.sha256(data).hexdigest()
    bad = {
        "same-size": b"\x00" * len(data),
        "truncated": data[: len(data) // 2],
        "empty": b"",
    }[damage]
    store.path_of(sha).parent.mkdir(parents=True)
    store.path_of(sha).write_bytes(bad)

    store.add_file(src)

    assert store.path_of(sha).read_bytes() == data


def test_republishing_a_payload_does_not_grow_disk_usage(
    data_dir: Path, clock: FixedClock, tmp_path: Path
) -> None:
    # Field report: 48 republishes of a 40 MB payload took 1.8 GB instead of 237 MB, because
    # each one replaced the stored file and left every served link holding a copy.
    data = generated_bytes("republished", PAYLOAD_BYTES)
    publisher = Publisher(data_dir, clock=clock)
    spec = UpdateSpec("app")
    usage: list[int] = []
    for _ in range(4):  # new revisions of one update, the same payload bytes each time
        manifest = write_manifest(tmp_path / "m", spec)
        payload_dir = tmp_path / "m" / "payloads" / f"{spec.update_id}-r{spec.revision}"
        (payload_dir / spec.payload_name).write_bytes(data)
        publisher.publish(load_manifest(manifest))
        usage.append(disk_usage(data_dir))
        spec = spec.next_revision()
        clock.advance(1)

    sha = hashlib.sha256(data).hexdigest()
    served = [p for p in (data_dir / "repo" / "targets").rglob(f"{sha}.*") if p.is_file()]
    assert len(served) == 1  # one update id: every revision serves the same name
    content = publisher.content.path_of(sha).stat()
    assert (content.st_ino, content.st_nlink) == (served[0].stat().st_ino, 2)
    # Metadata grows a little with each commit; another copy of the payload would not fit.
    assert usage[-1] - usage[0] < PAYLOAD_BYTES // 2, usage
