"""``tidings-tuf-client``: the conformance suite's CLI protocol against a plain-HTTP mirror."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tidings.catalog.keyindex import segment_path
from tidings.catalog.layout import bin_of_role
from tidings.catalog.publisher import Publisher, PublishResult
from tidings.trust.conformance import run


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format: str, *args: object) -> None:
        self.requests.append(self.path)


@pytest.fixture
def mirror(data_dir: Path, published: list[PublishResult]) -> Iterator[tuple[str, list[str]]]:
    """The catalog served by a dumb static HTTP server, as the suite would serve one."""
    requests: list[str] = []
    handler = type("Handler", (_Handler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(data_dir / "repo"))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def app_document(publisher: Publisher, app: PublishResult) -> str:
    """The target name of the app's index document: a plain TUF target of our catalog."""
    home = bin_of_role(app.bins[0], publisher.layout)
    return segment_path(home.directory, app.keys[0], 0, 0)


def test_init_refresh_download_and_no_second_download(
    data_dir: Path,
    publisher: Publisher,
    published: list[PublishResult],
    mirror: tuple[str, list[str]],
    tmp_path: Path,
) -> None:
    url, requests = mirror
    meta, targets = tmp_path / "meta", tmp_path / "targets"
    targets.mkdir()
    root = data_dir / "repo/metadata/1.root.json"
    assert run(["--metadata-dir", str(meta), "init", str(root)]) == 0
    common = ["--metadata-dir", str(meta), "--metadata-url", f"{url}/metadata/"]
    assert run([*common, "refresh"]) == 0
    assert (meta / "timestamp.json").exists() and (meta / "snapshot.json").exists()
    name = app_document(publisher, published[1])
    download = [*common, "--target-name", name, "--target-base-url", f"{url}/targets/",
                "--target-dir", str(targets), "download"]  # fmt: skip
    assert run(download) == 0
    assert len(list(targets.iterdir())) == 1
    fetched = [r for r in requests if r.startswith("/targets/")]
    assert run(download) == 0  # already downloaded with matching hashes: not fetched again
    assert [r for r in requests if r.startswith("/targets/")] == fetched


def test_tampered_target_fails_with_exit_1(
    data_dir: Path,
    publisher: Publisher,
    published: list[PublishResult],
    mirror: tuple[str, list[str]],
    tmp_path: Path,
) -> None:
    url, _ = mirror
    name = app_document(publisher, published[1])
    directory, _, file_name = name.rpartition("/")
    served_files = list((data_dir / "repo/targets" / directory).glob(f"*.{file_name}*"))
    assert served_files  # the document and its gzip copy
    for served in served_files:
        served.unlink()  # a hard link into the content store: replace, never write through
        served.write_bytes(b"evil" * 1000)
    meta = tmp_path / "meta"
    assert (
        run(["--metadata-dir", str(meta), "init", str(data_dir / "repo/metadata/1.root.json")]) == 0
    )
    argv = ["--metadata-dir", str(meta), "--metadata-url", f"{url}/metadata/",
            "--target-name", name, "--target-base-url", f"{url}/targets/",
            "--target-dir", str(tmp_path), "download"]  # fmt: skip
    assert run(argv) == 1


def test_unknown_target_and_missing_root_fail_with_exit_1(
    mirror: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, _ = mirror
    assert run(["--metadata-dir", str(tmp_path / "m"), "--metadata-url", url, "refresh"]) == 1
    shutil.rmtree(tmp_path / "m", ignore_errors=True)
