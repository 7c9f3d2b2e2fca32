"""One worker process of the shared-budget tests: ``python _ratelimit_child.py '<json>'``.

Prints ``ready`` once imported (no request yet: each counts against the budget), waits
for a line on stdin (so every worker starts together), then uploads ``files`` small blobs
with ``upload_many`` under the given ``RateLimit`` and prints one JSON line: ok, failed,
start and end (wall clock).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any


async def main(args: dict[str, Any]) -> dict[str, Any]:
    from fluidcloud_async import AsyncFluidCloud, RateLimit

    limit = RateLimit(**args["rate_limit"])
    items = [
        (f"{args['prefix']} file {i}".encode() * 4, {"client_key": f"{args['prefix']}/{i:04d}"})
        for i in range(args["files"])
    ]
    ok = failed = 0
    first_error = ""
    async with AsyncFluidCloud(args["api_key"], base_url=args["base_url"]) as fc:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        started = time.time()
        async with fc.files.upload_many(items, args["space_id"], rate_limit=limit) as results:
            async for result in results:
                if result.ok:
                    ok += 1
                else:
                    failed += 1
                    first_error = first_error or repr(result.error)
        ended = time.time()
    return {"ok": ok, "failed": failed, "started": started, "ended": ended, "error": first_error}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
