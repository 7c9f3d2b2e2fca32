"""Group: a resumed bulk run with nothing left to do (``upload_many(skip_existing=True)``).

10,000 tiny files (in 100 directories) are uploaded once with client keys from their
paths; then the same call runs again with ``skip_existing=True``, as a resumed or repeated
ingest would: without a hash cache (every file whose key and size match is read and
hashed), then with a :class:`HashCache` warmed by an earlier run (nothing read). Figures:
wall time, API requests (they should all be listing pages), files hashed, files uploaded.
The emulator runs in its own process; the client runs in this one.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ._common import Settings
from ._common import target as make_target
from ._procs import ServerProcess

NAME = "sync"
TITLE = "Resumed bulk run with nothing to do (skip_existing)"
NO_CACHE = "skip_existing, no hash cache"
CACHED = "skip_existing + warm hash cache"
LISTING = "listing alone (files.list of the space)"
LIST_ROUTE = "GET /api/v1/files"


def _make_tree(root: Path, count: int) -> None:
    for i in range(count):
        path = root / f"d{i // 100:03}" / f"f{i:05}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"file {i}\n".encode())


async def _run(info: dict[str, Any], root: Path, **options: Any) -> dict[str, Any]:
    from fluidcloud_async import AsyncFluidCloud
    from fluidcloud_async._transfer import _existing

    reads = 0
    real = _existing._hash_path

    def counted(*args: Any) -> str:
        nonlocal reads
        reads += 1  # one call per file read to be compared
        return real(*args)

    _existing._hash_path = counted  # type: ignore[assignment]
    try:
        async with AsyncFluidCloud(info["api_key"], base_url=info["base_url"]) as fc:
            started = time.perf_counter()
            results = await fc.files.upload_many(
                root, info["space_id"], keys_from_paths=True, max_files=32, **options
            )
            wall = time.perf_counter() - started
    finally:
        _existing._hash_path = real  # type: ignore[assignment]
    failed = [r for r in results if r.error is not None]
    if failed:
        raise RuntimeError(f"{len(failed)} files failed, first: {failed[0].error!r}")
    return {
        "wall_s": wall,
        "files": len(results),
        "uploaded": sum(r.status == "uploaded" for r in results),
        "unchanged": sum(r.status == "skipped" for r in results),
        "hashed": reads,
    }


async def _list(info: dict[str, Any]) -> dict[str, Any]:
    from fluidcloud_async import AsyncFluidCloud

    async with AsyncFluidCloud(info["api_key"], base_url=info["base_url"]) as fc:
        started = time.perf_counter()
        files = len(await fc.files.list(info["space_id"]))
        wall = time.perf_counter() - started
    return {"wall_s": wall, "files": files, "uploaded": 0, "hashed": 0}


def _measure_listing(emu: ServerProcess) -> dict[str, Any]:
    before = emu.stats()
    run = asyncio.run(_list(emu.info))
    after = emu.stats()
    run["api_requests"] = run["list_pages"] = after["api_requests"] - before["api_requests"]
    return run


def _measure(emu: ServerProcess, root: Path, **options: Any) -> dict[str, Any]:
    before = emu.stats()
    run = asyncio.run(_run(emu.info, root, **options))
    after = emu.stats()
    pages = after["statuses"].get(f"{LIST_ROUTE} 200", 0) - before["statuses"].get(
        f"{LIST_ROUTE} 200", 0
    )
    run["api_requests"] = after["api_requests"] - before["api_requests"]
    run["list_pages"] = pages
    return run


def run(settings: Settings) -> dict[str, Any]:
    count = 300 if settings.quick else 10_000
    reps = 1 if settings.quick else min(settings.reps, 3)
    work = Path(tempfile.mkdtemp(prefix="sync-", dir=settings.work))
    root = work / "tree"
    _make_tree(root, count)
    runs: dict[str, list[dict[str, Any]]] = {NO_CACHE: [], CACHED: [], LISTING: []}
    with ServerProcess("benchmarks._emu:start", {"emulator": {"scan_delay": 0.01}}) as emu:
        settings.say(f"[{NAME}] uploading {count} files once")
        seed = asyncio.run(_run(emu.info, root, rate_limit=None))
        assert seed["uploaded"] == count, seed
        cache = work / "hashes.sqlite"
        warm = _measure(emu, root, skip_existing=True, hash_cache=cache)  # fills the cache
        for rep in range(reps):
            settings.say(f"[{NAME}] repetition {rep + 1}/{reps}")
            runs[NO_CACHE].append(_measure(emu, root, skip_existing=True))
            runs[CACHED].append(_measure(emu, root, skip_existing=True, hash_cache=cache))
            runs[LISTING].append(_measure_listing(emu))  # the floor: the listing itself
    os.unlink(cache)
    summary = {
        name: {
            "wall_s": statistics.median(r["wall_s"] for r in rs),
            "files_s": count / statistics.median(r["wall_s"] for r in rs),
            **{k: rs[-1][k] for k in ("files", "uploaded", "hashed", "api_requests", "list_pages")},
            "runs": len(rs),
        }
        for name, rs in runs.items()
    }
    cached = summary[CACHED]
    targets = [
        make_target(
            "warm cache: files hashed", "0", cached["hashed"], cached["hashed"] == 0, CACHED
        ),
        make_target(
            "API requests that are not listing pages",
            "0",
            cached["api_requests"] - cached["list_pages"],
            cached["api_requests"] == cached["list_pages"],
            CACHED,
        ),
    ]
    return {
        "name": NAME,
        "title": TITLE,
        "params": {"files": count, "reps": reps, "warm_run_hashed": warm["hashed"]},
        "reps": runs,
        "summary": summary,
        "targets": targets,
        "profiles": {},
        "notes": [
            "Listing pages are the emulator's default page size (100); the SDK sends only "
            "the documented list parameters.",
        ],
    }


def section(g: dict[str, Any]) -> list[str]:
    """This group's part of BENCHMARKS.md."""
    lines = [
        f"{g['params']['files']} files already stored, re-run with `skip_existing=True` "
        "(client in this process, emulator in its own):",
        "",
        "| run | wall s | files/s | API requests | listing pages | files hashed | uploaded |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in g["summary"].items():
        lines.append(
            f"| {name} | {s['wall_s']:.2f} | {s['files_s']:.0f} | {s['api_requests']} | "
            f"{s['list_pages']} | {s['hashed']} | {s['uploaded']} |"
        )
    return [*lines, ""]


if __name__ == "__main__":  # python -m benchmarks.bench_sync [--quick]: this group alone
    import json
    import sys

    result = run(Settings(quick="--quick" in sys.argv, reps=3, work=Path(tempfile.gettempdir())))
    print(json.dumps(result["summary"], indent=1))
