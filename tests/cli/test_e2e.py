"""The CLI end to end: `python -m fluidcloud_async ...` subprocesses against the emulator."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .conftest import EmulatorInfo, Run, run_cli

MISSING = "00000000-0000-4000-8000-000000000000"


class Cli:
    """Runs the CLI as a subprocess with the emulator's environment."""

    def __init__(self, emulator: EmulatorInfo) -> None:
        self.emulator = emulator

    def __call__(self, *args: str, code: int = 0) -> Run:
        result = run_cli(*args, env=self.emulator.env)
        assert result.code == code, (args, result.stdout, result.stderr)
        assert self.emulator.api_key not in result.stdout + result.stderr
        if "--debug" not in args:
            assert "Traceback" not in result.stderr
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self("--json", *args).stdout)


@pytest.fixture
def fc(emulator: EmulatorInfo) -> Cli:
    return Cli(emulator)


def test_file_lifecycle(fc: Cli, tmp_path: Path) -> None:
    space = fc.json("spaces", "create", "e2e")["id"]
    folder = fc.json("folders", "create", "inbox", "--space", space)["id"]
    data = b"hello from the command line\n" * 1000
    src = tmp_path / "hello.txt"
    src.write_bytes(data)

    uploaded = fc.json(
        "files", "upload", str(src), "--space", space, "--client-key", "e2e/hello.txt", "-q"
    )
    assert isinstance(uploaded, list)
    assert len(uploaded) == 1
    file = uploaded[0]
    assert file["size"] == len(data)
    assert file["sha256"] == hashlib.sha256(data).hexdigest()
    assert file["client_key"] == "e2e/hello.txt"
    fid = file["id"]

    assert fc.json("files", "wait", fid, "--timeout", "30")["scan_status"] == "clean"
    assert [f["id"] for f in fc.json("files", "list", "--space", space)] == [fid]
    assert fc.json("files", "get", fid)["original_name"] == "hello.txt"
    assert fc.json("files", "resolve", "e2e/hello.txt")["id"] == fid
    human = fc("files", "get", fid).stdout
    assert "original_name" in human
    assert "hello.txt" in human

    # A permanent public link: the URL alone on stdout, and it serves the exact bytes.
    public = fc("files", "public-url", fid)
    url = public.stdout.strip()
    assert url.startswith(fc.emulator.raw_url)
    assert "shares revoke" in public.stderr
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == data
    signed = fc.json("files", "signed-url", fid, "--days", "2", "--permission", "download")
    assert signed["expires_at"] is not None
    assert signed["permission"] == "download"
    presigned = fc("files", "download-url", fid).stdout.strip()
    with urllib.request.urlopen(presigned, timeout=10) as resp:
        assert resp.read() == data

    # Organize: rename, move into the folder and back, trash and restore.
    assert fc.json("files", "rename", fid, "renamed.txt")["original_name"] == "renamed.txt"
    assert fc.json("files", "move", fid, "--folder", folder)["folder_id"] == folder
    listed = fc.json("files", "list", "--space", space, "--folder", folder)
    assert [f["id"] for f in listed] == [fid]
    assert fc.json("files", "move", fid, "--root")["folder_id"] is None
    updated = fc.json("files", "update", fid, "--name", "final.txt", "--folder", folder)
    assert (updated["original_name"], updated["folder_id"]) == ("final.txt", folder)
    fc("files", "rm", fid)
    assert fid in {f["id"] for f in fc.json("files", "list", "--trash")}
    assert fc.json("files", "list", "--space", space, "--folder", folder) == []
    assert fc.json("files", "restore", fid)["deleted_at"] is None

    # Shares: both links are listed (without tokens); revoke one.
    shares = fc.json("shares", "list", "--file", fid)
    assert {s["id"] for s in shares} == {public_id(fc, fid, shares), signed["id"]}
    assert all(s.get("url") is None for s in shares)
    assert fc.json("shares", "revoke", signed["id"]) == {"id": signed["id"], "revoked": True}
    active = fc.json("shares", "list", "--file", fid)
    assert [s["id"] for s in active] != [] and signed["id"] not in {s["id"] for s in active}
    everything = fc.json("shares", "list", "--file", fid, "--include-inactive")
    assert {s["id"]: s["revoked"] for s in everything}[signed["id"]] is True
    created = fc.json("shares", "create", fid, "--days", "3", "--max-downloads", "5")
    assert created["max_downloads"] == 5

    quota = fc.json("quota", "usage")
    assert quota["bytes_used"] >= len(data)
    assert quota["links_used"] >= 2


def public_id(fc: Cli, fid: str, shares: list[dict[str, Any]]) -> str:
    """The id of the permanent link among ``shares`` (the one without an expiry)."""
    (permanent,) = [s["id"] for s in shares if s["expires_at"] is None]
    return permanent


def test_errors_exit_codes_and_secrecy(fc: Cli) -> None:
    missing = fc("files", "get", MISSING, code=1)
    assert missing.stdout == ""
    (line,) = missing.stderr.strip().splitlines()
    assert line.startswith("fluidcloud: error: API error 404")
    usage = fc("files", "move", MISSING, code=2)
    assert "--root" in usage.stderr
    fc("spaces", "frobnicate", code=2)
    debug = fc("--debug", "files", "get", MISSING, code=1)
    assert "fck_test_***" in debug.stderr
    not_clean = fc("--max-retries", "0", "files", "public-url", MISSING, code=1)
    assert "404" in not_clean.stderr
