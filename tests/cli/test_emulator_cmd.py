"""`fluidcloud emulator` as a real process: banner lines, a working API, clean shutdown."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

from .conftest import run_cli


def _start(*args: str) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fluidcloud_async", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
        assert proc.stdout is not None
        proc.stdout.close()


def test_emulator_prints_url_and_key_lines(tmp_path: Path) -> None:
    proc, lines = _start("emulator", "--port", "0", "--data-dir", str(tmp_path))
    try:
        first, second = lines.get(timeout=30), lines.get(timeout=5)
        assert first.startswith("FLUIDCLOUD_BASE_URL=http://127.0.0.1:")
        assert second.startswith("FLUIDCLOUD_API_KEY=fck_test_")
        env = dict(line.split("=", 1) for line in (first, second))
        created = run_cli("--json", "spaces", "create", "from-cli", env=env)
        assert created.code == 0, created.stderr
        listed = run_cli("--json", "spaces", "list", env=env)
        assert [s["name"] for s in json.loads(listed.stdout)] == ["from-cli"]
    finally:
        code = _stop(proc)
    assert code == 0


def test_emulator_json_banner_and_passthrough_options() -> None:
    proc, lines = _start(
        "emulator", "--json", "--port", "0", "--api-key", "fck_test_fixed", "--bytes-limit", "10"
    )
    try:
        info = json.loads(lines.get(timeout=30))
        assert info["api_key"] == "fck_test_fixed"
        env = {"FLUIDCLOUD_BASE_URL": info["base_url"], "FLUIDCLOUD_API_KEY": info["api_key"]}
        quota = run_cli("quota", "usage", "--json", env=env)
        assert json.loads(quota.stdout)["bytes_limit"] == 10
    finally:
        assert _stop(proc) == 0


def test_emulator_bad_passthrough_option_is_usage_error() -> None:
    result = run_cli("emulator", "--port", "0", "--no-such-option")
    assert result.code == 2
    assert "--no-such-option" in result.stderr
