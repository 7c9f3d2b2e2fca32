"""Progress displays: plain lines off a terminal, a live rich display on one."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from fluidcloud_async.cli import _progress
from fluidcloud_async.cli._progress import (
    PlainDisplay,
    QuietDisplay,
    RichDisplay,
    _eta,
    _rate,
    make_display,
)

from .conftest import EmulatorInfo, run_cli


def test_rate_and_eta() -> None:
    assert _rate(0, 1.0) == "-"
    assert _rate(2048, 2.0) == "1.0 KiB/s"
    assert _eta(50, 100, 5.0) == "5s"
    assert _eta(1, 1000, 1.0) == "17m"
    assert _eta(100, 100, 3.0) == "0s"
    assert _eta(0, 100, 1.0) == "-"


def test_plain_display_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_progress, "PLAIN_INTERVAL", 0.0)
    with PlainDisplay(total=300, files=2) as display:
        a = display.add_file("a.bin", 100)
        b = display.add_file("b.bin", 200)
        a.update(50)
        a.finish(True, "id-a")
        b.update(10, 200)
        b.finish(False, "API error 500: boom")
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("progress 50 B of 300 B (17%), 0/2 files")
    assert any(line.startswith("done   a.bin (100 B,") and line.endswith("id-a") for line in err)
    assert "FAILED b.bin: API error 500: boom" in err
    assert display.done == 110
    assert display.finished == 2


def test_quiet_display_reports_only_failures(capsys: pytest.CaptureFixture[str]) -> None:
    with QuietDisplay(total=10, files=2) as display:
        display.add_file("ok", 5).finish(True)
        display.add_file("bad", 5).finish(False, "nope")
    assert capsys.readouterr().err == "FAILED bad: nope\n"


def test_rich_display_runs(capsys: pytest.CaptureFixture[str]) -> None:
    with RichDisplay(total=300, files=2) as display:
        a = display.add_file("x" * 80, 100)
        a.update(100)
        a.finish(True, "id")
        display.add_file("b", 200).finish(False, "bad")
    err = capsys.readouterr().err
    assert "FAILED b: bad" in err
    assert "done   " in err


def test_make_display_off_a_terminal() -> None:
    # pytest captures both streams, so neither is a terminal here.
    assert isinstance(make_display(1, 1), PlainDisplay)
    assert isinstance(make_display(1, 1, quiet=True), QuietDisplay)


def test_live_display_on_a_terminal(emulator: EmulatorInfo, tmp_path: Path) -> None:
    """Under a pseudo-terminal the upload shows rich bars and ends with the result table."""
    space = run_cli("--json", "spaces", "create", "tty", env=emulator.env).stdout
    space_id = space.split('"id": "')[1].split('"')[0]
    src = tmp_path / "tty.bin"
    src.write_bytes(os.urandom(300_000))
    master, slave = pty.openpty()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLUIDCLOUD_")},
        **emulator.env,
        "COLUMNS": "120",
        "TERM": "xterm",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fluidcloud_async",
            "files",
            "upload",
            str(src),
            "--space",
            space_id,
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            if not ready:
                break
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    out = b"".join(chunks).decode("utf-8", "replace")
    assert "tty.bin" in out
    assert "original_name" in out  # the result table
    assert "\x1b[" in out  # the live display drew on the terminal
