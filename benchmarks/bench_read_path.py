"""Read path of the upload engine: aiofiles versus ``os.preadv`` into pooled buffers.

Reads a generated file (page-cached) as N concurrent "parts", each in 1 MiB chunks, the
way the upload body does, and reports MiB/s and CPU seconds per GiB (median of reps):

* ``aiofiles read``: ``await f.seek(); await f.read(n)`` per chunk on a per-part handle (a
  fresh ``bytes`` per chunk: the aiofiles pattern of the design card);
* ``aiofiles readinto``: the same, reading into one reused buffer per part;
* ``preadv pooled``: ``os.preadv`` of a reused buffer in the loop's executor, one future per
  chunk, next chunk read while the previous is "sent" (the engine's path);
* ``preadv to_thread``: the same via ``anyio.to_thread.run_sync`` (for the thread-hop cost).

    python -m benchmarks.bench_read_path [--size-mib 1024] [--parts 8] [--reps 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiofiles
import anyio.to_thread

MiB = 1024 * 1024
CHUNK = MiB


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _ranges(size: int, parts: int) -> list[tuple[int, int]]:
    step = -(-size // parts)
    return [(start, min(step, size - start)) for start in range(0, size, step)]


async def aiofiles_read(path: str, start: int, length: int) -> int:
    total = 0
    async with aiofiles.open(path, "rb") as fh:
        await fh.seek(start)
        while total < length:
            data = await fh.read(min(CHUNK, length - total))
            if not data:
                break
            total += len(data)
    return total


async def aiofiles_readinto(path: str, start: int, length: int) -> int:
    total = 0
    buf = bytearray(CHUNK)
    async with aiofiles.open(path, "rb") as fh:
        await fh.seek(start)
        while total < length:
            view = memoryview(buf)[: min(CHUNK, length - total)]
            n = await fh.readinto(view)
            if not n:
                break
            total += n
    return total


async def preadv_pooled(path: str, start: int, length: int) -> int:
    loop = asyncio.get_running_loop()
    fd = os.open(path, os.O_RDONLY)
    buffers = [bytearray(CHUNK), bytearray(CHUNK)]
    try:
        total, index = 0, 0
        pending = loop.run_in_executor(
            None, os.preadv, fd, [memoryview(buffers[0])[: min(CHUNK, length)]], start
        )
        while total < length:
            n = await pending
            if not n:
                break
            total += n
            index ^= 1
            if total < length:
                view = memoryview(buffers[index])[: min(CHUNK, length - total)]
                pending = loop.run_in_executor(None, os.preadv, fd, [view], start + total)
            await asyncio.sleep(0)  # where the body would write the previous chunk
        return total
    finally:
        os.close(fd)


async def preadv_to_thread(path: str, start: int, length: int) -> int:
    fd = os.open(path, os.O_RDONLY)
    buf = bytearray(CHUNK)
    try:
        total = 0
        while total < length:
            view = memoryview(buf)[: min(CHUNK, length - total)]
            n = await anyio.to_thread.run_sync(os.preadv, fd, [view], start + total)
            if not n:
                break
            total += n
        return total
    finally:
        os.close(fd)


Reader = Callable[[str, int, int], Awaitable[int]]
READERS: dict[str, Reader] = {
    "aiofiles read": aiofiles_read,
    "aiofiles readinto": aiofiles_readinto,
    "preadv pooled": preadv_pooled,
    "preadv to_thread": preadv_to_thread,
}


async def _once(reader: Reader, path: str, size: int, parts: int) -> tuple[float, float]:
    cpu0, t0 = _cpu(), time.perf_counter()
    got = await asyncio.gather(*(reader(path, s, n) for s, n in _ranges(size, parts)))
    elapsed, cpu = time.perf_counter() - t0, _cpu() - cpu0
    assert sum(got) == size
    return size / MiB / elapsed, cpu / (size / 1024**3)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--reps", type=int, default=5)
    ns = parser.parse_args()
    size = ns.size_mib * MiB
    root = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    work = Path(tempfile.mkdtemp(prefix="bench-read-", dir=root))
    try:
        path = work / "data.bin"
        with open(path, "wb") as fh:  # noqa: ASYNC230 - set-up, not measured
            for _ in range(0, size, 16 * MiB):
                fh.write(os.urandom(min(16 * MiB, size - fh.tell())))
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in READERS}
        for _ in range(ns.reps):
            for name, reader in READERS.items():  # interleaved: same conditions for all
                results[name].append(await _once(reader, str(path), size, ns.parts))
        print(f"{ns.size_mib} MiB in {ns.parts} concurrent parts, 1 MiB chunks, {ns.reps} reps")
        base = statistics.median(r[0] for r in results["aiofiles read"])
        print(f"{'reader':<20}{'MiB/s':>9}{'x aiofiles':>12}{'CPU s/GiB':>11}")
        for name, runs in results.items():
            mib = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            print(f"{name:<20}{mib:>9.0f}{mib / base:>12.2f}{cpu:>11.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
