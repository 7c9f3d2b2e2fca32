"""Ingest a directory tree: client_keys from relative paths, progress, retries, summary.

    python bulk_ingest.py <directory> [--prefix backups/2026-11-23/]
Without arguments it generates a small tree first.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from fluidcloud_async import AsyncFluidCloud, RetryEvent


def make_sample_tree(root: Path) -> None:
    for d in range(5):
        for i in range(40):
            path = root / f"dir-{d}" / f"file-{i}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{d}/{i}\n" * (i + 1))


async def ingest(root: Path, prefix: str | None) -> int:
    retries = 0

    def on_retry(event: RetryEvent) -> None:
        nonlocal retries
        retries += 1

    started = time.perf_counter()
    ok = failed = total_bytes = 0
    async with AsyncFluidCloud(on_retry=on_retry) as fc:
        space = await fc.spaces.create(f"ingest {root.name}")
        async with fc.files.upload_many(
            root,
            space.id,
            keys_from_paths=True,
            key_prefix=prefix,
            max_files=16,
        ) as results:
            async for result in results:
                if result.ok and result.file is not None:
                    ok += 1
                    total_bytes += result.file.size or 0
                else:
                    failed += 1
                    print(f"FAILED {result.source}: {result.error}")
                if (ok + failed) % 50 == 0:
                    print(f"... {ok + failed} done")
    elapsed = time.perf_counter() - started
    print(
        f"{ok} files ({total_bytes} bytes) uploaded, {failed} failed, {retries} API retries, "
        f"{elapsed:.1f}s ({ok / elapsed:.0f} files/s)"
    )
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", nargs="?", type=Path)
    parser.add_argument("--prefix", default=None, help="prepended to every client_key")
    args = parser.parse_args()
    if args.directory is not None:
        return asyncio.run(ingest(args.directory, args.prefix))
    with tempfile.TemporaryDirectory() as tmp:
        make_sample_tree(Path(tmp))
        return asyncio.run(ingest(Path(tmp), args.prefix))


if __name__ == "__main__":
    raise SystemExit(main())
