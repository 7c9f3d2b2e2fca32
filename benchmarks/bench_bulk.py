"""Group 3: bulk ingest through the emulator, and the same under its rate limits.

Two file sets (many small files; fewer medium ones, all single-PUT) go up with
``fc.files.upload_many``, the sequential sync-style loop (httpx) and a naive
``asyncio.gather`` (aiohttp). Then, with the emulator's documented per-key rate limits on
(time-scaled so a run lasts seconds, not minutes), the SDK ingests small files again: the
achieved rate as a fraction of the cap, and how many 429s it received.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ._common import Settings, mib_s, missed_clients, summarize_clients
from ._common import target as make_target
from ._measure import ClientFailed, KiB, Meter, MiB, failure, rotate, run_python
from ._procs import ServerProcess
from ._profile import profile_python

NAME = "bulk"
TITLE = "Bulk ingest through the emulator"
SDK = "fluidcloud_async upload_many"
SDK_NO_CHECKSUM = "fluidcloud_async upload_many, checksum off"
SEQUENTIAL = "httpx sequential"
NAIVE = "naive gather (aiohttp)"
LIMITED = "fluidcloud_async upload_many, rate limits on"
# The documented per-key caps (per minute) and what one single-PUT file costs against them.
CAP_DEFAULT = 600
CAP_INITIATE = 300
REQUESTS_PER_FILE = 2  # initiate + complete; storage PUTs are not API requests
MIN_CAP_FRACTION = 0.95
MAX_429_SHARE = 0.01


async def sdk_ingest(args: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """``fc.files.upload_many(files, space_id, **options)``; every result must be ok.

    ``options["rate_limit_window"]`` (seconds) becomes ``RateLimit(window=...)``; without
    it the client-side limiter is off.
    """
    from fluidcloud_async import AsyncFluidCloud, RateLimit

    options = dict(args.get("options", {}))
    window = options.pop("rate_limit_window", None)
    # JSON cannot carry a RateLimit: a window means the documented caps over that window.
    options["rate_limit"] = None if window is None else RateLimit(window=window)
    files = [Path(p) for p in args["files"]]
    ok = failed = total = 0
    first_error = ""
    async with AsyncFluidCloud(api_key=args["api_key"], base_url=args["base_url"]) as fc:
        meter.start()
        async with fc.files.upload_many(files, args["space_id"], **options) as results:
            async for result in results:
                if result.ok and result.file is not None:
                    ok += 1
                    total += result.file.size or 0
                else:
                    failed += 1
                    first_error = first_error or repr(result.error)
        meter.stop()
    if failed:
        raise RuntimeError(f"{failed} of {len(files)} files failed, first: {first_error}")
    return {"bytes": total, "files": ok}


def _plan(settings: Settings) -> dict[str, Any]:
    if settings.quick:
        return {
            "sets": {"small": (40, 64 * KiB), "medium": (4, 1 * MiB)},
            "limited_files": 40,
            "time_scale": 60.0,
            "reps": 1,
        }
    return {
        "sets": {"small": (2000, 64 * KiB), "medium": (200, 5 * MiB)},
        "limited_files": 1000,
        "time_scale": 20.0,
        "reps": settings.reps,
    }


def _make_set(root: Path, count: int, size: int) -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    block = os.urandom(size)
    paths = []
    for i in range(count):
        path = root / f"f{i:05d}.bin"
        if not path.exists() or path.stat().st_size != size:
            # Distinct contents per file (the index prefix) without generating count x size.
            path.write_bytes(i.to_bytes(8, "big") + block[8:])
        paths.append(str(path))
    return paths


def _emulator_config(limited: bool, time_scale: float) -> dict[str, Any]:
    emulator: dict[str, Any] = {"rate_limits": limited, "rate_limit_time_scale": time_scale}
    return {"emulator": emulator}


def _sdk_options(limited: bool, time_scale: float) -> dict[str, Any]:
    """Without server limits the SDK's limiter is off (``rate_limit=None``), else it keeps
    the documented caps over the emulator's scaled window."""
    return {"rate_limit_window": 60.0 / time_scale} if limited else {}


def run(settings: Settings) -> dict[str, Any]:
    plan = _plan(settings)
    has_httpx = _has("httpx")
    notes: list[str] = []
    if not has_httpx:
        notes.append("httpx is not installed: no sequential baseline.")
    sets = {
        name: (count, size, _make_set(settings.work / NAME / name, count, size))
        for name, (count, size) in plan["sets"].items()
    }
    small = sets["small"][2]
    has_sdk = _sdk_has_upload_many()
    if not has_sdk:
        notes.append("This version of fluidcloud_async has no files.upload_many: no SDK rows.")
    else:
        notes.append(
            "By default the SDK computes the SHA-256 of every file and sends it to "
            "`/complete`, where the emulator hashes the stored object to check it; the "
            "baselines send no checksum. The *checksum off* row (medium files, where it "
            "matters) shows what that costs."
        )
    clients = ([SDK] if has_sdk else []) + [NAIVE] + ([SEQUENTIAL] if has_httpx else [])
    targets_by_client = {
        SDK: f"{__name__}:sdk_ingest",
        SDK_NO_CHECKSUM: f"{__name__}:sdk_ingest",
        SEQUENTIAL: "benchmarks._baselines:httpx_ingest",
        NAIVE: "benchmarks._baselines:naive_gather_ingest",
    }
    reps: list[dict[str, dict[str, Any]]] = []
    for rep in range(plan["reps"]):
        settings.say(f"[{NAME}] repetition {rep + 1}/{plan['reps']}")
        results: dict[str, dict[str, Any]] = {}
        # A fresh emulator per repetition: its RAM-backed objects are dropped afterwards.
        with ServerProcess("benchmarks._emu:start", _emulator_config(False, 1.0)) as emu:
            for set_name, (count, size, paths) in sets.items():
                extra = [SDK_NO_CHECKSUM] if has_sdk and set_name == "medium" else []
                for client in rotate(clients + extra, rep):
                    label = f"{client} [{set_name}: {count} x {size // KiB} KiB]"
                    options = _sdk_options(False, 1.0)
                    if client == SDK_NO_CHECKSUM:
                        options["checksum"] = False
                    args = {**emu.info, "files": paths, "options": options}
                    results[label] = _one(emu, targets_by_client[client], args, count * size)
                    settings.say(f"  {label:62s} {_line(results[label])}")
                _speedups(results, set_name, count, size)
        if has_sdk:
            results[LIMITED] = _limited(plan, small)
            settings.say(f"  {LIMITED:62s} {_line(results[LIMITED])}")
        reps.append(results)
    keys = (
        "files_s",
        "speedup_vs_sequential",
        "mib_s",
        "cpu_s",
        "peak_rss",
        "api_requests",
        "rate_limited",
        "share_429",
        "cap_fraction",
        "cap_files_s",
        "server_cpu_share",
    )
    summary = summarize_clients(reps, keys)
    limited = summary.get(LIMITED, {})
    fraction, share = limited.get("cap_fraction"), limited.get("share_429")
    targets = [
        make_target(
            "rate-limited ingest: achieved files/s / cap",
            f">= {MIN_CAP_FRACTION}",
            fraction,
            None if fraction is None else fraction >= MIN_CAP_FRACTION,
            LIMITED,
        ),
        make_target(
            "rate-limited ingest: 429s / API requests",
            f"< {MAX_429_SHARE}",
            share,
            None if share is None else share < MAX_429_SHARE,
            LIMITED,
        ),
    ]
    profiles = {}
    for name in missed_clients(targets) if settings.profile else []:
        settings.say(f"  profiling {name} (py-spy)")
        scale = plan["time_scale"]
        with ServerProcess("benchmarks._emu:start", _emulator_config(True, scale)) as emu:
            args = {
                **emu.info,
                "files": _limited_files(plan, small),
                "options": _sdk_options(True, scale),
            }
            profiles[name] = profile_python(f"{__name__}:sdk_ingest", args)
    return {
        "name": NAME,
        "title": TITLE,
        "params": {
            "sets": {k: {"files": c, "size": s} for k, (c, s, _) in sets.items()},
            "limited_files": plan["limited_files"],
            "time_scale": plan["time_scale"],
            "caps_per_minute": {"default": CAP_DEFAULT, "initiate": CAP_INITIATE},
            "reps": plan["reps"],
        },
        "reps": reps,
        "summary": summary,
        "targets": targets,
        "profiles": profiles,
        "notes": notes,
    }


def _limited_files(plan: dict[str, Any], small: list[str]) -> list[str]:
    return small[: plan["limited_files"]]


def _limited(plan: dict[str, Any], small: list[str]) -> dict[str, Any]:
    """The SDK under the emulator's rate limits (time-scaled)."""
    scale = plan["time_scale"]
    paths = _limited_files(plan, small)
    size = os.path.getsize(paths[0])
    with ServerProcess("benchmarks._emu:start", _emulator_config(True, scale)) as emu:
        args = {**emu.info, "files": paths, "options": _sdk_options(True, scale)}
        run = _one(emu, "benchmarks.bench_bulk:sdk_ingest", args, len(paths) * size)
    if run.get("error"):
        return run
    per_second = scale / 60.0
    cap = min(CAP_INITIATE, CAP_DEFAULT / REQUESTS_PER_FILE) * per_second
    run["cap_files_s"] = cap
    run["cap_fraction"] = run["files_s"] / cap
    return run


def _speedups(results: dict[str, dict[str, Any]], set_name: str, count: int, size: int) -> None:
    """files/s of each client over the sequential loop's, for one file set."""
    suffix = f" [{set_name}: {count} x {size // KiB} KiB]"
    seq = results.get(SEQUENTIAL + suffix, {}).get("files_s")
    for label, run in results.items():
        if seq and label.endswith(suffix) and "files_s" in run:
            run["speedup_vs_sequential"] = run["files_s"] / seq


def _sdk_has_upload_many() -> bool:
    from fluidcloud_async.resources.files import Files

    return hasattr(Files, "upload_many")


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _one(emu: ServerProcess, target: str, args: dict[str, Any], nbytes: int) -> dict[str, Any]:
    before = emu.stats()
    try:
        run = run_python(target, args)
    except ClientFailed as exc:
        return failure(exc)
    after = emu.stats()
    stored = after["storage_put_bytes"] - before["storage_put_bytes"]
    if stored != nbytes:
        return {"error": f"the emulator stored {stored} bytes, expected {nbytes}"}
    requests = after["api_requests"] - before["api_requests"]
    limited = after["rate_limited"] - before["rate_limited"]
    return {
        **run,
        "files_s": len(args["files"]) / run["wall_s"],
        "mib_s": mib_s(nbytes, run["wall_s"]),
        "api_requests": requests,
        "rate_limited": limited,
        "share_429": limited / requests if requests else 0.0,
        "server_cpu_share": (after["server_cpu_s"] - before["server_cpu_s"]) / run["wall_s"],
    }


def _line(run: dict[str, Any]) -> str:
    if run.get("error"):
        return "ERROR " + run["error"][:300]
    text = f"{run['files_s']:7.0f} files/s {run['mib_s']:7.1f} MiB/s"
    if "cap_fraction" in run:
        text += f"  cap {run['cap_fraction']:.0%}  429s {run['rate_limited']}"
    return text
