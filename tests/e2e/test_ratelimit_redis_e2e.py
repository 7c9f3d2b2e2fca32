"""One key budget for a fleet, end to end: worker OS processes share a key's caps through
a real ``redis-server`` against the emulator with its rate limits on (time-scaled).

The workers use ``RateLimit(window=2.0)`` against an emulator window of 1.8 s. Redis
counts whole seconds, so the SDK's 2 % margin (61 s for the real 60 s window, a whole
second of slack) cannot be scaled down; what the margin must cover is absolute: the spread
of the delay between logging a request and its arrival, 0.1-0.2 s here (new connections,
two cores shared with other test runs). The benchmark measures the fraction of the cap kept
with longer windows. Caps are a tenth of the documented ones (60 requests, 30 initiates per
window) so the emulator, three workers and Redis fit on two cores.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.text import TextReceiveStream

from fluidcloud_async import AsyncFluidCloud
from fluidcloud_async.emulator import Emulator, EmulatorConfig

CHILD = Path(__file__).with_name("_ratelimit_child.py")
SERVER_WINDOW = 1.8
CLIENT_WINDOW = 2.0
REQUESTS, INITIATES = 60, 30
WORKERS, FILES = 3, 40


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway ``redis-server`` on a free loopback port: no persistence, killed after."""
    exe = shutil.which("redis-server")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is missing in CI: .ci/run installs it (apt-get)")
        pytest.skip("redis-server is not installed (apt-get install redis-server; CI does)")
    workdir = tmp_path_factory.mktemp("redis")
    port = _free_port()
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(workdir), "--logfile", str(workdir / "redis.log")]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not _pong(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (workdir / "redis.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"redis-server did not start on port {port}: {log}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(10)


def _config() -> EmulatorConfig:
    return EmulatorConfig(
        scan_delay=0.0,
        rate_limits=True,
        rate_limit_time_scale=60.0 / SERVER_WINDOW,
        rate_limit_default=REQUESTS,
        rate_limit_initiate=INITIATES,
    )


async def _fleet(
    emu: Emulator, space_id: str, rate_limit: dict[str, Any], workers: int, files: int
) -> list[dict[str, Any]]:
    """Run ``workers`` processes, started together once all are ready; their results."""
    procs = []
    try:
        for index in range(workers):
            args = {
                "api_key": emu.api_key,
                "base_url": emu.base_url,
                "space_id": space_id,
                "files": files,
                "prefix": f"w{index}-{os.urandom(3).hex()}",
                "rate_limit": rate_limit,
            }
            procs.append(await anyio.open_process([sys.executable, str(CHILD), json.dumps(args)]))
        streams = [TextReceiveStream(p.stdout) for p in procs if p.stdout is not None]
        for stream in streams:
            line = await stream.receive()
            assert line.startswith("ready"), line
        for proc in procs:
            assert proc.stdin is not None
            await proc.stdin.send(b"go\n")
        outputs = []
        for proc, stream in zip(procs, streams, strict=True):
            text = "".join([chunk async for chunk in stream])
            assert await proc.wait() == 0, await _stderr(proc)
            outputs.append(json.loads(text.strip().splitlines()[-1]))
        return outputs
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
            await proc.aclose()


async def _stderr(proc: Process) -> str:
    assert proc.stderr is not None
    return "".join([chunk async for chunk in TextReceiveStream(proc.stderr)])[-3000:]


def _cap_fraction(outputs: list[dict[str, Any]]) -> float:
    """Files per second past the first window's burst, over the initiate cap's rate (a
    perfect sliding-window limiter scores ~1.0 however many windows the run spans)."""
    files = sum(o["ok"] for o in outputs)
    span = max(o["ended"] for o in outputs) - min(o["started"] for o in outputs)
    return (files - INITIATES) / span / (INITIATES / SERVER_WINDOW)


async def _run(storage: str, share: float = 1.0, workers: int = WORKERS) -> dict[str, Any]:
    rate_limit = {
        "requests": REQUESTS,
        "initiate": INITIATES,
        "window": CLIENT_WINDOW,
        "share": share,
        "storage": storage,
    }
    async with Emulator(_config()) as emu:
        async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as fc:
            space = await fc.spaces.create("fleet")
        # That request counts against the key's budget but is in no client-side log: let it
        # leave the emulator's window (it alone made the 121st request a 429).
        await anyio.sleep(SERVER_WINDOW)
        emu.stats.reset()
        outputs = await _fleet(emu, space.id, rate_limit, workers, FILES)
        requests = sum(emu.stats.requests.values())
        return {
            "outputs": outputs,
            "requests": requests,
            "rate_limited": emu.stats.rate_limited,
            "fraction": _cap_fraction(outputs),
        }


async def test_three_processes_share_one_key_through_redis(redis_url: str) -> None:
    run = await _run(redis_url)
    assert all(o["failed"] == 0 and o["ok"] == FILES for o in run["outputs"]), run["outputs"]
    assert run["rate_limited"] <= run["requests"] // 100, run  # under 1 % 429s
    # At most 0.9 with this margin; and a run of four windows loses a whole one to a single
    # straggler or 429 (benchmarks/bench_fleet.py measures the fraction over long windows).
    assert run["fraction"] >= 0.5, run


async def test_without_sharing_the_processes_collide() -> None:
    run = await _run("memory://")
    assert all(o["ok"] == FILES for o in run["outputs"]), run["outputs"]  # retries cope...
    assert run["rate_limited"] > run["requests"] // 100, run  # ...after many 429s


async def test_share_leaves_the_rest_of_the_budget(redis_url: str) -> None:
    """One worker with ``share=0.5`` runs at about half the cap, while an interactive
    client on the same key (no client-side limiter) spends 45 % of it: no 429s."""
    rate_limit = {
        "requests": REQUESTS,
        "initiate": INITIATES,
        "window": CLIENT_WINDOW,
        "share": 0.5,
        "storage": redis_url,
    }
    async with Emulator(_config()) as emu:
        async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as fc:
            space = await fc.spaces.create("shared")
            await anyio.sleep(SERVER_WINDOW)  # out of the window, as above
            emu.stats.reset()
            interactive = 0
            async with anyio.create_task_group() as tg:

                async def bulk() -> None:
                    outputs.extend(await _fleet(emu, space.id, rate_limit, 1, FILES))
                    tg.cancel_scope.cancel()

                outputs: list[dict[str, Any]] = []
                tg.start_soon(bulk)
                while True:  # 45 % of the requests budget, every window, until bulk is done
                    for _ in range(int(REQUESTS * 0.45)):
                        await fc.quota.usage()
                        interactive += 1
                    await anyio.sleep(SERVER_WINDOW * 1.05)
        assert outputs[0]["ok"] == FILES, outputs
        assert emu.stats.rate_limited == 0, (emu.stats.rate_limited, interactive)
        assert interactive >= int(REQUESTS * 0.45)
        # 15 initiates a window: 40 files need three windows (two waits); the full share
        # would take two.
        span = outputs[0]["ended"] - outputs[0]["started"]
        assert span >= 2 * SERVER_WINDOW, span
