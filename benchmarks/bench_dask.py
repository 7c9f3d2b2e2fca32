"""Rows of the fleet group: two Dask workers ingesting one tree with ``upload_tree`` on
one key, the budget shared through Redis (or not, for contrast).

Same method as the fleet's processes (``bench_fleet``): the emulator enforces per-key
limits time-scaled to a 19.6 s window, the SDK's ``RateLimit`` uses that window, and the
figure is the fraction of the initiate cap kept past the first window's burst,
``(files - cap) / span / (cap / window)``, with the 429s among the API requests served.
A driver process starts a ``LocalCluster`` of two worker processes (one thread each),
writes a tree of small files, waits until the emulator's set-up request has left its
window, and runs ``upload_tree`` once; the span is that call's wall time (walk, plugin
registration, the workers' first connections and every batch). One batch per worker:
each batch lists the destination once (``skip_existing``), and those listing requests
count against the same requests budget the uploads use (two per file: initiate and
complete), so fewer, larger batches are what a small-file ingest should use. The tree has
as many files as the fleet's three processes send, less one per batch, so that with the
two listings the run's requests fill whole windows, as the fleet's do (the figure is a
step function: a last window only partly used counts as a whole one; a first try with
200 files, four windows of which the last held 20, scored 75 % with no 429).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from ._measure import ClientFailed, Meter, failure, run_python
from ._procs import ServerProcess

SHARED = "2 Dask workers, upload_tree + RateLimit(storage=redis)"
UNSHARED = "2 Dask workers, upload_tree + RateLimit() in memory"
WORKERS = 2


def driver(args: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """One measured ``upload_tree`` run on a fresh two-worker LocalCluster."""
    from distributed import Client, LocalCluster

    from fluidcloud_async import RateLimit
    from fluidcloud_async.dask import upload_tree

    with tempfile.TemporaryDirectory(prefix="bench-dask-") as scratch:
        root = Path(scratch) / "tree"
        for i in range(args["files"]):
            path = root / f"d{i % 10}" / f"f{i:05d}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"file {i} ".encode() * 8)
        with (
            LocalCluster(
                n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            time.sleep(max(0.0, args["start_at"] - time.time()))
            started = time.time()
            meter.start()
            summary = upload_tree(
                client,
                root,
                args["space_id"],
                api_key=args["api_key"],
                base_url=args["base_url"],
                rate_limit=RateLimit(**args["rate_limit"]),
                batch_files=-(-args["files"] // WORKERS),
            )
            meter.stop()
            ended = time.time()
    if not summary.ok or summary.uploaded != args["files"]:
        raise RuntimeError(f"{summary}: {summary.failures[:3]}")
    return {"files": summary.uploaded, "started": started, "ended": ended}


def run_row(plan: dict[str, Any], storage: str) -> dict[str, Any]:
    """One row: the Dask run's figures (``plan`` as in ``bench_fleet``)."""
    from .bench_fleet import plan_settings  # bench_fleet imports this module

    emulator, rate_limit = plan_settings(plan, storage)
    # As many files as the fleet's three processes send, less one per batch listing: the
    # run fills whole windows (initiate and complete are two of the requests budget per
    # file, the listings two more), so a perfect limiter scores ~1.0 here too (a last window
    # only partly used would count as a whole one: the figure is a step function).
    batches = WORKERS
    files = (plan["files"] * 3 * 2 - batches) // 2
    with ServerProcess("benchmarks._emu:start", {"emulator": emulator}) as emu:
        # The cluster starts meanwhile; the set-up request leaves the emulator's window.
        start_at = time.time() + max(plan["lead"], plan["window"] + 0.5)
        args = {**emu.info, "files": files, "rate_limit": rate_limit, "start_at": start_at}
        try:
            run = run_python("benchmarks.bench_dask:driver", args)
        except ClientFailed as exc:
            return failure(exc)
        stats = emu.stats()
    span = run["ended"] - run["started"]
    cap_rate = plan["initiate"] / plan["window"]
    requests, limited = stats["api_requests"], stats["rate_limited"]
    return {
        "files": run["files"],
        "wall_s": span,
        "files_s": run["files"] / span,
        "cap_files_s": cap_rate,
        "cap_fraction": (run["files"] - plan["initiate"]) / span / cap_rate,
        "api_requests": requests,
        "rate_limited": limited,
        "share_429": limited / requests if requests else 0.0,
        "cpu_s": run.get("cpu_s", 0.0),
        "max_late_s": run["started"] - start_at,
    }
