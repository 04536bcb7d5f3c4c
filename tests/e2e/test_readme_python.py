"""The README's Python snippet runs as written, against a real service over loopback HTTPS.

The only name the snippet leaves to its reader is ``state_dir``; a reader would most likely
type it as a string, so it is bound to a ``str`` path of a really enrolled device.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tidings.agent.enroll import enroll
from tidings.catalog.publisher import PublishResult
from tidings.clock import FixedClock
from tidings.scan.samples import SAMPLE_DEVICES
from tidings.scan.session import INVENTORY_FILE, UpdateSession
from tidings.service.config import ServiceConfig
from tidings.service.server import ServiceEndpoints, running_server
from tidings.service.state import ServiceState, default_database_url
from tidings.service.tls import ca_pin

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
README_PYTHON = re.findall(r"^```python\n(.*?)^```$", README.read_text("utf-8"), re.M | re.S)


@pytest.fixture
def service(data_dir: Path, published: list[PublishResult]) -> Iterator[ServiceEndpoints]:
    with running_server(data_dir, ServiceConfig(port=0)) as endpoints:
        yield endpoints


@pytest.fixture
def enrolled(data_dir: Path, service: ServiceEndpoints, tmp_path: Path, clock: FixedClock) -> Path:
    """A device enrolled with a single-use token, with the sample desktop's inventory."""
    with ServiceState.open(default_database_url(data_dir), clock=clock) as state:
        token = state.create_token("lab", lifetime=timedelta(hours=1)).token
    state_dir = tmp_path / "device"
    enroll(state_dir, server=service.base_url, pin=ca_pin(data_dir / "tls"), token=token,
           clock=clock)  # fmt: skip
    (state_dir / INVENTORY_FILE).write_text(SAMPLE_DEVICES["desktop-x64"])
    return state_dir


def test_the_readme_has_a_python_snippet() -> None:
    assert len(README_PYTHON) >= 1


@pytest.mark.parametrize("snippet", README_PYTHON)
def test_readme_python_snippet_runs_as_written_with_a_str_state_dir(
    snippet: str, enrolled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = compile(snippet, "README.md", "exec")
    namespace = {"__name__": "readme", "state_dir": str(enrolled)}
    exec(code, namespace)
    printed = capsys.readouterr().out.splitlines()
    with UpdateSession(enrolled) as session:  # the same search, through a Path
        expected = session.create_searcher().search("IsInstalled=0 and IsHidden=0").updates
    assert expected, "the sample desktop is offered updates"
    assert len(printed) == len(expected)
    assert all(any(line.startswith(u.title) for line in printed) for u in expected)
