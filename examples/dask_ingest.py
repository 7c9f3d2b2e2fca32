"""Ingest a directory tree with the workers of a Dask cluster, then show that a re-run
uploads nothing.

    python dask_ingest.py [DIRECTORY] [--scheduler tcp://host:8786] [--redis redis://host:6379/0]
                          [--prefix backups/2026-11-30] [--space SPACE_ID]

Without --scheduler it starts a LocalCluster of two worker processes; without a directory
it generates a small tree first. Every worker must see DIRECTORY at the same path. The
key and base URL come from FLUIDCLOUD_API_KEY / FLUIDCLOUD_BASE_URL here and are handed
to the workers in a worker plugin. Give --redis (or REDIS_URL) so the workers share the
key's budget; without it each worker process believes it owns the whole budget.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

from distributed import Client, LocalCluster

from fluidcloud_async import AsyncFluidCloud, RateLimit
from fluidcloud_async.dask import BatchReport, upload_tree


def make_sample_tree(root: Path) -> None:
    for d in range(4):
        for i in range(15):
            path = root / f"dir-{d}" / f"file-{i}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{d}/{i}\n" * (i + 1))


async def create_space(name: str) -> str:
    async with AsyncFluidCloud() as fc:
        return (await fc.spaces.create(name)).id


def show(report: BatchReport) -> None:
    print(
        f"batch {report.index}: {report.uploaded} uploaded, {report.unchanged} unchanged, "
        f"{report.failed} failed on {report.worker} "
        f"({report.batches_done}/{report.batches_total})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", type=Path)
    parser.add_argument("--scheduler", help="address of a running scheduler")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL"), help="redis://...")
    parser.add_argument("--prefix", default=None, help="client_key prefix")
    parser.add_argument("--space", default=None, help="space id (default: a new space)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        root = args.directory
        if root is None:
            root = Path(scratch) / "sample"
            make_sample_tree(root)
        space_id = args.space or asyncio.run(create_space(f"dask ingest {root.name}"))
        limit = RateLimit(storage=args.redis) if args.redis else RateLimit()
        if args.scheduler:
            client = Client(args.scheduler)
        else:
            cluster = LocalCluster(n_workers=2, threads_per_worker=2, dashboard_address=None)
            client = Client(cluster)
        with client:
            failed = 0
            for run in ("first run", "re-run"):
                summary = upload_tree(
                    client,
                    root,
                    space_id,
                    key_prefix=args.prefix,
                    rate_limit=limit,
                    batch_files=20,
                    on_batch=show,
                )
                print(f"{run}: {summary}")
                for failure in summary.failures:
                    print(f"FAILED {failure.path}: {failure.error}")
                failed += summary.failed
            if not args.scheduler:
                cluster.close()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
