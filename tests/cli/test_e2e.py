"""The CLI end to end as a user runs it: `python -m fluidcloud_async ...` subprocesses
against the emulator. Per-command details live in test_commands.py (in-process)."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path

from .conftest import Cli

MISSING = "00000000-0000-4000-8000-000000000000"


def test_file_lifecycle(fc: Cli, tmp_path: Path) -> None:
    space = fc.json("spaces", "create", "e2e")["id"]
    folder = fc.json("folders", "create", "inbox", "--space", space)["id"]
    data = b"hello from the command line\n" * 1000
    src = tmp_path / "hello.txt"
    src.write_bytes(data)

    (file,) = fc.json(
        "files", "upload", str(src), "--space", space, "--folder", folder,
        "--client-key", "e2e/hello.txt",
    )  # fmt: skip
    assert file["size"] == len(data)
    assert file["sha256"] == hashlib.sha256(data).hexdigest()
    assert (file["client_key"], file["folder_id"]) == ("e2e/hello.txt", folder)
    fid = file["id"]

    assert fc.json("files", "wait", fid, "--timeout", "30")["scan_status"] == "clean"
    listed = fc.json("files", "list", "--space", space, "--folder", folder)
    assert [f["id"] for f in listed] == [fid]
    assert "hello.txt" in fc("files", "get", fid).stdout
    assert fc.json("files", "resolve", "e2e/hello.txt")["id"] == fid

    # A permanent public link: the URL alone on stdout, and it serves the exact bytes.
    public = fc("files", "public-url", fid)
    url = public.stdout.strip()
    assert url.startswith(fc.emulator.raw_url)
    assert "shares revoke" in public.stderr
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == data

    # Download through the SDK's verified path into a directory.
    out = tmp_path / "out"
    out.mkdir()
    assert "SHA-256 verified" in fc("files", "download", fid, str(out)).stdout
    assert (out / "hello.txt").read_bytes() == data

    fc("files", "rm", fid)
    assert fid in {f["id"] for f in fc.json("files", "list", "--trash")}
    assert fc.json("files", "restore", fid)["deleted_at"] is None

    (share,) = fc.json("shares", "list", "--file", fid)
    assert share.get("url") is None  # tokens are never listed
    assert fc.json("shares", "revoke", share["id"]) == {"id": share["id"], "revoked": True}
    assert fc.json("shares", "list", "--file", fid) == []
    assert fc.json("quota", "usage")["bytes_used"] >= len(data)


def test_upload_directory_with_keys_from_paths(fc: Cli, tmp_path: Path) -> None:
    space = fc.json("spaces", "create", "bulk")["id"]
    tree = tmp_path / "site"
    files = {
        "a.txt": b"alpha\n",
        "sub/b.bin": bytes(range(256)) * 300,
        "sub/deeper/c.csv": b"x,y\n1,2\n",
    }
    for rel, data in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    result = fc(
        "--json", "files", "upload", str(tree), "--space", space, "--keys-from-paths",
        "--key-prefix", "job-1", "--wait", "--max-files", "2", "--concurrency", "3",
    )  # fmt: skip
    uploaded = json.loads(result.stdout)
    assert {f["client_key"] for f in uploaded} == {f"job-1/{rel}" for rel in files}
    assert all(f["scan_status"] == "clean" for f in uploaded)
    # stderr is not a terminal: plain progress, one line per finished file.
    assert sum(line.startswith("done   ") for line in result.stderr.splitlines()) == 3
    found = fc.json("files", "resolve", "job-1/sub/b.bin")
    assert found["sha256"] == hashlib.sha256(files["sub/b.bin"]).hexdigest()


def test_exit_codes_and_secrecy(fc: Cli) -> None:
    missing = fc("files", "get", MISSING, code=1)
    assert missing.stdout == ""
    (line,) = missing.stderr.strip().splitlines()
    assert line.startswith("fluidcloud: error: API error 404: ")
    assert "--root" in fc("files", "move", MISSING, code=2).stderr
    fc("spaces", "frobnicate", code=2)
    debug = fc("--debug", "files", "get", MISSING, code=1)  # checks the key is not shown
    assert "Traceback" in debug.stderr
    assert "fck_test_***" in debug.stderr
