"""A real proxy server (proxy.py from the package index) per test module, with a recorder.

Each proxy runs as its own process on a free loopback port; ``Proxy.requests()`` returns
what it received so far (see ``_recorder``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ._recorder import LOG_ENV

ROOT = Path(__file__).resolve().parents[2]
PROXY_ENV = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@dataclass
class Proxy:
    port: int
    log: Path
    credentials: str | None = None

    @property
    def url(self) -> str:
        auth = f"{self.credentials}@" if self.credentials else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    def requests(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def clear(self) -> None:
        self.log.write_text("")


def _start(tmp: Path, *extra: str) -> Iterator[Proxy]:
    log = tmp / "requests.jsonl"
    log.write_text("")
    port_file = tmp / "port"
    env = {**os.environ, LOG_ENV: str(log), "PYTHONPATH": str(ROOT)}
    for name in PROXY_ENV:
        env.pop(name, None)
        env.pop(name.upper(), None)
    command = [
        sys.executable,
        "-m",
        "proxy",
        "--hostname",
        "127.0.0.1",
        "--port",
        "0",
        "--port-file",
        str(port_file),
        "--num-acceptors",
        "1",
        "--num-workers",
        "1",
        "--log-level",
        "WARNING",
        "--log-file",
        str(tmp / "proxy.log"),
        "--plugins",
        "tests.proxy._recorder.Recorder",
        *extra,
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    try:
        port = _wait_for_port(port_file, process)
        yield Proxy(port, log)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _wait_for_port(port_file: Path, process: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"proxy.py exited with {process.returncode}")
        text = port_file.read_text().strip() if port_file.exists() else ""
        if text:
            port = int(text.split()[0])
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return port
            except OSError:
                pass
        time.sleep(0.05)
    raise RuntimeError("proxy.py did not start listening")


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    yield from _start(tmp_path_factory.mktemp("proxy"))


@pytest.fixture(scope="module")
def auth_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """A proxy that demands Basic credentials ``fc:pr0xy-s3cret``."""
    for started in _start(tmp_path_factory.mktemp("auth-proxy"), "--basic-auth", "fc:pr0xy-s3cret"):
        started.credentials = "fc:pr0xy-s3cret"
        yield started
