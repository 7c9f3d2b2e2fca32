"""Servers in their own processes, so a client's CPU and memory are measured alone.

A server module exposes ``async def start(config: dict) -> Server`` where the server has
``info`` (sent to the parent once listening), ``stats() -> dict`` and ``async aclose()``.
The parent starts ``python -m benchmarks._procs module:start '<json>'`` and drives it with
one command per line on its stdin (``stats`` or ``stop``); answers are JSON lines.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import resource
import select
import subprocess
import sys
from types import TracebackType
from typing import IO, Any, Protocol

START_TIMEOUT = 60.0
REPLY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
MAX_LINE = 1 << 20


class Server(Protocol):
    info: dict[str, Any]

    def stats(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _send(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def _serve(target: str, config: dict[str, Any]) -> None:
    module_name, _, func = target.partition(":")
    start = getattr(importlib.import_module(module_name), func)
    server: Server = await start(config)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    _send(server.info)
    try:
        while True:  # ends on "stop" or when the parent closes the pipe
            command = (await reader.readline()).decode().strip()
            if command == "stats":
                _send({**server.stats(), "server_cpu_s": _cpu_seconds()})
            elif command in ("stop", ""):
                return
    finally:
        await server.aclose()


class ServerFailed(RuntimeError):
    """A server process died or stopped answering."""


class ServerProcess:
    """``with ServerProcess("benchmarks._sink:start", {...}) as srv: srv.info, srv.stats()``."""

    def __init__(self, target: str, config: dict[str, Any]) -> None:
        self._target = target
        self._config = config
        self._proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> ServerProcess:
        argv = [sys.executable, "-m", "benchmarks._procs", self._target, json.dumps(self._config)]
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            self.info = self._reply(START_TIMEOUT)
        except BaseException:
            self._kill()
            raise
        return self

    def _reply(self, timeout: float) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        out: IO[bytes] = self._proc.stdout
        ready, _, _ = select.select([out], [], [], timeout)
        line = out.readline(MAX_LINE) if ready else b""
        if not line:
            raise ServerFailed(f"{self._target}: no answer (exit code {self._proc.poll()})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def stats(self) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(b"stats\n")
        self._proc.stdin.flush()
        return self._reply(REPLY_TIMEOUT)

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(STOP_TIMEOUT)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is None:
            return
        try:
            if self._proc.stdin is not None:
                self._proc.stdin.write(b"stop\n")
                self._proc.stdin.close()
            self._proc.wait(STOP_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            self._kill()
            if self._proc.stdout is not None:
                self._proc.stdout.close()


def main(argv: list[str]) -> int:
    target, raw = argv
    # Our stdout is the control channel: keep library prints off it.
    control = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(control, "w")
    asyncio.run(_serve(target, json.loads(raw)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
