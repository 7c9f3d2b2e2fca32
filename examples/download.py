"""Fetch a file to disk with SHA-256 verification (by id or by client_key).

    python download.py <file-id-or-client-key> <destination>
Without arguments it uploads a sample first, then downloads it.
"""

from __future__ import annotations

import asyncio
import sys

from fluidcloud_async import AsyncFluidCloud, NotFoundError


async def main(argv: list[str]) -> None:
    async with AsyncFluidCloud() as fc:
        if len(argv) == 2:
            ref, dest = argv
            try:
                file = await fc.files.get(ref)
            except NotFoundError:
                file = await fc.files.resolve(ref)
        else:
            space = await fc.spaces.create("Download example")
            payload = bytes(range(256)) * 40_000  # ~10 MB
            file = await fc.files.upload(
                payload,
                space.id,
                name="sample.bin",
                client_key="examples/sample.bin",
                wait_until_clean=True,
            )
            dest = "sample-copy.bin"

        def progress(done: int, total: int) -> None:
            print(f"\r{done}/{total} bytes", end="", flush=True)

        try:
            result = await fc.files.download(file.id, dest, progress=progress)
        except FileExistsError:
            sys.exit(f"{dest} exists: not replaced (pass overwrite=True to replace it)")
        checked = f"sha256 verified: {result.sha256}" if result.sha256 else "no sha256 on record"
        print(f"\nsaved {result.size} bytes to {dest}, size verified, {checked}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
