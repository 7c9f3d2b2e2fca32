"""Pooled read buffers and positional reads in a worker thread.

The hot path of an upload reads file ranges into a small set of reusable ``bytearray``
chunks with ``os.preadv`` in a worker thread (the GIL is released during the syscall), then
hands ``memoryview`` slices of them to the socket: no per-chunk allocation, no copy into a
fresh ``bytes``. ``benchmarks/bench_read_path.py`` compares this with aiofiles reads.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

#: Size of one read chunk. Large enough that the thread hop (~20 us) is noise next to the
#: copy, small enough that in-flight parts x 2 chunks stays a few MiB.
CHUNK = 1 << 20

_HAS_PREADV = hasattr(os, "preadv")


class BufferPool:
    """Reusable fixed-size ``bytearray`` chunks.

    The pool itself does not bound memory: callers hold at most two chunks per part slot,
    so the number alive is bounded by the slot count. ``keep`` caps what is retained idle.
    """

    def __init__(self, chunk_size: int = CHUNK, keep: int = 32) -> None:
        self.chunk_size = chunk_size
        self._keep = keep
        self._free: list[bytearray] = []

    def take(self) -> bytearray:
        """A chunk (recycled when one is free)."""
        return self._free.pop() if self._free else bytearray(self.chunk_size)

    def give(self, buf: bytearray) -> None:
        """Return a chunk that no pending read or write still references."""
        if len(self._free) < self._keep and len(buf) == self.chunk_size:
            self._free.append(buf)

    def resize(self, keep: int) -> None:
        """Retain up to ``keep`` idle chunks."""
        self._keep = max(self._keep, keep)


def pread_into(fd: int, view: memoryview, offset: int) -> int:
    """Fill ``view`` from ``fd`` at ``offset`` (blocking; run in a thread). Short only at EOF."""
    total = 0
    want = len(view)
    while total < want:
        if _HAS_PREADV:
            n = os.preadv(fd, [view[total:]], offset + total)
        else:  # pragma: no cover - platforms without preadv
            data = os.pread(fd, want - total, offset + total)
            n = len(data)
            view[total : total + n] = data
        if n == 0:
            break
        total += n
    return total


def in_thread(func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
    """Start ``func(*args)`` in the loop's default executor and return its future now.

    A plain future (not a task) lets one read run while the previous chunk is being sent.
    Callers must await it (shielded on cancellation) before recycling the buffer or
    closing the descriptor it uses.
    """
    return asyncio.get_running_loop().run_in_executor(None, func, *args)


async def settle(future: asyncio.Future[Any] | None) -> None:
    """Wait for a started thread call to finish, ignoring its outcome (cleanup paths)."""
    if future is None:
        return
    cancelled = False
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            # Another cancel arrived while we wait: the thread still runs, so keep
            # waiting (it is one chunk long) and deliver the cancellation afterwards.
            if not future.done():
                cancelled = True
        except BaseException:
            break
    if cancelled:
        raise asyncio.CancelledError


async def call_in_thread(func: Callable[..., Any], *args: Any) -> Any:
    """``await func(*args)`` in a worker thread; a cancellation waits for the (short) call
    to return before propagating, so buffers and descriptors are never released under it."""
    future = in_thread(func, *args)
    try:
        return await asyncio.shield(future)
    except BaseException:
        await settle(future)
        raise
