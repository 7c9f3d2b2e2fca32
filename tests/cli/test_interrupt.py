"""Ctrl-C during an upload: exit 130, one line, no traceback, nothing completed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fluidcloud_async.emulator import EmulatorConfig, Faults

from .conftest import EmulatorInfo, run_cli, threaded_emulator


@pytest.fixture(scope="module")
def slow_emulator() -> Iterator[EmulatorInfo]:
    """Storage paced at 256 KiB/s, so an upload of a few MiB is still running at Ctrl-C."""
    config = EmulatorConfig(faults=Faults(storage_bandwidth=256 * 1024))
    with threaded_emulator(config) as info:
        yield info


def _env(emulator: EmulatorInfo) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FLUIDCLOUD_")}
    return {**base, **emulator.env}


@pytest.mark.parametrize("paths", ["one", "dir"])
def test_ctrl_c_stops_upload_cleanly(
    slow_emulator: EmulatorInfo, tmp_path: Path, paths: str
) -> None:
    env = _env(slow_emulator)
    space = json.loads(run_cli("--json", "spaces", "create", "ctrl-c", env=env).stdout)["id"]
    big = tmp_path / "data" / "big.bin"
    big.parent.mkdir()
    big.write_bytes(os.urandom(4 * 1024 * 1024))
    target = str(big if paths == "one" else big.parent)
    args = ["files", "upload", target, "--space", space, "--keys-from-paths"][
        : 5 if paths == "one" else 6
    ]
    with subprocess.Popen(
        [sys.executable, "-m", "fluidcloud_async", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            # The plain display's first line comes just before the first request; 4 MiB
            # at 256 KiB/s then takes 16 s, so half a second later the PUT is in flight.
            assert proc.stderr is not None
            assert proc.stderr.readline().startswith("uploading ")
            time.sleep(0.5)
            assert proc.poll() is None, proc.communicate()
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "fluidcloud: interrupted" in stderr
    assert stdout == ""
    listed = run_cli("--json", "files", "list", "--space", space, env=env)
    assert json.loads(listed.stdout) == []
