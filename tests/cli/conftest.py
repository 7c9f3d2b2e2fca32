"""CLI test fixtures: one emulator per session (in a background thread, so both
in-process CliRunner calls and CLI subprocesses can reach it) and two ways to run the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner, Result

from fluidcloud_async.cli._app import cli
from fluidcloud_async.emulator import Emulator, EmulatorConfig


@dataclass
class EmulatorInfo:
    base_url: str
    api_key: str
    raw_url: str

    @property
    def env(self) -> dict[str, str]:
        return {"FLUIDCLOUD_BASE_URL": self.base_url, "FLUIDCLOUD_API_KEY": self.api_key}


@contextlib.contextmanager
def threaded_emulator(config: EmulatorConfig) -> Iterator[EmulatorInfo]:
    """A running emulator in its own thread and event loop, stopped on exit."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        async with Emulator(config) as emu:
            state.update(loop=asyncio.get_running_loop(), stop=stop, emu=emu)
            ready.set()
            await stop.wait()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # surfaced by the fixture, not lost in the thread
            state["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, name="cli-test-emulator", daemon=True)
    thread.start()
    assert ready.wait(30), "emulator did not start"
    if "error" in state:
        raise state["error"]
    emu: Emulator = state["emu"]
    try:
        yield EmulatorInfo(emu.base_url, emu.api_key, emu.raw_url)
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(30)


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorInfo]:
    """The emulator most CLI tests share (fast scans)."""
    with threaded_emulator(EmulatorConfig(scan_delay=0.05)) as info:
        yield info


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, cwd: str | None = None
) -> Run:
    """Run ``python -m fluidcloud_async ARGS`` as a subprocess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FLUIDCLOUD_")}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "fluidcloud_async", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run the CLI in-process with CliRunner (no FLUIDCLOUD_* from the outer environment)."""
    for name in ("FLUIDCLOUD_API_KEY", "FLUIDCLOUD_BASE_URL"):
        monkeypatch.delenv(name, raising=False)

    def call(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return call


class Cli:
    """Runs the CLI against an emulator and checks the status and the output's hygiene.

    ``in_process=False`` runs ``python -m fluidcloud_async`` (the real entry point);
    ``True`` uses CliRunner, ~100x faster, for the bulk of per-command checks.
    """

    def __init__(self, emulator: EmulatorInfo, *, in_process: bool) -> None:
        self.emulator = emulator
        self.in_process = in_process

    def run(self, *args: str) -> Run:
        if not self.in_process:
            return run_cli(*args, env=self.emulator.env)
        result = CliRunner().invoke(cli, list(args), env=self.emulator.env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Run(result.exit_code, result.stdout, result.stderr)

    def __call__(self, *args: str, code: int = 0) -> Run:
        result = self.run(*args)
        assert result.code == code, (args, result.stdout, result.stderr)
        assert self.emulator.api_key not in result.stdout + result.stderr
        if "--debug" not in args:
            assert "Traceback" not in result.stderr
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self("--json", *args).stdout)


@pytest.fixture
def fc(emulator: EmulatorInfo) -> Cli:
    """The CLI as a subprocess."""
    return Cli(emulator, in_process=False)


@pytest.fixture
def fcx(emulator: EmulatorInfo) -> Cli:
    """The CLI in-process (CliRunner)."""
    return Cli(emulator, in_process=True)
