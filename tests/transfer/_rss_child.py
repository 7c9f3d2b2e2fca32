"""Measured in its own process: RSS growth of one upload of a sparse file.

``python -m tests.transfer._rss_child ORIGIN PATH CONCURRENCY SENDFILE CHECKSUM`` prints
``{"growth_mib": ..., "size": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading

MiB = 1024 * 1024


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MiB


async def main(origin: str, path: str, concurrency: int, sendfile: bool, checksum: bool) -> None:
    from fluidcloud_async import AsyncFluidCloud
    from fluidcloud_async._transfer._sources import describe
    from fluidcloud_async._transfer._upload import SlotPool, upload_file
    from fluidcloud_async._validate_args import upload_options

    async with AsyncFluidCloud("fck_test_rss", base_url=origin) as fc:
        options = upload_options(space_id="space", checksum=checksum)
        options = type(options)(**{**options.__dict__, "use_sendfile": sendfile})
        # Warm up (imports, session, thread pool) before the baseline.
        await upload_file(
            fc.files._engine(), describe(b"x" * 10, name="w"), options, pool=SlotPool(1)
        )
        base = rss_mib()
        peak = [base]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.005):
                peak[0] = max(peak[0], rss_mib())

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            spec = describe(path)
            file = await upload_file(fc.files._engine(), spec, options, pool=SlotPool(concurrency))
        finally:
            stop.set()
            sampler.join()
        print(json.dumps({"growth_mib": max(peak[0], rss_mib()) - base, "size": file.size}))


if __name__ == "__main__":
    origin, path, conc, sendfile, checksum = sys.argv[1:]
    asyncio.run(main(origin, path, int(conc), sendfile == "1", checksum == "1"))
