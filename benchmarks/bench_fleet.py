"""Group: one API key shared by three processes, through Redis or not.

Three worker processes ingest small files with ``upload_many`` on one key against the
emulator with per-key rate limits on, time-scaled so a window lasts 19.6 s. The caps are a
fifth of the documented ones (120 requests, 60 initiates per window): with the documented
ones the emulator, one Python process, looked like the bottleneck on 2 cores (~58 requests/s
served, both rows at ~75 % of the cap, even the one offering three times the cap). Each
worker uses ``RateLimit(window=19.6)``: in memory (each process believes it owns the whole
budget) or with ``storage="redis://..."`` on a throwaway ``redis-server`` (one shared
budget). Redis counts whole seconds, so there the window with the SDK's 2 % margin is
20 s, as the real 60 s window becomes 61 s: a 0.4 s margin for the spread of the delay
from logging a request to its arrival (two cores shared with other test runs).

Figures: the fraction of the cap kept, ``(files - cap) / span / (cap / window)`` (the
first window's burst left out, so a perfect limiter scores ~1.0 however many windows the
run spans; span from the first worker's start to the last one's end), and the 429s among
the API requests the emulator answered.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import bench_dask
from ._common import Settings, summarize_clients
from ._common import target as make_target
from ._measure import ClientFailed, Meter, failure, run_python
from ._procs import ServerProcess

NAME = "fleet"
TITLE = "One key shared by 3 processes or 2 Dask workers (Redis) vs not shared"
SHARED = "3 processes, RateLimit(storage=redis)"
UNSHARED = "3 processes, RateLimit() in memory each"
WORKERS = 3
MIN_CAP_FRACTION = 0.95
MAX_429_SHARE = 0.01


async def worker(args: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """Wait for the common start, then ``upload_many`` ``files`` small blobs on the key."""
    import asyncio

    from fluidcloud_async import AsyncFluidCloud, RateLimit

    limit = RateLimit(**args["rate_limit"])
    items = [
        (f"{args['prefix']} {i}".encode() * 8, {"client_key": f"{args['prefix']}/{i:05d}"})
        for i in range(args["files"])
    ]
    failed = 0
    async with AsyncFluidCloud(args["api_key"], base_url=args["base_url"]) as fc:
        await asyncio.sleep(max(0.0, args["start_at"] - time.time()))
        started = time.time()
        meter.start()
        results = await fc.files.upload_many(items, args["space_id"], rate_limit=limit)
        meter.stop()
        ended = time.time()
        failed = sum(not r.ok for r in results)
    if failed:
        raise RuntimeError(f"{failed} of {len(items)} files failed")
    return {
        "files": len(items),
        "started": started,
        "ended": ended,
        "late_s": started - args["start_at"],
    }


def _plan(settings: Settings) -> dict[str, Any]:
    if settings.quick:
        return {"requests": 60, "initiate": 30, "window": 1.8, "files": 30, "reps": 1, "lead": 3}
    return {
        "requests": 120,
        "initiate": 60,
        "window": 19.6,
        "files": 100,
        "reps": settings.reps,
        "lead": 6,  # seconds for every worker to import before the common start
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server(exe: str) -> Iterator[str]:
    """A throwaway ``redis-server`` on a free loopback port, without persistence."""
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as workdir:
        port = _free_port()
        argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir]
        proc = subprocess.Popen(
            [*argv, "--appendonly", "no"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                        sock.sendall(b"PING\r\n")
                        if sock.recv(16).startswith(b"+PONG"):
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise ClientFailed(f"redis-server did not start on port {port}")
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.kill()
            proc.wait(10)


def plan_settings(plan: dict[str, Any], storage: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The emulator's time-scaled limits and the clients' ``RateLimit`` settings of ``plan``."""
    emulator = {
        "rate_limits": True,
        "rate_limit_time_scale": 60.0 / plan["window"],
        "rate_limit_default": plan["requests"],
        "rate_limit_initiate": plan["initiate"],
        "scan_delay": 0.0,
    }
    rate_limit = {
        "requests": plan["requests"],
        "initiate": plan["initiate"],
        "window": plan["window"],
        "storage": storage,
    }
    return emulator, rate_limit


def _fleet(plan: dict[str, Any], storage: str) -> dict[str, Any]:
    """Three workers on one emulator key; the fleet's figures."""
    emulator, rate_limit = plan_settings(plan, storage)
    with ServerProcess("benchmarks._emu:start", {"emulator": emulator}) as emu:
        # Every worker imported by then, and the emulator's set-up request (creating the
        # space) out of its window: it counts against the key but is in no client's log, and
        # alone it made one request per run a 429 (and the shrink cost a window).
        start_at = time.time() + max(plan["lead"], plan["window"] + 0.5)
        runs: list[dict[str, Any]] = [{} for _ in range(WORKERS)]

        def one(index: int) -> None:
            args = {
                **emu.info,
                "files": plan["files"],
                "prefix": f"w{index}",
                "rate_limit": rate_limit,
                "start_at": start_at,
            }
            try:
                runs[index] = run_python("benchmarks.bench_fleet:worker", args)
            except ClientFailed as exc:
                runs[index] = failure(exc)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = emu.stats()
    errors = [r["error"] for r in runs if r.get("error")]
    if errors:
        return {"error": errors[0]}
    files = sum(r["files"] for r in runs)
    span = max(r["ended"] for r in runs) - min(r["started"] for r in runs)
    cap_rate = plan["initiate"] / plan["window"]
    requests, limited = stats["api_requests"], stats["rate_limited"]
    return {
        "files": files,
        "wall_s": span,
        "files_s": files / span,
        "cap_files_s": cap_rate,
        "cap_fraction": (files - plan["initiate"]) / span / cap_rate,
        "api_requests": requests,
        "rate_limited": limited,
        "share_429": limited / requests if requests else 0.0,
        "cpu_s": sum(r.get("cpu_s", 0.0) for r in runs),
        "max_late_s": max(r["late_s"] for r in runs),
    }


def run(settings: Settings) -> dict[str, Any]:
    plan = _plan(settings)
    notes: list[str] = []
    exe = shutil.which("redis-server")
    if exe is None:
        notes.append("redis-server is not installed: no shared row (apt-get install redis-server).")
    reps: list[dict[str, dict[str, Any]]] = []
    for rep in range(plan["reps"]):
        settings.say(f"[{NAME}] repetition {rep + 1}/{plan['reps']}")
        results: dict[str, dict[str, Any]] = {}
        if exe is not None:
            with redis_server(exe) as url:
                results[SHARED] = _fleet(plan, url)
            settings.say(f"  {SHARED:46s} {_line(results[SHARED])}")
            with redis_server(exe) as url:  # 2 Dask workers, upload_tree (bench_dask)
                results[bench_dask.SHARED] = bench_dask.run_row(plan, url)
            settings.say(f"  {bench_dask.SHARED:46s} {_line(results[bench_dask.SHARED])}")
        results[UNSHARED] = _fleet(plan, "memory://")
        settings.say(f"  {UNSHARED:46s} {_line(results[UNSHARED])}")
        if not settings.quick:  # the contrast row; quick mode keeps the smoke run short
            results[bench_dask.UNSHARED] = bench_dask.run_row(plan, "memory://")
            settings.say(f"  {bench_dask.UNSHARED:46s} {_line(results[bench_dask.UNSHARED])}")
        reps.append(results)
    keys = ("cap_fraction", "files_s", "cap_files_s", "api_requests", "rate_limited", "share_429")
    summary = summarize_clients(reps, (*keys, "wall_s", "cpu_s", "max_late_s"))
    shared = summary.get(SHARED, {})
    fraction, share = shared.get("cap_fraction"), shared.get("share_429")
    targets = [
        make_target(
            "3 processes through Redis: achieved files/s / cap",
            f">= {MIN_CAP_FRACTION}",
            fraction,
            None if fraction is None else fraction >= MIN_CAP_FRACTION,
            SHARED,
        ),
        make_target(
            "3 processes through Redis: 429s / API requests",
            f"< {MAX_429_SHARE}",
            share,
            None if share is None else share < MAX_429_SHARE,
            SHARED,
        ),
    ]
    dask_row = summary.get(bench_dask.SHARED, {})
    fraction, share = dask_row.get("cap_fraction"), dask_row.get("share_429")
    targets += [
        make_target(
            "2 Dask workers through Redis: achieved files/s / cap",
            f">= {MIN_CAP_FRACTION}",
            fraction,
            None if fraction is None else fraction >= MIN_CAP_FRACTION,
            bench_dask.SHARED,
        ),
        make_target(
            "2 Dask workers through Redis: 429s / API requests",
            f"< {MAX_429_SHARE}",
            share,
            None if share is None else share < MAX_429_SHARE,
            bench_dask.SHARED,
        ),
    ]
    return {
        "name": NAME,
        "title": TITLE,
        "params": {**plan, "workers": WORKERS},
        "reps": reps,
        "summary": summary,
        "targets": targets,
        "profiles": {},
        "notes": notes,
    }


def _line(run: dict[str, Any]) -> str:
    if run.get("error"):
        return "ERROR " + str(run["error"])[:300]
    return (
        f"{run['files_s']:6.1f} files/s  cap {run['cap_fraction']:.0%}  "
        f"429s {run['rate_limited']}/{run['api_requests']} ({run['share_429']:.1%})"
    )


if __name__ == "__main__":  # python -m benchmarks.bench_fleet [--quick]: this group alone
    import sys

    print(run(Settings(quick="--quick" in sys.argv, reps=1, work=Path(tempfile.gettempdir()))))
