"""Every command's behaviour, in-process (CliRunner) against the session emulator."""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fluidcloud_async.cli._app import cli

from .conftest import Cli

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def clean_file(fcx: Cli, tmp_path: Path) -> dict[str, Any]:
    """A space with one folder and one clean file (``data`` holds its bytes)."""
    space = fcx.json("spaces", "create", "cmds")["id"]
    folder = fcx.json("folders", "create", "f", "--space", space)["id"]
    data = bytes(range(256)) * 4096 + b"tail"
    src = tmp_path / "payload.bin"
    src.write_bytes(data)
    (file,) = fcx.json(
        "files", "upload", str(src), "--space", space, "--client-key", f"cmds/{space}", "--wait"
    )
    return {"space": space, "folder": folder, "file": file, "data": data}


def test_organize(fcx: Cli, clean_file: dict[str, Any]) -> None:
    fid, folder, space = clean_file["file"]["id"], clean_file["folder"], clean_file["space"]
    assert fcx.json("files", "rename", fid, "renamed.bin")["original_name"] == "renamed.bin"
    assert fcx.json("files", "move", fid, "--folder", folder)["folder_id"] == folder
    assert fcx.json("files", "move", fid, "--root")["folder_id"] is None
    updated = fcx.json("files", "update", fid, "--name", "final.bin", "--folder", folder)
    assert (updated["original_name"], updated["folder_id"]) == ("final.bin", folder)
    assert fcx.json("files", "update", fid, "--root")["folder_id"] is None
    trashed = fcx("files", "delete", fid)
    assert f"fluidcloud files restore {fid}" in trashed.stdout
    assert fcx.json("files", "list", "--space", space) == []
    trash = fcx("files", "list", "--trash").stdout
    assert "deleted_at" in trash.splitlines()[0]
    fcx("files", "restore", fid)
    table = fcx("files", "list", "--space", space).stdout
    assert table.splitlines()[0].split() == [
        "id", "original_name", "size", "scan_status", "client_key"
    ]  # fmt: skip
    assert fid in table


def test_links_and_shares(fcx: Cli, clean_file: dict[str, Any]) -> None:
    fid, data = clean_file["file"]["id"], clean_file["data"]
    public = fcx.json("files", "public-url", fid)
    assert public["expires_at"] is None
    signed = fcx.json("files", "signed-url", fid, "--days", "2", "--permission", "download")
    assert signed["expires_at"] is not None
    assert signed["permission"] == "download"
    human = fcx("files", "signed-url", fid)
    assert human.stdout.strip().startswith(fcx.emulator.raw_url)
    assert "expires 20" in human.stderr
    presigned = fcx("files", "download-url", fid).stdout.strip()
    with urllib.request.urlopen(presigned, timeout=10) as resp:
        assert resp.read() == data
    assert fcx.json("files", "download-url", fid)["url"].startswith("http")
    created = fcx.json("shares", "create", fid, "--days", "3", "--max-downloads", "5")
    assert created["max_downloads"] == 5
    listed = fcx.json("shares", "list", "--file", fid)
    assert len(listed) == 4
    assert all(s.get("url") is None for s in listed)
    fcx("shares", "revoke", signed["id"])
    assert signed["id"] not in {s["id"] for s in fcx.json("shares", "list", "--file", fid)}
    inactive = fcx.json("shares", "list", "--file", fid, "--include-inactive")
    assert {s["id"]: s["revoked"] for s in inactive}[signed["id"]] is True
    table = fcx("shares", "list", "--file", fid).stdout
    assert "download_count" in table.splitlines()[0]


def test_preview(fcx: Cli, clean_file: dict[str, Any], tmp_path: Path) -> None:
    # An octet-stream has no preview: a one-line 415.
    result = fcx("files", "preview", clean_file["file"]["id"], code=1)
    assert "API error 415" in result.stderr
    png = tmp_path / "p.txt"
    png.write_text("hello")
    (text,) = fcx.json("files", "upload", str(png), "--space", clean_file["space"], "--wait")
    assert fcx.json("files", "preview", text["id"])["kind"] == "text"


def test_public_upload_mints_a_link(fcx: Cli, tmp_path: Path) -> None:
    space = fcx.json("spaces", "create", "pub")["id"]
    src = tmp_path / "pub.txt"
    src.write_bytes(b"public")
    result = fcx("files", "upload", str(src), "--space", space, "--public")
    assert "public_url" in result.stdout.splitlines()[0]
    (file,) = fcx.json("files", "upload", str(src), "--space", space, "--public")
    with urllib.request.urlopen(file["public_url"], timeout=10) as resp:
        assert resp.read() == b"public"


def test_download_variants(fcx: Cli, clean_file: dict[str, Any], tmp_path: Path) -> None:
    file, data = clean_file["file"], clean_file["data"]
    target = tmp_path / "by-key.bin"
    info = fcx.json("files", "download", "--client-key", file["client_key"], str(target))
    assert target.read_bytes() == data
    assert (info["path"], info["verified"], info["file"]["id"]) == (str(target), True, file["id"])
    fcx("files", "download", file["id"], str(target), "-q", code=1)  # exists: refused
    unverified = fcx("files", "download", file["id"], str(target), "--no-verify", "-q", "--force")
    assert "SHA-256 not verified (--no-verify)" in unverified.stdout
    assert unverified.stderr == ""
    piped = CliRunner().invoke(cli, ["files", "download", file["id"], "-"], env=fcx.emulator.env)
    assert piped.exit_code == 0
    assert piped.stdout_bytes == data
    fcx("files", "download", MISSING, str(tmp_path / "none.bin"), code=1)
    assert not (tmp_path / "none.bin").exists()
    fcx("files", "download", file["id"], code=2)
    fcx("files", "download", "--client-key", "k", "a", "b", code=2)
    fcx("--json", "files", "download", file["id"], "-", code=2)


def test_bulk_failures_exit_1(fcx: Cli, tmp_path: Path) -> None:
    tree = tmp_path / "t"
    (tree / "sub").mkdir(parents=True)
    for name in ("a", "b", "sub/c"):
        (tree / name).write_bytes(name.encode())
    result = fcx("files", "upload", str(tree), "--space", MISSING, code=1)
    assert result.stdout.strip() == "nothing uploaded"
    failed = [line for line in result.stderr.splitlines() if line.startswith("FAILED ")]
    assert len(failed) == 3
    assert "API error 404" in failed[0]
    assert result.stderr.strip().splitlines()[-1] == "fluidcloud: error: 3 of 3 uploads failed"


def test_single_upload_failure_is_one_error_line(fcx: Cli, tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"x")
    result = fcx("files", "upload", str(tmp_path / "x"), "--space", MISSING, code=1)
    assert result.stdout == ""
    assert result.stderr.splitlines()[0].startswith("uploading ")
    (error,) = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert error.startswith("fluidcloud: error: API error 404: ")


def test_upload_usage_errors(fcx: Cli, tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"x")
    (tmp_path / "y").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    x, y = str(tmp_path / "x"), str(tmp_path / "y")
    fcx("files", "upload", x, "--space", MISSING, "--client-key", "k", "--keys-from-paths", code=2)
    fcx("files", "upload", x, y, "--space", MISSING, "--client-key", "k", code=2)
    fcx("files", "upload", x, "--space", MISSING, "--key-prefix", "p", code=2)
    fcx("files", "upload", str(tmp_path / "nope"), "--space", MISSING, code=2)
    fcx("files", "upload", str(tmp_path / "empty"), "--space", MISSING, code=2)
    # Two files with the same key in one batch are refused before any request.
    dup = fcx("files", "upload", x, x, "--space", MISSING, "--keys-from-paths", code=2)
    assert "Error:" in dup.stderr


def test_wait_timeout_and_import_url(fcx: Cli, clean_file: dict[str, Any]) -> None:
    fid = clean_file["file"]["id"]
    assert fcx("files", "wait", fid).stdout.strip().endswith(": clean")
    raw = fcx.json("files", "public-url", fid)["url"]
    imported = fcx.json(
        "uploads", "import-url", raw, "--space", clean_file["space"], "--name", "i.bin"
    )
    assert imported["original_name"] == "i.bin"
    assert (
        fcx.json("files", "wait", imported["id"])["sha256"]
        == hashlib.sha256(clean_file["data"]).hexdigest()
    )


def test_raw_upload_steps(fcx: Cli) -> None:
    space = fcx.json("spaces", "create", "raw")["id"]
    data = b"three steps\n"
    ticket = fcx.json(
        "uploads", "initiate", "--name", "raw.txt", "--size", str(len(data)), "--space", space,
        "--content-type", "text/plain",
    )  # fmt: skip
    assert (ticket["mode"], ticket["content_type"]) == ("single", "text/plain")
    headers = {"Content-Type": "text/plain"}  # exactly what the URL was signed for
    put = urllib.request.Request(ticket["upload_url"], data=data, method="PUT", headers=headers)
    with urllib.request.urlopen(put, timeout=10) as resp:
        assert resp.status == 200
    file = fcx.json(
        "uploads", "complete", "--file-id", ticket["file_id"], "--key", ticket["key"],
        "--name", "raw.txt", "--size", str(len(data)), "--space", space,
        "--sha256", hashlib.sha256(data).hexdigest(), "--client-key", f"raw/{space}",
    )  # fmt: skip
    assert (file["id"], file["size"]) == (ticket["file_id"], len(data))
    fcx("uploads", "complete", "--file-id", ticket["file_id"], "--key", "k", "--name", "n",
        "--size", "1", "--space", space, "--part", "1:x", code=2)  # fmt: skip
    fcx("uploads", "complete", "--file-id", ticket["file_id"], "--key", "k", "--name", "n",
        "--size", "1", "--space", space, "--upload-id", "u", "--part", "x", code=2)  # fmt: skip
