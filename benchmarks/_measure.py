"""Run each client in its own process and measure it: wall time, CPU, RSS; and medians.

Python clients run as ``python -m benchmarks._child module:function '<json args>'``; the
function calls ``meter.start()`` / ``meter.stop()`` around the measured work, so interpreter
start-up and imports are not counted. External programs (curl) are measured whole: CPU
through ``os.wait4``, peak RSS by polling the child's ``VmHWM``.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
CLIENT_TIMEOUT = 600.0
RESULT_PREFIX = "BENCH-RESULT "


def current_rss() -> int:
    """Resident set size of this process now, in bytes (Linux /proc)."""
    with open("/proc/self/statm", "rb") as fh:
        resident_pages = int(fh.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def peak_rss(pid: int | str = "self") -> int | None:
    """Peak RSS (``VmHWM``) of a process's current image, in bytes; None once it is gone.

    Not ``ru_maxrss``: the kernel carries that across exec, so a child started by a big
    parent reports the parent's peak as its own.
    """
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _cpu(usage: resource.struct_rusage) -> tuple[float, float]:
    return usage.ru_utime, usage.ru_stime


class Meter:
    """Brackets the measured part of a client run (wall, CPU of all threads, RSS)."""

    def __init__(self) -> None:
        self.extra: dict[str, Any] = {}
        self._t0 = self._t1 = 0.0
        self._cpu0 = self._cpu1 = (0.0, 0.0)
        self.rss_start = 0

    def start(self) -> None:
        self.rss_start = current_rss()
        self._cpu0 = _cpu(resource.getrusage(resource.RUSAGE_SELF))
        self._t0 = time.perf_counter()

    def stop(self) -> None:
        self._t1 = time.perf_counter()
        self._cpu1 = _cpu(resource.getrusage(resource.RUSAGE_SELF))

    def result(self) -> dict[str, Any]:
        user = self._cpu1[0] - self._cpu0[0]
        system = self._cpu1[1] - self._cpu0[1]
        peak = peak_rss() or 0
        return {
            "wall_s": self._t1 - self._t0,
            "cpu_user_s": user,
            "cpu_sys_s": system,
            "cpu_s": user + system,
            "rss_start": self.rss_start,
            "peak_rss": peak,
            "rss_growth": max(0, peak - self.rss_start),
            **self.extra,
        }


class ClientFailed(RuntimeError):
    """A client process exited badly or printed no result; ``detail`` is its stderr tail."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


def failure(exc: ClientFailed) -> dict[str, Any]:
    """How a failed run is recorded: the last error line, and the stderr tail."""
    return {"error": str(exc), "error_detail": exc.detail}


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


class _PeakWatcher(threading.Thread):
    """Polls an external child's VmHWM (monotonic) until it exits; ``peak`` is the last read."""

    INTERVAL = 0.01

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.INTERVAL):  # bounded by the child's life
            value = peak_rss(self.pid)
            if value is None:
                return
            self.peak = max(self.peak, value)


def _wait(
    proc: subprocess.Popen[bytes], timeout: float, watcher: _PeakWatcher | None = None
) -> tuple[int, resource.struct_rusage]:
    timer = threading.Timer(timeout, proc.kill)  # a hung client must not hang the run
    timer.start()
    try:
        _pid, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.done.set()
            watcher.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage


def _stderr_tail(fh: Any) -> str:
    fh.seek(0)
    return fh.read().decode(errors="replace")[-3000:]


def run_python(
    target: str,
    args: dict[str, Any],
    *,
    timeout: float = CLIENT_TIMEOUT,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``module:function`` in a fresh interpreter (``env``: its whole environment,
    default ours); its measured result."""
    argv = [sys.executable, "-m", "benchmarks._child", target, json.dumps(args)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        code, _usage = _wait(proc, timeout)
        out.seek(0)
        lines = [ln for ln in out.read().decode().splitlines() if ln.startswith(RESULT_PREFIX)]
        if code != 0 or not lines:
            tail = _stderr_tail(err)
            raise ClientFailed(f"{target} exited {code}: {_last_line(tail)}", tail)
    result: dict[str, Any] = json.loads(lines[-1][len(RESULT_PREFIX) :])
    return result


def run_command(
    argv: Sequence[str], *, timeout: float = CLIENT_TIMEOUT, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run an external client; wall time, CPU and peak RSS of the whole process, and stdout.

    CPU counts the processes it waited for too (a shell running two programs)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env
        )
        watcher = _PeakWatcher(proc.pid)
        watcher.start()
        code, usage = _wait(proc, timeout, watcher)
        wall = time.perf_counter() - t0
        out.seek(0)
        stdout = out.read().decode(errors="replace")
        if code != 0:
            tail = _stderr_tail(err)
            raise ClientFailed(f"{argv[0]} exited {code}: {_last_line(tail)}", tail)
    return {
        "wall_s": wall,
        "cpu_user_s": usage.ru_utime,
        "cpu_sys_s": usage.ru_stime,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "rss_start": None,
        "peak_rss": watcher.peak or None,
        "rss_growth": None,
        "stdout": stdout,
    }


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(runs: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    """Median of each key over the repetitions (None when no run has it)."""
    return {key: median(run.get(key) for run in runs) for key in keys}


def rotate(items: Sequence[Any], rep: int) -> list[Any]:
    """The run order of repetition ``rep``: rotated, so no client always runs first or last."""
    if not items:
        return []
    k = rep % len(items)
    return list(items[k:]) + list(items[:k])
