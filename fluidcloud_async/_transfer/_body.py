"""Streaming request bodies for storage PUTs (``aiohttp.payload.Payload`` subclasses).

Three write paths, cheapest first, chosen per attempt:

* **sendfile** - a file we own on a plain-TCP connection: ``loop.sendfile`` moves the range
  from the page cache to the socket in the kernel (no copy through Python, no buffers).
  Not available on TLS or non-default loops; we then fall back to
* **pooled preadv** - the next chunk is read with ``os.preadv`` in a worker thread into a
  pooled ``bytearray`` while the current one is written; ``memoryview`` slices go to the
  transport (no per-chunk allocation).
* **memory** - bytes-like sources: zero-copy ``memoryview`` slices of the caller's object.

Every body counts what it sent so a failed attempt can roll progress back, and records a
failure of the *source* (file shrank, stream too short) so it is not retried.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import anyio
from aiohttp.abc import AbstractStreamWriter

from ._buffers import CHUNK, BufferPool, in_thread, pread_into, settle
from ._progress import Progress
from ._sources import Reader

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
