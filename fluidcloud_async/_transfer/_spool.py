"""Spooling sources of unknown size: memory up to a small limit, then a temporary file.

Memory stays bounded by :data:`MEMORY_LIMIT` plus one chunk whatever the stream's length;
the SHA-256 is computed on the way, so a spooled source is never read twice for it.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import IO, Any

from ._buffers import CHUNK, call_in_thread

#: Spools up to this size stay in memory (no temporary file for small streams).
MEMORY_LIMIT = 8 << 20


class _Spool:
    def __init__(self, hash_it: bool) -> None:
        self.mem = bytearray()
        self.file: IO[bytes] | None = None
        self.hash = hashlib.sha256() if hash_it else None
        self.size = 0

    def write(self, data: Any) -> None:
        """Blocking: hash and store ``data`` (run in a thread for large chunks)."""
        if self.hash is not None:
            self.hash.update(data)
        self.size += len(data)
        if self.file is None and len(self.mem) + len(data) <= MEMORY_LIMIT:
            self.mem += data
            return
        if self.file is None:
            self.file = tempfile.TemporaryFile(prefix="fluidcloud-spool-")  # noqa: SIM115
            self.file.write(self.mem)
            self.mem = bytearray()
        self.file.write(data)

    def read_step(self, fobj: Any, scratch: memoryview) -> int:
        """Blocking: one chunk from a sync file object into the spool; 0 at EOF."""
        readinto = getattr(fobj, "readinto", None)
        if readinto is not None:
            n = readinto(scratch)
            if n:
                self.write(scratch[:n])
            return int(n or 0)
        data = fobj.read(len(scratch))
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"the file object's read() returned {type(data).__name__}, not bytes")
        if data:
            self.write(data)
        return len(data)

    def finish(self) -> None:
        if self.file is not None:
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


@asynccontextmanager
async def _result(spool: _Spool, size: int | None) -> AsyncIterator[tuple[memoryview | int, str]]:
    try:
        if size is not None and spool.size != size:
            raise ValueError(f"the source gave {spool.size} bytes but size={size}")
        await call_in_thread(spool.finish)
        digest = spool.hash.hexdigest() if spool.hash is not None else ""
        if spool.file is None:
            view = memoryview(spool.mem)
            try:
                yield view, digest
            finally:
                view.release()
        else:
            yield spool.file.fileno(), digest
    finally:
        spool.close()


@asynccontextmanager
async def spool_sync(
    fobj: Any, size: int | None, *, hash_it: bool = True
) -> AsyncIterator[tuple[memoryview | int, str]]:
    """Copy a non-seekable sync file object; yields (memoryview or fd, sha256 hex or "")."""
    spool = _Spool(hash_it=hash_it)
    try:
        scratch = memoryview(bytearray(CHUNK))
        while await call_in_thread(spool.read_step, fobj, scratch):
            pass
    except BaseException:
        spool.close()
        raise
    async with _result(spool, size) as result:
        yield result


@asynccontextmanager
async def spool_async(
    chunks: AsyncIterator[Any], size: int | None, *, hash_it: bool = True
) -> AsyncIterator[tuple[memoryview | int, str]]:
    """Copy an async iterable of bytes; yields (memoryview or fd, sha256 hex or "")."""
    spool = _Spool(hash_it=hash_it)
    batch: list[Any] = []
    batched = 0

    def flush(items: list[Any]) -> None:
        for item in items:
            spool.write(item)

    try:
        async for chunk in chunks:
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise TypeError(f"the async iterable yielded a {type(chunk).__name__}, not bytes")
            if not chunk:
                continue
            # Copies of mutable chunks: the producer may reuse its buffer.
            batch.append(chunk if isinstance(chunk, bytes) else bytes(chunk))
            batched += len(chunk)
            if size is not None and spool.size + batched > size:
                raise ValueError(f"the source is longer than size={size}")
            if batched >= CHUNK:
                items, batch, batched = batch, [], 0
                await call_in_thread(flush, items)
        if batch:
            await call_in_thread(flush, batch)
    except BaseException:
        spool.close()
        raise
    async with _result(spool, size) as result:
        yield result
