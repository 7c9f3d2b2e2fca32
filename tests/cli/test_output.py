"""Output formats and error lines, in-process (CliRunner) against the session emulator."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from fluidcloud_async import ApiConnectionError, NotFoundError, RateLimitError, UploadError
from fluidcloud_async.cli._output import error_line, format_value, human_bytes, redact

from .conftest import EmulatorInfo

MISSING = "00000000-0000-4000-8000-000000000000"


def test_human_bytes() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1023) == "1023 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(5 * 1024**3) == "5.0 GiB"


def test_format_value() -> None:
    assert format_value("size", None) == "-"
    assert format_value("bytes_limit", -1) == "unlimited"
    assert format_value("links_limit", -1) == "unlimited"
    assert format_value("size", 2048) == "2.0 KiB"
    when = datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=timezone.utc)
    assert format_value("created_at", when) == "2026-01-02 03:04:05"
    assert format_value("revoked", True) == "yes"
    assert format_value("name", "a[b]") == "a[b]"


def test_error_lines() -> None:
    nf = NotFoundError(
        "not found", status=404, detail="not found", code=None, method="GET",
        url="http://h/api/v1/files/x?y=1",
    )  # fmt: skip
    assert error_line(nf) == "API error 404: not found (GET /api/v1/files/x?y=1)"
    scoped = NotFoundError(
        "insufficient_scope: needs files:read", status=403, code="insufficient_scope"
    )
    assert error_line(scoped) == "API error 403: insufficient_scope: needs files:read"
    coded = NotFoundError("nope", status=402, code="quota_exceeded")
    assert error_line(coded) == "API error 402: nope [quota_exceeded]"
    limited = RateLimitError("slow down", status=429, retry_after=2.0)
    assert error_line(limited).endswith("; retry after 2s")
    assert error_line(ApiConnectionError("cannot connect")).startswith("connection error: ")
    assert error_line(UploadError("part 3 failed")) == "UploadError: part 3 failed"
    missing = FileNotFoundError(2, "No such file or directory", "x.bin")
    assert error_line(missing) == "No such file or directory: x.bin"
    assert "--debug" in error_line(RuntimeError("boom"))
    assert error_line(RuntimeError("boom"), hint=False) == "unexpected RuntimeError: boom"


def test_redact() -> None:
    assert redact("key fck_live_abc123 here", ["fck_live_abc123"]) == "key fck_live_*** here"
    assert redact("nothing", [""]) == "nothing"


def test_spaces_json_and_table(invoke: Any, emulator: EmulatorInfo) -> None:
    created = invoke("--json", "spaces", "create", "Out [put]", env=emulator.env)
    assert created.exit_code == 0, created.output
    space = json.loads(created.stdout)
    assert set(space) >= {"id", "name", "created_at"}
    assert space["name"] == "Out [put]"
    listed = json.loads(invoke("spaces", "list", "--json", env=emulator.env).stdout)
    assert isinstance(listed, list)
    assert space["id"] in {s["id"] for s in listed}
    table = invoke("spaces", "list", env=emulator.env).stdout
    header = table.splitlines()[0].split()
    assert header == ["id", "name", "created_at"]
    assert any(space["id"] in line and "Out [put]" in line for line in table.splitlines())
    assert all(line == line.rstrip() for line in table.splitlines())
    record = invoke("spaces", "create", "plain", env=emulator.env).stdout
    assert record.splitlines()[1].split() == ["name", "plain"]


def test_folder_commands(invoke: Any, emulator: EmulatorInfo) -> None:
    env = emulator.env

    def js(*args: str) -> Any:
        result = invoke("--json", *args, env=env)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    space = js("spaces", "create", "folders")["id"]
    a = js("folders", "create", "a", "--space", space)
    b = js("folders", "create", "b", "--space", space, "--parent", a["id"])
    assert b["parent_id"] == a["id"]
    assert [f["name"] for f in js("folders", "list", "--space", space, "--parent", a["id"])] == [
        "b"
    ]
    assert js("folders", "rename", b["id"], "bee")["name"] == "bee"
    assert js("folders", "move", b["id"], "--root")["parent_id"] is None
    assert js("folders", "move", b["id"], "--parent", a["id"])["parent_id"] == a["id"]
    trashed = js("folders", "rm", a["id"])
    assert trashed["id"] == a["id"]
    assert [f["id"] for f in js("folders", "list", "--space", space, "--trash")] == [a["id"]]
    assert js("folders", "list", "--space", space) == []
    human = invoke("folders", "list", "--space", space, env=env)
    assert human.stdout.strip() == "no folders"
    assert js("folders", "restore", a["id"])["deleted_at"] is None
    deleted = invoke("folders", "delete", a["id"], env=env)
    assert "restore" in deleted.stdout


def test_quota_and_shares_list(invoke: Any, emulator: EmulatorInfo) -> None:
    quota = json.loads(invoke("quota", "usage", "--json", env=emulator.env).stdout)
    assert set(quota) == {"bytes_used", "bytes_limit", "links_used", "links_limit"}
    human = invoke("quota", "usage", env=emulator.env).stdout
    assert "storage:" in human
    assert "unlimited" in human
    shares = invoke("--json", "shares", "list", "--include-inactive", env=emulator.env)
    assert isinstance(json.loads(shares.stdout), list)


@pytest.mark.parametrize(
    "args",
    [
        ["files", "get", MISSING],
        ["files", "rm", MISSING],
        ["folders", "rename", MISSING, "x"],
        ["files", "public-url", MISSING],
    ],
)
def test_not_found_is_one_line_exit_1(invoke: Any, emulator: EmulatorInfo, args: list[str]) -> None:
    result = invoke(*args, env=emulator.env)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fluidcloud: error: API error 404")


def test_debug_shows_traceback_but_never_the_key(invoke: Any, emulator: EmulatorInfo) -> None:
    result = invoke("--debug", "files", "get", MISSING, env=emulator.env)
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert "debug: fluidcloud_async: GET /api/v1/files/" in result.stderr
    assert emulator.api_key not in result.output
    assert "fck_test_***" in result.stderr
    explicit = invoke("--debug", "--api-key", emulator.api_key, "spaces", "list", env={
        "FLUIDCLOUD_BASE_URL": emulator.base_url
    })  # fmt: skip
    assert explicit.exit_code == 0
    assert emulator.api_key not in explicit.output


def test_bad_key_is_401(invoke: Any, emulator: EmulatorInfo) -> None:
    env = {**emulator.env, "FLUIDCLOUD_API_KEY": "fck_test_wrong"}
    result = invoke("spaces", "list", env=env)
    assert result.exit_code == 1
    assert "API error 401" in result.stderr
    assert "fck_test_wrong" not in result.output
