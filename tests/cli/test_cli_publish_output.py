"""``tidings publish``: progress measures the real wait, and scripts get only the results.

Threats: a progress bar that sits still for minutes on one large payload (it counted
manifests); progress drawing, ANSI escapes or blank lines mixed into output a script parses.
"""

from __future__ import annotations

from pathlib import Path

from cli_helpers import tidings

from tidings.catalog.publisher import Publisher
from tidings.clock import FixedClock
from tidings.manifest import load_manifest


def test_publish_through_a_pipe_prints_exactly_the_result_lines(
    data_dir: Path, sample_manifests: list[Path]
) -> None:
    result = tidings("publish", data_dir, *sample_manifests)
    assert result.code == 0, result.stderr
    lines = result.stdout.split("\n")
    assert lines[-1] == ""  # the output ends with a newline ...
    assert len(lines[:-1]) == len(sample_manifests)  # ... and holds one line per manifest
    assert all(line.startswith("published ") for line in lines[:-1]), result.stdout
    assert "\x1b" not in result.stdout + result.stderr
    assert result.stderr == ""


def test_publish_progress_counts_payload_bytes(
    data_dir: Path, sample_manifests: list[Path], clock: FixedClock
) -> None:
    authored = [load_manifest(path) for path in sample_manifests]
    payload_bytes = sum(s.path.stat().st_size for a in authored for s in a.payload_sources)
    seen: list[tuple[int, int]] = []
    Publisher(data_dir, clock=clock).publish_many(
        authored, progress=lambda done, total: seen.append((done, total))
    )
    assert seen[-1] == (payload_bytes, payload_bytes)
    assert all(total == payload_bytes for _, total in seen)
    done = [d for d, _ in seen]
    assert done == sorted(done) and len(seen) >= len(authored)
