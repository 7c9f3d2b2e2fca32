"""Group 2: parallel speed-up where it matters, with a per-connection bandwidth cap.

Real object stores cap each connection (tens of MB/s). The emulator's storage server is
throttled to ``CAP`` bytes/s per connection; the SDK's throughput at each concurrency is
compared with the ideal ``min(concurrency x cap, server ceiling)`` and with the sequential
baseline (httpx, one part after another). The server ceiling is what the same emulator
takes uncapped from curl ``--parallel 16`` in the same repetition.
"""

from __future__ import annotations

from typing import Any

from . import _baselines
from ._common import Settings, mib_s, missed_clients, random_file, summarize_clients
from ._common import target as make_target
from ._measure import ClientFailed, MiB, failure, rotate, run_command, run_python
from ._procs import ServerProcess
from ._profile import profile_python

NAME = "capped"
TITLE = "Per-connection bandwidth cap (emulator storage)"
SEQUENTIAL = "httpx sequential"
CEILING = "server ceiling (curl --parallel 16, uncapped)"
CEILING_PARALLEL = 16
MIN_FRACTION = 0.9
SDK_TARGET = "benchmarks.bench_throughput:sdk_upload"


def sdk_name(concurrency: int) -> str:
    return f"fluidcloud_async c={concurrency}"


def _plan(settings: Settings) -> dict[str, Any]:
    if settings.quick:
        return {
            "size": 8 * MiB,
            "part_size": 1 * MiB,
            "cap": 16 * MiB,
            "concurrency": [4],
            "reps": 1,
        }
    return {
        "size": 256 * MiB,
        "part_size": 4 * MiB,
        "cap": 50 * MiB,
        "concurrency": [1, 4, 8, 16],
        "reps": settings.reps,
    }


def _emulator_config(plan: dict[str, Any], cap: float | None) -> dict[str, Any]:
    return {
        "emulator": {
            "multipart_threshold": plan["part_size"],
            "part_size": plan["part_size"],
            "scan_delay": 0.0,
        },
        "faults": {"storage_bandwidth": cap},
    }


def _parts(emu: ServerProcess, size: int, name: str) -> list[tuple[str, int, int]]:
    info = emu.info
    ticket = _baselines.api_post(
        info["api_url"],
        info["api_key"],
        "/uploads/initiate",
        {"original_name": name, "size": size, "space_id": info["space_id"]},
    )
    return _baselines.part_layout(ticket, size)


def _ceiling(settings: Settings, plan: dict[str, Any], path: Any) -> dict[str, Any]:
    """curl --parallel against an uncapped emulator: what the server side can take."""
    size = plan["size"]
    with ServerProcess("benchmarks._emu:start", _emulator_config(plan, None)) as emu:
        parts = _parts(emu, size, "ceiling.bin")
        data_dir = settings.work / NAME
        files = _baselines.split_parts(path, parts, data_dir / "parts")
        argv = _baselines.curl_argv(parts, files, CEILING_PARALLEL, data_dir / "curl.cfg")
        run = run_command(argv)
        if not _baselines.curl_ok(run.pop("stdout"), len(parts)):
            raise ClientFailed("curl: not every part answered 200")
    return {**run, "mib_s": mib_s(size, run["wall_s"])}


def run(settings: Settings) -> dict[str, Any]:
    plan = _plan(settings)
    size, cap = plan["size"], plan["cap"]
    path = random_file(settings.work / NAME / "payload.bin", size)
    clients: list[tuple[str, int | None]] = [(sdk_name(c), c) for c in plan["concurrency"]]
    notes: list[str] = []
    has_httpx = _has("httpx")
    if has_httpx:
        clients.append((SEQUENTIAL, None))
    else:
        notes.append("httpx is not installed: no sequential baseline.")
    has_curl = _baselines.curl_path() is not None
    if not has_curl:
        notes.append("curl is not installed: the ideal is concurrency x cap (no server ceiling).")
    reps: list[dict[str, dict[str, Any]]] = []
    for rep in range(plan["reps"]):
        settings.say(f"[{NAME}] repetition {rep + 1}/{plan['reps']}")
        results: dict[str, dict[str, Any]] = {}
        ceiling: float | None = None
        if has_curl:
            try:
                results[CEILING] = _ceiling(settings, plan, path)
                ceiling = results[CEILING]["mib_s"]
                settings.say(f"  {CEILING:45s} {ceiling:8.0f} MiB/s")
            except ClientFailed as exc:
                results[CEILING] = failure(exc)
        # A fresh emulator per repetition: its RAM-backed objects are dropped afterwards.
        with ServerProcess("benchmarks._emu:start", _emulator_config(plan, cap)) as emu:
            for name, concurrency in rotate(clients, rep):
                results[name] = _one(emu, path, size, concurrency)
                run = results[name]
                if run.get("error"):
                    settings.say(f"  {name:45s} ERROR {run['error'][:200]}")
                    continue
                ideal = (concurrency or 1) * cap / MiB
                if ceiling:
                    ideal = min(ideal, ceiling)
                run["ideal_mib_s"] = ideal
                run["fraction_of_ideal"] = run["mib_s"] / ideal
                settings.say(
                    f"  {name:45s} {run['mib_s']:8.0f} MiB/s  ideal {ideal:6.0f}"
                    f"  ({run['fraction_of_ideal']:.0%})"
                )
        seq = results.get(SEQUENTIAL, {}).get("mib_s")
        for run in results.values():
            if seq and "mib_s" in run:
                run["speedup_vs_sequential"] = run["mib_s"] / seq
        reps.append(results)
    keys = (
        "mib_s",
        "ideal_mib_s",
        "fraction_of_ideal",
        "speedup_vs_sequential",
        "cpu_s",
        "peak_rss",
    )
    summary = summarize_clients(reps, keys)
    targets = []
    for concurrency in plan["concurrency"]:
        fraction = summary.get(sdk_name(concurrency), {}).get("fraction_of_ideal")
        targets.append(
            make_target(
                f"c={concurrency}: throughput / min(c x cap, server ceiling)",
                f">= {MIN_FRACTION}",
                fraction,
                None if fraction is None else fraction >= MIN_FRACTION,
                sdk_name(concurrency),
            )
        )
    profiles = {}
    for name in missed_clients(targets) if settings.profile else []:
        settings.say(f"  profiling {name} (py-spy)")
        concurrency = dict(clients)[name]
        with ServerProcess("benchmarks._emu:start", _emulator_config(plan, cap)) as emu:
            profiles[name] = profile_python(SDK_TARGET, _sdk_args(emu, path, size, concurrency))
    return {
        "name": NAME,
        "title": TITLE,
        "params": {
            "size_bytes": size,
            "part_size": plan["part_size"],
            "cap_bytes_per_s": cap,
            "sdk_concurrency": plan["concurrency"],
            "reps": plan["reps"],
            "ceiling_parallel": CEILING_PARALLEL,
        },
        "reps": reps,
        "summary": summary,
        "targets": targets,
        "profiles": profiles,
        "notes": notes,
    }


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _sdk_args(emu: ServerProcess, path: Any, size: int, concurrency: int | None) -> dict[str, Any]:
    info = emu.info
    return {
        "api_key": info["api_key"],
        "base_url": info["base_url"],
        "space_id": info["space_id"],
        "path": str(path),
        "size": size,
        "concurrency": concurrency,
        "checksum": True,
    }


def _one(emu: ServerProcess, path: Any, size: int, concurrency: int | None) -> dict[str, Any]:
    before = emu.stats()
    try:
        if concurrency is None:
            parts = _parts(emu, size, "sequential.bin")
            args: dict[str, Any] = {"path": str(path), "parts": parts}
            run = run_python("benchmarks._baselines:httpx_sequential", args)
        else:
            run = run_python(SDK_TARGET, _sdk_args(emu, path, size, concurrency))
    except ClientFailed as exc:
        return failure(exc)
    stored = emu.stats()["storage_put_bytes"] - before["storage_put_bytes"]
    if stored != size:
        return {"error": f"the emulator stored {stored} bytes, expected {size}"}
    return {**run, "mib_s": mib_s(size, run["wall_s"])}
