"""``tidings agent enroll`` takes its token from a file or the environment, not only argv.

A token on the command line is readable by every local user in the process list; the file and
the environment variable are not. Exactly one source is accepted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tidings.agent.state import AgentState
from tidings.cli.main import registered_app
from tidings.service.server import ServiceEndpoints

app = registered_app()

ENV = "TIDINGS_ENROLL_TOKEN"


@pytest.fixture(autouse=True)
def no_token_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)


def enroll(
    state_dir: Path, server: str, pin: str, *args: str, env: dict[str, str] | None = None
) -> Result:
    argv = ["agent", "enroll", str(state_dir), "--server", server, "--pin", pin, *args]
    return CliRunner().invoke(app, argv, env=env)


def test_token_from_a_file_enrolls_and_never_touches_argv(
    service: ServiceEndpoints, token: str, pin: str, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"  {token}\n")
    result = enroll(tmp_path / "device", service.base_url, pin, "--token-file", str(token_file))
    assert result.exit_code == 0, result.output
    assert AgentState.load(tmp_path / "device").identity.group_id == "lab"


def test_token_from_the_environment_enrolls(
    service: ServiceEndpoints, token: str, pin: str, tmp_path: Path
) -> None:
    result = enroll(tmp_path / "device", service.base_url, pin, env={ENV: token + "\n"})
    assert result.exit_code == 0, result.output
    assert AgentState.load(tmp_path / "device").identity.group_id == "lab"


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ((), "no enrollment token"),
        (("file", "env"), "more than one token: --token-file, TIDINGS_ENROLL_TOKEN"),
        (("argv", "env"), "more than one token: --token, TIDINGS_ENROLL_TOKEN"),
        (("argv", "file"), "more than one token: --token, --token-file"),
    ],
)
def test_exactly_one_token_source_is_accepted(
    token: str, pin: str, tmp_path: Path, sources: tuple[str, ...], message: str
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(token)
    args = ["--token-file", str(token_file)] if "file" in sources else []
    args += ["--token", token] if "argv" in sources else []
    env = {ENV: token} if "env" in sources else None
    # Refused before any connection: the server URL does not even need to answer.
    result = enroll(tmp_path / "device", "https://127.0.0.1:1", pin, *args, env=env)
    assert result.exit_code == 1
    advice = "give exactly one of --token-file, TIDINGS_ENROLL_TOKEN, --token"
    assert result.stderr == f"error: {message}; {advice}\n"
    assert not (tmp_path / "device").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the token file"),
        (b"", "is empty"),
        (b" \n\t\n", "is empty"),
        (b"tdt_" + b"x" * 5000, "is larger than 4096 bytes"),
        (b"\xff\xfe", "is not text"),
    ],
    ids=["missing", "empty", "blank", "too large", "binary"],
)
def test_a_bad_token_file_is_one_clear_line(
    pin: str, tmp_path: Path, content: bytes | None, message: str
) -> None:
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_bytes(content)
    args = ["--token-file", str(token_file)]
    result = enroll(tmp_path / "device", "https://127.0.0.1:1", pin, *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "device").exists()


def test_an_empty_environment_variable_counts_as_unset(
    service: ServiceEndpoints, token: str, pin: str, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(token)
    args = ["--token-file", str(token_file)]
    result = enroll(tmp_path / "device", service.base_url, pin, *args, env={ENV: ""})
    assert result.exit_code == 0, result.output
