"""Quickstart: space, folder, upload, wait for clean, public link, resolve by client_key, quota.

Run against the emulator:
    python -m fluidcloud_async.emulator --port 8787 &   # prints the two variables below
    FLUIDCLOUD_BASE_URL=http://127.0.0.1:8787 FLUIDCLOUD_API_KEY=fck_test_... python quickstart.py
"""

from __future__ import annotations

import asyncio

from fluidcloud_async import AsyncFluidCloud


async def main() -> None:
    async with AsyncFluidCloud() as fc:  # key and origin from the environment
        space = await fc.spaces.create("Job Outputs")
        folder = await fc.folders.create("job-7", space_id=space.id)

        asset = await fc.files.upload(
            b"\x89PNG\r\n\x1a\n" + bytes(1024),
            space.id,
            folder_id=folder.id,
            name="out.png",
            client_key="results/job-7/out.png",
            wait_until_clean=True,
        )
        print("stored", asset.id, asset.mime, asset.scan_status)

        link = await fc.files.public_url(asset.id)
        print("hotlink", link.url)

        same = await fc.files.resolve("results/job-7/out.png")
        assert same.id == asset.id

        q = await fc.quota.usage()
        limit = "unlimited" if q.bytes_unlimited else f"{q.bytes_limit} bytes"
        print(f"storage {q.bytes_used} bytes used of {limit}; {q.links_used} links")


if __name__ == "__main__":
    asyncio.run(main())
