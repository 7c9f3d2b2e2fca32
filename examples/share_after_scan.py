"""Quarantine-until-clean: share a file only once it is scanned clean.

Two patterns: poll the file (``wait_until_clean``) or retry the share on 409 with backoff.
Then an expiring link, a permanent one, and revocation.
"""

from __future__ import annotations

import asyncio

import aiohttp

from fluidcloud_async import AsyncFluidCloud, ConflictError, Link


async def share_when_ready(fc: AsyncFluidCloud, file_id: str, *, attempts: int = 20) -> Link:
    """Retry the share on 409 (not clean yet) with exponential backoff."""
    delay = 0.1
    for _ in range(attempts):
        try:
            return await fc.files.signed_url(file_id, expires_in_days=7)
        except ConflictError:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise TimeoutError(f"file {file_id} was not scanned clean in time")


async def main() -> None:
    async with AsyncFluidCloud() as fc, aiohttp.ClientSession() as anonymous:
        space = await fc.spaces.create("Shares")

        # Pattern 1: retry on 409.
        report = await fc.files.upload(b"quarterly numbers\n", space.id, name="report.txt")
        expiring = await share_when_ready(fc, report.id)
        print("expiring link", expiring.url, "until", expiring.expires_at)

        # Pattern 2: wait for the verdict, then mint a permanent link.
        logo = await fc.files.upload(b"<svg/>", space.id, name="logo.svg", wait_until_clean=True)
        permanent = await fc.files.public_url(logo.id)
        async with anonymous.get(permanent.url) as resp:  # raw links need no key
            print("served", resp.status, await resp.read())

        # Revoke: the link stops working (edge caches may serve it for up to an hour).
        await fc.shares.revoke(permanent.id)
        async with anonymous.get(permanent.url) as resp:
            print("after revoke", resp.status)
        active = await fc.shares.list(file_id=logo.id)
        print("active links for logo:", len(active))


if __name__ == "__main__":
    asyncio.run(main())
