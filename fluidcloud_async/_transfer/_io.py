"""How bytes move: pooled buffers, request bodies, the SHA-256 pass and progress.

**Buffers.** The hot path of an upload reads file ranges into a small set of reusable
``bytearray`` chunks with ``os.preadv`` in a worker thread (the GIL is released during the
syscall), then hands ``memoryview`` slices of them to the socket: no per-chunk allocation,
no copy into a fresh ``bytes``. ``benchmarks/bench_read_path.py`` compares this with
aiofiles reads.

**Bodies.** Streaming request bodies of storage PUTs (``aiohttp.payload.Payload``
subclasses), with three write paths, cheapest first, chosen per attempt:

* **sendfile** - a file we own on a plain-TCP connection: ``loop.sendfile`` moves the range
  from the page cache to the socket in the kernel (no copy through Python, no buffers).
  Not available on TLS or non-default loops; we then fall back to
* **pooled preadv** - the next chunk is read with ``os.preadv`` in a worker thread into a
  pooled ``bytearray`` while the current one is written; ``memoryview`` slices go to the
  transport (no per-chunk allocation).
* **memory** - bytes-like sources: zero-copy ``memoryview`` slices of the caller's object.

Every body counts what it sent so a failed attempt can roll progress back, and records a
failure of the *source* (file shrank, stream too short) so it is not retried.

**Checksum.** SHA-256 off the event loop. A file uploaded in parallel parts is hashed by
one sequential pass in a worker thread that runs concurrently with the part PUTs:
``hashlib`` releases the GIL on large updates, so on a multi-core machine the digest costs
the upload (almost) no wall time, and the parts need no ordering between them. Sources
that are read once (streams, spools) are hashed as they are read instead.

**Progress.** Bytes are counted on every chunk (an integer add); the callback runs at most
every :data:`MIN_INTERVAL` seconds, so a fast upload costs ~10 calls a second whatever its
chunk rate. Values only grow, except that a failed attempt's bytes are subtracted before
it is retried (documented rollback). :meth:`Progress.finish` makes the last call report
exactly the total.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio
from aiohttp.abc import AbstractStreamWriter

if TYPE_CHECKING:
    from ._sources import Reader

# --- buffers -----------------------------------------------------------------

#: Size of one read chunk. Large enough that the thread hop (~20 us) is noise next to the
#: copy, small enough that in-flight parts x BUFFERS_PER_BODY chunks stays a few MiB.
CHUNK = 1 << 20


_HAS_PREADV = hasattr(os, "preadv")


class BufferPool:
    """Reusable fixed-size ``bytearray`` chunks.

    The pool itself does not bound memory: callers hold at most ``BUFFERS_PER_BODY`` chunks
    per part slot, so the number alive is bounded by the slot count. ``keep`` caps what is
    retained idle.
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


# --- bodies --------------------------------------------------------------------

#: Bytes per ``loop.sendfile`` call: the progress granularity of the zero-copy path.
SENDFILE_SLICE = 8 << 20


#: Buffers per in-flight body on the preadv path: one being read, one being written, and
#: one the transport may still reference after a drain on Python >= 3.12 (it queues
#: memoryviews instead of copying them), so a buffer is never refilled while referenced.
BUFFERS_PER_BODY = 3


_NO_SENDFILE = (asyncio.SendfileNotAvailableError, NotImplementedError, AttributeError)


class _Body(aiohttp.payload.Payload):
    """Common bookkeeping: size, bytes sent, progress, source errors."""

    def __init__(self, length: int, progress: Progress | None, stall_timeout: float) -> None:
        super().__init__(None)
        self._size = length
        self._length = length
        self._progress = progress if progress is not None and progress.active else None
        self._stall = stall_timeout
        self.sent = 0
        self.error: BaseException | None = None

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a streamed upload body cannot be decoded")

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        if self.sent:  # aiohttp re-sends on a stale keep-alive connection: start over
            await self.rollback()
        try:
            await self._write(writer)
        except (OSError, aiohttp.ClientError, asyncio.CancelledError):
            raise
        except Exception as exc:  # the source failed, not the connection
            self.error = exc
            raise

    async def _write(self, writer: AbstractStreamWriter) -> None:
        raise NotImplementedError

    async def count(self, n: int) -> None:
        """``n`` more bytes of this attempt went out (a thread transport reports them)."""
        await self._count(n)

    async def _count(self, n: int) -> None:
        self.sent += n
        if self._progress is not None:
            await self._progress.add(n)

    async def rollback(self) -> None:
        """Un-count this attempt's bytes (it failed and will be re-sent)."""
        sent, self.sent = self.sent, 0
        if sent and self._progress is not None:
            await self._progress.add(-sent)


async def _flushed_down_to(transport: Any, limit: int) -> None:
    """Wait until the transport buffers at most ``limit`` bytes (normally at once)."""
    while transport is not None and transport.get_write_buffer_size() > limit:  # noqa: ASYNC110
        await asyncio.sleep(0.001)


class MemoryBody(_Body):
    """Zero-copy slices of an in-memory buffer."""

    def __init__(
        self, view: memoryview, progress: Progress | None, stall_timeout: float = 300.0
    ) -> None:
        super().__init__(len(view), progress, stall_timeout)
        self._view = view

    @property
    def view(self) -> memoryview:
        """The bytes to send."""
        return self._view

    async def _write(self, writer: AbstractStreamWriter) -> None:
        await _write_view(writer, self._view, self)


async def _write_view(writer: AbstractStreamWriter, view: memoryview, body: _Body) -> None:
    for start in range(0, len(view), CHUNK):
        chunk = view[start : start + CHUNK]
        with anyio.fail_after(body._stall):
            await writer.write(chunk)
        await body._count(len(chunk))


class FileBody(_Body):
    """A byte range of a positional reader: sendfile when possible, else pooled preadv."""

    def __init__(
        self,
        reader: Reader,
        offset: int,
        length: int,
        *,
        pool: BufferPool,
        progress: Progress | None,
        stall_timeout: float = 300.0,
        use_sendfile: bool = True,
    ) -> None:
        super().__init__(length, progress, stall_timeout)
        self._reader = reader
        self._offset = offset
        self._pool = pool
        self._use_sendfile = use_sendfile

    @property
    def reader(self) -> Reader:
        """The source read from."""
        return self._reader

    @property
    def offset(self) -> int:
        """Where the range starts in the source."""
        return self._offset

    @property
    def pool(self) -> BufferPool:
        """The read buffers this body may take (one at a time per chunk in flight)."""
        return self._pool

    async def _write(self, writer: AbstractStreamWriter) -> None:
        if self._length == 0:
            return
        reader = self._reader
        reader.enter()
        try:
            if reader.view is not None:
                view = reader.view[self._offset : self._offset + self._length]
                await _write_view(writer, view, self)
            elif not (self._use_sendfile and await self._sendfile(writer)):
                await self._write_buffers(writer)
        finally:
            reader.leave()

    async def _sendfile(self, writer: AbstractStreamWriter) -> bool:
        """The zero-copy path; False when unavailable (nothing was sent then)."""
        file = self._reader.sendfile
        transport = getattr(writer, "transport", None)
        if file is None or transport is None or transport.get_extra_info("sslcontext"):
            return False
        send_headers = getattr(writer, "send_headers", None)
        if send_headers is not None:
            send_headers()  # aiohttp >= 3.12 buffers headers until the first body write
        elif getattr(writer, "_headers_buf", None):
            return False
        loop = asyncio.get_running_loop()
        start = self._reader.base + self._offset
        done = 0
        while done < self._length:
            count = min(SENDFILE_SLICE, self._length - done)
            try:
                with anyio.fail_after(self._stall):
                    sent = await loop.sendfile(transport, file, start + done, count, fallback=False)
            except _NO_SENDFILE:
                if done == 0:
                    return False
                raise
            if sent < count:
                raise ValueError("the file shrank while it was being uploaded")
            done += sent
            await self._count(sent)
        return True

    async def _write_buffers(self, writer: AbstractStreamWriter) -> None:
        pool = self._pool
        buffers = [pool.take() for _ in range(BUFFERS_PER_BODY)]
        transport = getattr(writer, "transport", None)
        pending: asyncio.Future[Any] | None = None
        clean = False
        try:
            pending = self._read(buffers[0], 0)
            done = index = last = chunks = 0
            while done < self._length:
                assert pending is not None
                n = int(await pending)
                if n < min(len(buffers[index]), self._length - done):
                    raise ValueError("the file shrank while it was being uploaded")
                nxt = (index + 1) % BUFFERS_PER_BODY
                pending = None
                if done + n < self._length:
                    # buffers[nxt] was written two chunks ago; the transport holds at most
                    # the last chunk's bytes after a drain, unless its limits were raised.
                    if chunks >= BUFFERS_PER_BODY - 1:
                        await _flushed_down_to(transport, last)
                    pending = self._read(buffers[nxt], done + n)
                with anyio.fail_after(self._stall):
                    await writer.write(memoryview(buffers[index])[:n])
                done += n
                index, last, chunks = nxt, n, chunks + 1
                await self._count(n)
            clean = True
        finally:
            await settle(pending)
            if clean:  # after a failure a closing transport may still reference them
                for buf in buffers:
                    pool.give(buf)

    def _read(self, buf: bytearray, done: int) -> asyncio.Future[Any]:
        view = memoryview(buf)[: min(len(buf), self._length - done)]
        reader = self._reader
        if reader.fd is not None:
            return in_thread(pread_into, reader.fd, view, reader.base + self._offset + done)
        return asyncio.ensure_future(reader.readinto(self._offset + done, view))


# --- checksum ----------------------------------------------------------------

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


def hash_fd_into(stop: threading.Event, h: hashlib._Hash, fd: int, base: int, size: int) -> None:
    """Feed bytes ``[base, base + size)`` of ``fd`` to ``h`` (blocking: a worker thread's
    job), stopping with CancelledError between chunks once ``stop`` is set."""
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


def _hash_fd(stop: threading.Event, fd: int, base: int, size: int) -> str:
    h = hashlib.sha256()
    hash_fd_into(stop, h, fd, base, size)
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


# --- progress ----------------------------------------------------------------

#: Seconds between two callback calls (at most ~10 a second).
MIN_INTERVAL = 0.1


ProgressCallback = Callable[[int, int], Awaitable[None] | None]


class Progress:
    """Counts bytes sent for one transfer (or a batch) and calls ``callback(sent, total)``."""

    __slots__ = ("_busy", "_callback", "_last", "_parent", "sent", "total")

    def __init__(
        self,
        callback: ProgressCallback | None,
        total: int,
        *,
        parent: Progress | None = None,
    ) -> None:
        self._callback = callback
        self.total = total
        self.sent = 0
        self._parent = parent
        self._last = time.monotonic()
        self._busy = False

    @property
    def active(self) -> bool:
        """Whether anyone listens (else counting can be skipped entirely)."""
        return self._callback is not None or (self._parent is not None and self._parent.active)

    async def add(self, n: int) -> None:
        """``n`` more bytes went out (negative: a failed attempt is rolled back)."""
        self.sent += n
        if self._parent is not None:
            await self._parent.add(n)
        if self._callback is None or self._busy:
            return
        now = time.monotonic()
        if now - self._last >= MIN_INTERVAL or n < 0:
            self._last = now
            await self._emit(max(0, self.sent))

    async def finish(self) -> None:
        """Report exactly the total (the last call)."""
        if self._callback is not None:
            self.sent = self.total
            await self._emit(self.total)

    async def _emit(self, value: int) -> None:
        assert self._callback is not None
        self._busy = True
        try:
            result: Any = self._callback(value, self.total)
            if inspect.isawaitable(result):
                await result
        finally:
            self._busy = False
