"""Readers: positional (or, for streams, sequential) access to an opened source's bytes.

Each reader exposes the cheapest path it has - a ``memoryview`` of the whole content, a
descriptor for ``os.preadv``/``sendfile``, or locked seek+read - and counts the request
bodies using it, so the descriptor is never closed under a read that is still running.
"""

from __future__ import annotations

import asyncio
import io
import os
import stat
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio

from ._buffers import call_in_thread, pread_into
from ._checksum import Sha256


@dataclass(frozen=True)
class Identity:
    """What a file looked like when it was opened: any write, append, truncation or
    replacement moves at least one field (within the filesystem's timestamp granularity,
    see the README's "What is verified end to end")."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    dev: int

    @classmethod
    def of(cls, st: os.stat_result) -> Identity:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)

    def diff(self, other: Identity) -> str:
        """The fields that differ, for messages (empty when the same)."""
        return ", ".join(
            f"{name} {getattr(self, name)} -> {getattr(other, name)}"
            for name in self.__dataclass_fields__
            if getattr(self, name) != getattr(other, name)
        )


class SourceChanged(ValueError):
    """Internal: the opened source is not the file it was (raised as SourceChangedError)."""


def changes(fd: int, path: str | None, opened: Identity) -> str:
    """Blocking (run in a thread): what changed in the file behind ``fd`` (and the file
    at ``path``, which a rename may have replaced) since ``opened``; empty if nothing."""
    now = Identity.of(os.fstat(fd))
    problems = [f"the open file: {opened.diff(now)}"] if now != opened else []
    if path is not None:
        try:
            there = Identity.of(os.stat(path))
        except OSError as exc:
            problems.append(f"{path!r} is gone ({exc.strerror})")
        else:
            if there != opened:
                what = "another file" if (there.ino, there.dev) != (opened.ino, opened.dev) else ""
                problems.append(f"{path!r}: {what or opened.diff(there)}")
    return "; ".join(problems)


class Reader:
    """Positional access to an opened source's bytes (offsets relative to its start)."""

    size: int = 0
    view: memoryview | None = None
    """The whole content, when it is in memory (zero-copy slices)."""
    fd: int | None = None
    """A descriptor for positional reads (``base`` + offset)."""
    base: int = 0
    sendfile: Any = None
    """An object for ``loop.sendfile`` when we own ``fd`` (its position is ours to move)."""
    sequential: bool = False
    """True for streams: parts must be read once, in order, with :meth:`read_next`."""
    sha256: str | None = None
    """Digest computed while spooling, if any."""
    identity: Identity | None = None
    """The caller's file as it was when opened (files with a descriptor), checked again
    after the last part by :meth:`check_unchanged`."""
    path: str | None = None
    """The path it was opened from (a path source), re-checked too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._idle: asyncio.Event | None = None

    def enter(self) -> None:
        """A request body starts using the reader (closing waits for it)."""
        self._users += 1

    def leave(self) -> None:
        self._users -= 1
        if self._users == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self, limit: float = 10.0) -> None:
        """Before closing: wait (shielded, bounded) until no request body still reads.

        aiohttp writes bodies from its own task, which can outlive a cancelled caller by
        a loop iteration or two."""
        if self._users == 0:
            return
        self._idle = asyncio.Event()
        with anyio.CancelScope(shield=True), anyio.move_on_after(limit):
            await self._idle.wait()

    async def readinto(self, offset: int, out: memoryview) -> int:
        """Fill ``out`` from ``offset``; returns bytes read (short only at the end)."""
        if self.view is not None:
            n = min(len(out), max(0, self.size - offset))
            out[:n] = self.view[offset : offset + n]
            return n
        if self.fd is not None:
            n = await call_in_thread(pread_into, self.fd, out, self.base + offset)
            return int(n)
        return await self._readinto_generic(offset, out)

    async def _readinto_generic(self, offset: int, out: memoryview) -> int:
        raise NotImplementedError

    async def read_next(self, out: memoryview) -> int:
        """Sequential sources only: the next ``len(out)`` bytes."""
        raise NotImplementedError

    def digest(self) -> str | None:
        """The SHA-256 computed while reading, when the reader computes one."""
        return self.sha256

    async def check_unchanged(self) -> None:
        """Raise :class:`SourceChanged` if the file changed since it was opened (an
        ``fstat`` of the same descriptor, plus a ``stat`` of the path, in a thread)."""
        if self.identity is None or self.fd is None:
            return
        problem = await call_in_thread(changes, self.fd, self.path, self.identity)
        if problem:
            raise SourceChanged(f"the source changed while it was uploaded ({problem})")


class _FdHandle:
    """What ``loop.sendfile`` needs of a file: a descriptor we own (it moves its offset)."""

    mode = "rb"

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        return self._fd

    def seek(self, offset: int, whence: int = 0) -> int:
        return os.lseek(self._fd, offset, whence)


class SyncFileReader(Reader):
    """A seekable file object without a usable descriptor: seek+readinto under a lock."""

    def __init__(self, fobj: Any, start: int, size: int) -> None:
        super().__init__()
        self._fobj = fobj
        self.base = start
        self.size = size

    def _read_at(self, offset: int, out: memoryview) -> int:
        with self._lock:
            self._fobj.seek(self.base + offset)
            total = 0
            while total < len(out):
                if hasattr(self._fobj, "readinto"):
                    n = self._fobj.readinto(out[total:])
                else:
                    data = self._fobj.read(len(out) - total)
                    n = len(data)
                    out[total : total + n] = data
                if not n:
                    break
                total += n
            return total

    async def _readinto_generic(self, offset: int, out: memoryview) -> int:
        return int(await call_in_thread(self._read_at, offset, out))


class AioFileReader(Reader):
    """An aiofiles file without a usable descriptor: awaited seek+read under a lock."""

    def __init__(self, afile: Any, start: int, size: int) -> None:
        super().__init__()
        self._afile = afile
        self._alock = anyio.Lock()
        self.base = start
        self.size = size

    async def _readinto_generic(self, offset: int, out: memoryview) -> int:
        async with self._alock:
            await self._afile.seek(self.base + offset)
            total = 0
            while total < len(out):
                data = await self._afile.read(len(out) - total)
                if not data:
                    break
                out[total : total + len(data)] = data
                total += len(data)
            return total


class StreamReader(Reader):
    """An async iterable of known size, read once in order (multipart parts)."""

    sequential = True

    def __init__(self, it: AsyncIterator[Any], size: int, hasher: Sha256 | None) -> None:
        super().__init__()
        self._it = it
        self.size = size
        self._pending = memoryview(b"")
        self._pos = 0
        self._hasher = hasher

    async def read_next(self, out: memoryview) -> int:
        filled = 0
        while filled < len(out):
            if not self._pending:
                try:
                    chunk = await self._it.__anext__()
                except StopAsyncIteration:
                    break
                if not isinstance(chunk, (bytes, bytearray, memoryview)):
                    raise TypeError(f"the async iterable yielded a {type(chunk).__name__}")
                self._pending = memoryview(chunk).cast("B")
            take = min(len(out) - filled, len(self._pending))
            out[filled : filled + take] = self._pending[:take]
            self._pending = self._pending[take:]
            filled += take
        self._pos += filled
        if self._hasher is not None and filled:
            await self._hasher.update_async(out[:filled])
        if filled < len(out) or self._pos > self.size:
            raise ValueError(f"the stream ended after {self._pos} bytes but size={self.size}")
        if self._pos == self.size:
            await self._expect_end()
        return filled

    async def _expect_end(self) -> None:
        if self._pending:
            raise ValueError(f"the stream is longer than size={self.size}")
        async for extra in self._it:
            if extra:
                raise ValueError(f"the stream is longer than size={self.size}")

    def digest(self) -> str | None:
        return None if self._hasher is None else self._hasher.hexdigest()


def memory_reader(view: memoryview) -> Reader:
    reader = Reader()
    reader.view = view.cast("B") if view.format != "B" or view.ndim != 1 else view
    reader.size = reader.view.nbytes
    return reader


def fd_reader(fd: int, size: int, *, base: int = 0, owned: bool) -> Reader:
    reader = Reader()
    reader.fd = fd
    reader.base = base
    reader.size = size
    reader.sendfile = _FdHandle(fd) if owned else None
    return reader


def usable_fd(fobj: Any) -> int | None:
    try:
        fd = fobj.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    if not isinstance(fd, int):
        return None
    try:
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except OSError:
        return None
