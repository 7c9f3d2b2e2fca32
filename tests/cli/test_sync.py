"""``fluidcloud files sync``: new and changed files up, unchanged ones reported, resumable."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fluidcloud_async.emulator import EmulatorConfig, Faults

from .conftest import Cli, EmulatorInfo, threaded_emulator


@pytest.fixture(autouse=True)
def private_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default hash cache goes under this test's directory, never the user's."""
    home = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


def _tree(root: Path, n: int = 6, size: int = 10) -> None:
    for i in range(n):
        path = root / f"d{i % 2}" / f"f{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes([65 + i]) * size)


def _space(cli: Cli) -> str:
    return str(cli.json("spaces", "create", "sync")["id"])


def _stored(cli: Cli, space: str) -> tuple[list[str], int]:
    live = [f["client_key"] for f in cli.json("files", "list", "--space", space)]
    trash = [f for f in cli.json("files", "list", "--trash") if f["space_id"] == space]
    return sorted(live), len(trash)


def test_sync_uploads_new_and_changed_files_and_reports_unchanged(
    fcx: Cli, tmp_path: Path, private_cache_home: Path
) -> None:
    root = tmp_path / "tree"
    _tree(root)
    space = _space(fcx)
    keys = sorted(f"p/d{i % 2}/f{i}.txt" for i in range(6))

    dry = fcx("files", "sync", str(root), "--space", space, "--key-prefix", "p", "--dry-run")
    assert dry.stdout.startswith("would upload 6 (60 B), unchanged 0, skipped 0, failed 0")
    assert dry.stderr.count("would upload ") == 6
    assert _stored(fcx, space) == ([], 0)  # a dry run writes nothing

    first = fcx("files", "sync", str(root), "--space", space, "--key-prefix", "p")
    assert first.stdout.startswith("uploaded 6 (60 B), unchanged 0, skipped 0, failed 0 in ")
    assert first.stdout.rstrip().endswith("/s)")
    assert _stored(fcx, space) == (keys, 0)
    cache = private_cache_home / "fluidcloud" / "hashes.sqlite"

    again = fcx.json("files", "sync", str(root), "--space", space, "--key-prefix", "p")
    assert again["summary"]["uploaded"] == 0 and again["summary"]["unchanged"] == 6
    assert {r["status"] for r in again["files"]} == {"unchanged"}
    assert all(r["id"] for r in again["files"])
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700

    (root / "d0" / "f0.txt").write_bytes(b"changed, and longer")
    dry = fcx.json("files", "sync", str(root), "--space", space, "--key-prefix", "p", "--dry-run")
    changed = [r for r in dry["files"] if r["status"] == "would upload"]
    assert [(r["client_key"], r["change"]) for r in changed] == [
        ("p/d0/f0.txt", "changed (stored 10 bytes)")
    ]
    assert dry["summary"]["dry_run"] is True and dry["summary"]["unchanged"] == 5
    assert _stored(fcx, space) == (keys, 0)

    done = fcx("files", "sync", str(root), "--space", space, "--key-prefix", "p", "-v")
    assert done.stdout.startswith("uploaded 1 (19 B), unchanged 5,")
    assert done.stderr.count("unchanged ") == 5
    assert _stored(fcx, space) == (keys, 1)  # the old version superseded, once


def test_usage_errors(fcx: Cli, tmp_path: Path) -> None:
    space = _space(fcx)
    (tmp_path / "f").write_bytes(b"x")
    fcx("files", "sync", str(tmp_path / "f"), "--space", space, code=2)
    both = fcx(
        "files", "sync", str(tmp_path), "--space", space,
        "--hash-cache", str(tmp_path / "c"), "--no-hash-cache", code=2,
    )  # fmt: skip
    assert "at most one of --hash-cache and --no-hash-cache" in both.stderr


def test_exit_status_1_when_a_file_fails(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    _tree(root, n=3, size=40)
    (root / "huge.bin").write_bytes(b"h" * 500)  # over the tenant's 200-byte quota
    config = EmulatorConfig(scan_delay=0.01, default_bytes_limit=200)
    with threaded_emulator(config) as emu:
        cli = Cli(emu, in_process=True)
        space = _space(cli)
        out = cli("--json", "files", "sync", str(root), "--space", space, "--no-hash-cache", code=1)
        data = json.loads(out.stdout)
        assert data["summary"]["failed"] == 1 and data["summary"]["uploaded"] == 3
        failed = [r for r in data["files"] if r["status"] == "failed"]
        assert failed[0]["client_key"] == "huge.bin" and "402" in failed[0]["error"]


def _sync_process(emu: EmulatorInfo, root: Path, space: str, cache: Path) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUIDCLOUD_")}
    return subprocess.Popen(
        [sys.executable, "-m", "fluidcloud_async", "files", "sync", str(root), "--space", space,
         "--max-files", "3", "--hash-cache", str(cache)],
        env={**env, **emu.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def test_a_killed_sync_resumes_without_duplicates(tmp_path: Path) -> None:
    """SIGKILL mid-run (no cleanup at all), then the same command: every file stored once."""
    root = tmp_path / "tree"
    _tree(root, n=18, size=16 * 1024)
    # Slow storage: each 16 KiB file takes ~0.5 s, so the run is killed midway.
    config = EmulatorConfig(scan_delay=0.01, faults=Faults(storage_bandwidth=32 * 1024))
    with threaded_emulator(config) as emu:
        cli = Cli(emu, in_process=True)
        space = _space(cli)
        proc = _sync_process(emu, root, space, tmp_path / "cache.sqlite")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(_stored(cli, space)[0]) < 3:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        stored_before, _ = _stored(cli, space)
        assert 3 <= len(stored_before) < 18

        proc = _sync_process(emu, root, space, tmp_path / "cache.sqlite")
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out.startswith(f"uploaded {18 - len(stored_before)} (")
        assert f"unchanged {len(stored_before)}," in out
        live, trashed = _stored(cli, space)
        assert live == sorted(f"d{i % 2}/f{i}.txt" for i in range(18))  # each key once
        assert trashed == 0  # and no superseded twin
