"""Start-up: the CLI loads only what a command needs, and Ctrl-C is never a traceback.

Threats: every command (even ``--help``) paying for python-tuf, httpx, cryptography and the
service stack before it starts; a user's Ctrl-C during that wait answered with a
KeyboardInterrupt traceback instead of one line and exit code 130.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from importlib.metadata import version
from pathlib import Path

import pytest
from cli_helpers import PROCESS_TIMEOUT_S, TIDINGS, tidings

HEAVY = (
    "tuf",
    "securesystemslib",
    "httpx",
    "cryptography",
    "sqlalchemy",
    "fastapi",
    "uvicorn",
    "rich.table",
    "rich.progress",
    "tidings.catalog.publisher",
    "tidings.scan.session",
    "tidings.service",
)


def python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT_S,
    )


def test_loading_the_command_tree_imports_no_heavy_library() -> None:
    result = python(
        """
        import json, sys
        from tidings.cli.main import registered_app
        registered_app()
        print(json.dumps(sorted(sys.modules)))
        """
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert [m for m in loaded if m in HEAVY] == []


def test_init_sizes_bins_for_the_catalogs_reference_size_by_default() -> None:
    from tidings.catalog.layout import REFERENCE_UPDATES
    from tidings.cli.server_cmds import EXPECTED_UPDATES  # a literal, to keep the import light

    assert EXPECTED_UPDATES == REFERENCE_UPDATES


# Sends a real SIGINT to the process the moment it starts importing MODULE: deterministic
# "Ctrl-C while the CLI is still starting".
INTERRUPT_ON_IMPORT = """
    import os, signal, sys

    module = sys.argv[1]

    class InterruptOnImport:
        def find_spec(self, name, path=None, target=None):
            if name == module:
                sys.meta_path.remove(self)
                os.kill(os.getpid(), signal.SIGINT)
            return None

    sys.meta_path.insert(0, InterruptOnImport())
    sys.argv = ["tidings", *sys.argv[2:]]
    from tidings.cli.main import main
    main()
"""


@pytest.mark.parametrize(
    ("module", "command"),
    [
        ("typer", ["--help"]),  # while the command tree is being set up
        ("typer.rich_utils", ["--help"]),  # while Typer parses and renders (Typer catches it)
        ("tidings.catalog.publisher", ["updates", "."]),  # inside a command, loading its body
    ],
)
def test_ctrl_c_while_starting_is_one_line_and_exit_130(module: str, command: list[str]) -> None:
    result = python(INTERRUPT_ON_IMPORT, module, *command)
    assert (result.returncode, result.stderr) == (130, "interrupted\n")


def test_ctrl_c_during_a_long_command_is_one_line_and_exit_130(tmp_path: Path) -> None:
    pin = "sha256/" + base64.b64encode(bytes(32)).decode()
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        url = f"https://127.0.0.1:{silent.getsockname()[1]}"
        command = [*TIDINGS, "agent", "enroll", str(tmp_path / "device")]
        options = ["--server", url, "--pin", pin, "--token", "tdt_x"]
        process = subprocess.Popen(
            [*command, *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            silent.settimeout(PROCESS_TIMEOUT_S)
            connection, _ = silent.accept()  # the command is running, waiting on the network
            with connection:
                process.send_signal(signal.SIGINT)
                stdout, stderr = process.communicate(timeout=PROCESS_TIMEOUT_S)
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.communicate(timeout=PROCESS_TIMEOUT_S)
    assert (process.returncode, stdout, stderr) == (130, "", "interrupted\n")


def test_version_is_the_installed_distributions() -> None:
    result = tidings("--version")
    assert (result.code, result.stdout) == (0, f"tidings {version('tidings')}\n")


def test_shell_completion_script_and_completions_work_with_the_lazy_command_tree() -> None:
    script = tidings("--show-completion", "bash")
    assert script.code == 0
    assert "_TIDINGS_COMPLETE=complete_bash" in script.stdout
    env = dict(os.environ, _TIDINGS_COMPLETE="complete_bash", COMP_CWORD="2")
    completed = subprocess.run(
        [*TIDINGS],
        env={**env, "COMP_WORDS": "tidings server ru"},
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT_S,
    )
    assert completed.stdout.split() == ["run"]
