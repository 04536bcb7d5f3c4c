"""docs/operations.md's Python ``serve(...)`` snippet does what ``tidings server run`` does.

Threat: a reader copies a snippet that never re-signs, and every device refuses the catalog
a day later when the timestamp expires.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import tidings.service.server as server_module
from tidings.catalog.publisher import PublishResult

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
PYTHON = re.findall(r"^```python\n(.*?)^```$", OPERATIONS.read_text("utf-8"), re.M | re.S)


def test_the_serve_snippet_re_signs_as_server_run_does(
    data_dir: Path,
    published: list[PublishResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [snippet] = [s for s in PYTHON if "serve(" in s]
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(server_module, "serve", lambda data_dir, **kw: calls.append(kw))
    (tmp_path / "DATA_DIR").symlink_to(data_dir)
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "operations.md", "exec"), {"__name__": "operations"})
    [kwargs] = calls
    resign = kwargs.get("resign")
    assert resign is not None, "the snippet never re-signs: the timestamp expires after a day"
    assert resign.__func__.__qualname__ == "Publisher.refresh_online"
    resign()  # really re-signs with the data directory's online key
