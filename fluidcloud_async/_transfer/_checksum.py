"""SHA-256 off the event loop.

A file uploaded in parallel parts is hashed by one sequential pass in a worker thread that
runs concurrently with the part PUTs: ``hashlib`` releases the GIL on large updates, so on a
multi-core machine the digest costs the upload (almost) no wall time, and the parts need no
ordering between them. Sources that are read once (streams, spools) are hashed as they are
read instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from typing import TYPE_CHECKING, Any

from ._buffers import call_in_thread, in_thread, pread_into, settle

if TYPE_CHECKING:
    from ._sources import Reader

#: Updates smaller than this are hashed inline: the thread hop would cost more.
INLINE_HASH = 256 * 1024
#: Read size of the sequential hashing pass.
HASH_CHUNK = 4 << 20


class Sha256:
    """An incremental SHA-256 whose large updates run in a worker thread."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def update(self, data: Any) -> None:
        """Blocking update (call from a worker thread for large data)."""
        self._h.update(data)

    async def update_async(self, data: Any) -> None:
        """Update without blocking the event loop on large data."""
        if len(data) < INLINE_HASH:
            self._h.update(data)
        else:
            await call_in_thread(self._h.update, data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


async def run_stoppable(func: Any, *args: Any) -> Any:
    """Run ``func(stop, *args)`` in a thread; on cancellation set ``stop`` and wait for the
    thread to notice (it checks between chunks), so no thread outlives its descriptor."""
    stop = threading.Event()
    future = in_thread(func, stop, *args)
    try:
        return await asyncio.shield(future)
    except BaseException:
        stop.set()
        await settle(future)
        raise


def _hash_view(stop: threading.Event, view: memoryview) -> str:
    h = hashlib.sha256()
    for start in range(0, len(view), HASH_CHUNK):
        if stop.is_set():
            raise asyncio.CancelledError
        h.update(view[start : start + HASH_CHUNK])
    return h.hexdigest()


def _hash_fd(stop: threading.Event, fd: int, base: int, size: int) -> str:
    h = hashlib.sha256()
    buf = bytearray(min(HASH_CHUNK, max(size, 1)))
    view = memoryview(buf)
    done = 0
    while done < size:
        if stop.is_set():
            raise asyncio.CancelledError
        n = pread_into(fd, view[: min(len(buf), size - done)], base + done)
        if n == 0:
            raise ValueError(f"the file shrank while uploading ({done} of {size} bytes)")
        h.update(view[:n])
        done += n
    return h.hexdigest()


async def digest_of(reader: Reader) -> str:
    """The SHA-256 hex digest of everything ``reader`` holds, computed off the loop."""
    if reader.sha256 is not None:
        return reader.sha256
    if reader.view is not None:
        return str(await run_stoppable(_hash_view, reader.view))
    if reader.fd is not None:
        return str(await run_stoppable(_hash_fd, reader.fd, reader.base, reader.size))
    hasher = Sha256()
    buf = bytearray(min(HASH_CHUNK, max(reader.size, 1)))
    done = 0
    while done < reader.size:
        n = await reader.readinto(done, memoryview(buf)[: min(len(buf), reader.size - done)])
        if n == 0:
            raise ValueError(f"the file shrank while uploading ({done} of {reader.size} bytes)")
        await hasher.update_async(memoryview(buf)[:n])
        done += n
    return hasher.hexdigest()
