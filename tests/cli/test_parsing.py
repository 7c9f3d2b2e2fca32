"""Parsing, usage errors and help (no server needed: each fails before any request)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from fluidcloud_async import __version__

ENV = {"FLUIDCLOUD_API_KEY": "fck_test_parsing", "FLUIDCLOUD_BASE_URL": "http://127.0.0.1:9"}
UUID = "00000000-0000-4000-8000-000000000000"


def test_help_lists_every_resource(invoke: Any) -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for group in ("spaces", "folders", "files", "shares", "quota", "uploads", "emulator"):
        assert group in result.stdout


@pytest.mark.parametrize(
    ("group", "commands"),
    [
        ("spaces", ["list", "create"]),
        ("folders", ["list", "create", "rename", "move", "delete", "restore"]),
        (
            "files",
            [
                "list",
                "get",
                "resolve",
                "rename",
                "move",
                "update",
                "delete",
                "restore",
                "download-url",
                "preview",
                "public-url",
                "signed-url",
                "wait-until-clean",
                "upload",
                "download",
            ],
        ),
        ("shares", ["list", "create", "revoke"]),
        ("quota", ["usage"]),
        ("uploads", ["import-url", "initiate", "complete"]),
    ],
)
def test_every_sdk_method_has_a_command(invoke: Any, group: str, commands: list[str]) -> None:
    result = invoke(group, "--help")
    assert result.exit_code == 0
    listed = result.stdout.split("Commands:")[1]
    for command in commands:
        assert f"  {command} " in listed, command


def test_version(invoke: Any) -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_aliases_resolve_to_canonical_commands(invoke: Any) -> None:
    rm = invoke("files", "rm", "--help")
    assert rm.exit_code == 0
    assert "Usage: cli files delete" in rm.stdout
    wait = invoke("files", "wait", "--help")
    assert "wait-until-clean" in wait.stdout
    assert invoke("folders", "rm", "--help").exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        ["nope"],
        ["files", "nope"],
        ["files", "get"],
        ["files", "get", "a b"],
        ["files", "get", "a/b"],
        ["files", "list"],
        ["files", "move", UUID],
        ["files", "move", UUID, "--folder", UUID, "--root"],
        ["files", "update", UUID],
        ["files", "signed-url", UUID, "--days", "0"],
        ["files", "signed-url", UUID, "--days", "366"],
        ["files", "signed-url", UUID, "--permission", "edit"],
        ["folders", "list"],
        ["folders", "move", UUID],
        ["folders", "create", " ", "--space", UUID],
        ["spaces", "create"],
        ["shares", "create", UUID, "--max-downloads", "0"],
        ["uploads", "import-url", "ftp://example.com/x", "--space", UUID],
        ["--timeout", "0", "spaces", "list"],
        ["files", "wait", UUID, "--timeout", "-1"],
    ],
)
def test_usage_errors_exit_2(invoke: Any, args: list[str]) -> None:
    result = invoke(*args, env=ENV)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_missing_key_is_a_usage_error(invoke: Any) -> None:
    result = invoke("spaces", "list")
    assert result.exit_code == 2
    assert "FLUIDCLOUD_API_KEY" in result.stderr


def test_connection_error_is_one_line(invoke: Any) -> None:
    result = invoke("--max-retries", "0", "spaces", "list", env=ENV)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("fluidcloud: error: connection error")
    assert "fck_test_parsing" not in result.output


def test_missing_extra_prints_install_hint() -> None:
    code = (
        "import sys; sys.modules['rich'] = None\n"
        "from fluidcloud_async.cli import main\n"
        "main(['--help'])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 1
    assert "pip install 'fluidcloud-async[cli]'" in proc.stderr
    assert "Traceback" not in proc.stderr
