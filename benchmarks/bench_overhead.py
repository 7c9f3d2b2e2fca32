"""Group 4: API call overhead, ``files.get`` at concurrency 64 against the emulator.

The SDK (transport, retries wrapper, pydantic model) versus a bare aiohttp loop doing the
same GETs and ``json()``; both warm their connection pool first, outside the measurement.
CPU per request is the client process's own CPU (all threads) over the measured requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ._common import Settings, missed_clients, summarize_clients
from ._common import target as make_target
from ._measure import ClientFailed, Meter, failure, rotate, run_python
from ._procs import ServerProcess
from ._profile import profile_python

NAME = "overhead"
TITLE = "API call overhead: files.get at concurrency 64"
SDK = "fluidcloud_async files.get"
BARE = "bare aiohttp GET + json()"
CONCURRENCY = 64
MAX_RATIO = 1.3


async def _drive(call: Callable[[], Awaitable[Any]], requests: int, meter: Meter) -> None:
    """Warm-up (one call per worker), then ``requests`` calls by CONCURRENCY workers."""
    await asyncio.gather(*(call() for _ in range(CONCURRENCY)))
    per_worker = requests // CONCURRENCY

    async def worker() -> None:
        for _ in range(per_worker):
            await call()

    meter.start()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    meter.stop()


async def sdk_get(args: dict[str, Any], meter: Meter) -> dict[str, Any]:
    from fluidcloud_async import AsyncFluidCloud

    file_id = args["file_id"]
    async with AsyncFluidCloud(api_key=args["api_key"], base_url=args["base_url"]) as fc:

        async def call() -> None:
            record = await fc.files.get(file_id)
            if record.id != file_id:
                raise RuntimeError("wrong file")

        await _drive(call, args["requests"], meter)
    return {"requests": args["requests"] // CONCURRENCY * CONCURRENCY}


async def bare_get(args: dict[str, Any], meter: Meter) -> dict[str, Any]:
    import aiohttp

    url = f"{args['base_url']}/api/v1/files/{args['file_id']}"
    headers = {"X-API-Key": args["api_key"], "Accept": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def call() -> None:
            async with session.get(url) as response:
                response.raise_for_status()
                record = await response.json()
            if record["id"] != args["file_id"]:
                raise RuntimeError("wrong file")

        await _drive(call, args["requests"], meter)
    return {"requests": args["requests"] // CONCURRENCY * CONCURRENCY}


def run(settings: Settings) -> dict[str, Any]:
    reps_count = 1 if settings.quick else settings.reps
    requests = CONCURRENCY * (4 if settings.quick else 100)
    clients = [(SDK, f"{__name__}:sdk_get"), (BARE, f"{__name__}:bare_get")]
    reps: list[dict[str, dict[str, Any]]] = []
    with ServerProcess("benchmarks._emu:start", {"seed_file": True}) as emu:
        args = {**emu.info, "requests": requests}
        for rep in range(reps_count):
            settings.say(f"[{NAME}] repetition {rep + 1}/{reps_count}")
            results: dict[str, dict[str, Any]] = {}
            for name, target in rotate(clients, rep):
                before = emu.stats()
                try:
                    run = run_python(target, args)
                except ClientFailed as exc:
                    results[name] = failure(exc)
                    continue
                after = emu.stats()
                n = run["requests"]
                run["req_s"] = n / run["wall_s"]
                run["cpu_us_per_req"] = run["cpu_s"] / n * 1e6
                run["server_cpu_share"] = (after["server_cpu_s"] - before["server_cpu_s"]) / run[
                    "wall_s"
                ]
                results[name] = run
                settings.say(
                    f"  {name:30s} {run['req_s']:7.0f} req/s"
                    f"  {run['cpu_us_per_req']:6.0f} µs CPU/req"
                    f"  server {run['server_cpu_share']:.0%}"
                )
            sdk, bare = results.get(SDK, {}), results.get(BARE, {})
            if "cpu_us_per_req" in sdk and "cpu_us_per_req" in bare:
                sdk["cpu_ratio_to_bare"] = sdk["cpu_us_per_req"] / bare["cpu_us_per_req"]
            reps.append(results)
        summary, targets = _summary(reps)
        profiles = {}
        for name in missed_clients(targets) if settings.profile else []:
            settings.say(f"  profiling {name} (py-spy)")
            profiles[name] = profile_python(dict(clients)[name], args)
    return {
        "name": NAME,
        "title": TITLE,
        "params": {"concurrency": CONCURRENCY, "requests": requests, "reps": reps_count},
        "reps": reps,
        "summary": summary,
        "targets": targets,
        "profiles": profiles,
        "notes": [],
    }


def _summary(
    reps: list[dict[str, dict[str, Any]]],
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    keys = ("req_s", "cpu_us_per_req", "cpu_ratio_to_bare", "server_cpu_share", "peak_rss")
    summary = summarize_clients(reps, keys)
    ratio = summary.get(SDK, {}).get("cpu_ratio_to_bare")
    targets = [
        make_target(
            "SDK CPU per request / bare aiohttp",
            f"<= {MAX_RATIO}",
            ratio,
            None if ratio is None else ratio <= MAX_RATIO,
            SDK,
        )
    ]
    return summary, targets
