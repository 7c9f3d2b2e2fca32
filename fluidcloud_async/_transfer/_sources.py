"""Sources: what the caller passed -> a validated :class:`Source` -> an opened :class:`Reader`.

:func:`describe` validates synchronously (no network, only ``stat``) and returns one small
class per kind of source (:class:`PathSource`, :class:`MemorySource`,
:class:`FileObjectSource`, :class:`AioFileSource`, :class:`StreamSource`). Their
``open()`` yields a reader exposing the cheapest read path there is: a ``memoryview`` of
the whole content (bytes-like, ``BytesIO``), a descriptor for ``os.preadv`` / ``sendfile``
(paths, real files, spools), locked seek+read (any other seekable object), or one
sequential pass (streams of known size). Sources of unknown size are spooled first: to
memory up to :data:`MEMORY_LIMIT`, then to a temporary file, hashed on the way so they are
never read twice. A reader counts the request bodies using it, so its descriptor is never
closed under a read that is still running.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import mimetypes
import os
import stat
import tempfile
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import IO, Any, Protocol, overload

import aiofiles.base
import anyio

from .._exceptions import (
    EntryReplacedError,
    EntrySkipped,
    MissingSourceError,
    NotRegularFileError,
    SourceChanged,
)
from .._types import SkipReason, UploadSource
from .._validate_args import require_content_type, require_count, require_path, require_text
from ._io import CHUNK, Sha256, call_in_thread, pread_into

DEFAULT_NAME = "upload.bin"

#: Spools up to this size stay in memory (no temporary file for small streams).
MEMORY_LIMIT = 8 << 20


# -- readers -----------------------------------------------------------------------------


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
    """Positional access to an opened source's bytes (offsets relative to its start).

    Everything a reader knows is given to its constructor (see :func:`memory_reader`,
    :func:`fd_reader` and the subclasses); nothing is filled in after it is built."""

    sequential: bool = False
    """True for streams: parts must be read once, in order, with :meth:`read_next`."""

    def __init__(
        self,
        size: int = 0,
        *,
        view: memoryview | None = None,
        fd: int | None = None,
        base: int = 0,
        sendfile: Any = None,
        sha256: str | None = None,
        identity: Identity | None = None,
        path: str | None = None,
    ) -> None:
        self.size = size
        self.view = view  # the whole content, when it is in memory (zero-copy slices)
        self.fd = fd  # a descriptor for positional reads (at ``base`` + offset)
        self.base = base
        self.sendfile = sendfile  # for ``loop.sendfile``, when we own ``fd`` (and its offset)
        self.sha256 = sha256  # computed while spooling, if it was
        # The caller's file as it was when opened, and the path it was opened from:
        # both checked again after the last part by check_unchanged().
        self.identity = identity
        self.path = path
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


def memory_reader(view: memoryview, *, sha256: str | None = None) -> Reader:
    flat = view if view.format == "B" and view.ndim == 1 else view.cast("B")
    return Reader(flat.nbytes, view=flat, sha256=sha256)


def fd_reader(
    fd: int,
    size: int,
    *,
    base: int = 0,
    owned: bool,
    sha256: str | None = None,
    identity: Identity | None = None,
    path: str | None = None,
) -> Reader:
    """A reader of ``fd``; ``owned``: ours alone, so sendfile may move its offset."""
    handle = _FdHandle(fd) if owned else None
    return Reader(
        size, fd=fd, base=base, sendfile=handle, sha256=sha256, identity=identity, path=path
    )


class SyncFileReader(Reader):
    """A seekable file object without a usable descriptor: seek+readinto under a lock."""

    def __init__(self, fobj: Any, start: int, size: int) -> None:
        super().__init__(size, base=start)
        self._fobj = fobj

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
        super().__init__(size, base=start)
        self._afile = afile
        self._alock = anyio.Lock()

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
        super().__init__(size)
        self._it = it
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

    async def chunks(self) -> AsyncIterator[memoryview]:
        """The whole stream in order, through one reused buffer (to spool it)."""
        buf = memoryview(bytearray(min(CHUNK, max(self.size, 1))))
        done = 0
        while done < self.size:
            n = await self.read_next(buf[: min(len(buf), self.size - done)])
            done += n
            yield buf[:n]
        if self.size == 0:  # read_next never ran: still refuse a longer stream
            await self._expect_end()

    async def _expect_end(self) -> None:
        if self._pending:
            raise ValueError(f"the stream is longer than size={self.size}")
        async for extra in self._it:
            if extra:
                raise ValueError(f"the stream is longer than size={self.size}")

    def digest(self) -> str | None:
        return None if self._hasher is None else self._hasher.hexdigest()


def usable_fd(fobj: Any) -> int | None:
    """The descriptor of a regular file behind ``fobj``, if it has one."""
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


# -- spooling (sources of unknown size) ---------------------------------------------------


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
async def _spooled(
    spool: _Spool, size: int | None, digest: Callable[[], str | None] | None
) -> AsyncIterator[Reader]:
    """A positional reader over the finished spool."""
    try:
        if size is not None and spool.size != size:
            raise ValueError(f"the source gave {spool.size} bytes but size={size}")
        await call_in_thread(spool.finish)
        sha256 = spool.hash.hexdigest() if spool.hash is not None else None
        if digest is not None:
            sha256 = digest()
        if spool.file is None:
            view = memoryview(spool.mem)
            try:
                yield memory_reader(view, sha256=sha256)
            finally:
                view.release()
        else:
            fd = spool.file.fileno()
            yield fd_reader(fd, os.fstat(fd).st_size, owned=True, sha256=sha256)
    finally:
        spool.close()


@asynccontextmanager
async def spool_sync(fobj: Any, *, hash_it: bool) -> AsyncIterator[Reader]:
    """Copy a non-seekable sync file object; yields a positional reader of the copy."""
    spool = _Spool(hash_it=hash_it)
    try:
        scratch = memoryview(bytearray(CHUNK))
        while await call_in_thread(spool.read_step, fobj, scratch):
            pass
    except BaseException:
        spool.close()
        raise
    async with _spooled(spool, None, None) as reader:
        yield reader


@asynccontextmanager
async def spool_async(
    chunks: AsyncIterator[Any],
    size: int | None,
    *,
    hash_it: bool,
    digest: Callable[[], str | None] | None = None,
) -> AsyncIterator[Reader]:
    """Copy an async iterable of bytes; yields a positional reader of the copy, with the
    SHA-256 computed on the way (``hash_it``) or asked of ``digest`` once all is copied."""
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
    async with _spooled(spool, size, digest) as reader:
        yield reader


@asynccontextmanager
async def materialize(reader: Reader) -> AsyncIterator[Reader]:
    """A positional reader over a sequential one (single PUTs are retried by re-reading)."""
    if not isinstance(reader, StreamReader):
        yield reader
        return
    # The stream hashes itself as it is read (with checksum=True): drained, its digest
    # is complete, so the spool does not hash again.
    chunks = reader.chunks()
    async with spool_async(chunks, reader.size, hash_it=False, digest=reader.digest) as spooled:
        yield spooled


# -- sources -------------------------------------------------------------------------------


class Source(Protocol):
    """A validated, not yet opened upload source (made by :func:`describe`)."""

    @property
    def origin(self) -> Any:
        """What the caller passed."""

    @property
    def name(self) -> str: ...

    @property
    def content_type(self) -> str | None: ...

    @property
    def size(self) -> int | None:
        """None when known only once opened (spooled, or an aiofiles file)."""

    @property
    def walked(self) -> tuple[int, int] | None:
        """(st_dev, st_ino) of a file found by an ``upload_many`` directory walk (a path
        source): it is opened only while it is still that file. None for the others."""

    def open(self, *, checksum: bool = True) -> AbstractAsyncContextManager[Reader]:
        """``async with source.open() as reader``; ``checksum`` lets sources that are read
        once (spools, streams) hash on the way."""


@dataclass(frozen=True)
class _Described:
    """What every source class holds; subclasses say how to open it (:meth:`_reader`)."""

    origin: Any
    name: str
    content_type: str | None
    size: int | None

    @property
    def walked(self) -> tuple[int, int] | None:
        return None

    @asynccontextmanager
    async def open(self, *, checksum: bool = True) -> AsyncIterator[Reader]:
        async with self._reader(checksum) as reader:
            try:
                yield reader
            finally:
                await reader.wait_idle()

    def _reader(self, checksum: bool) -> AbstractAsyncContextManager[Reader]:
        raise NotImplementedError


@dataclass(frozen=True)
class PathSource(_Described):
    """A regular file named by a path: read through its own descriptor."""

    walked: tuple[int, int] | None = None

    @property
    def path(self) -> str:
        """The path as ``str`` (a ``bytes`` path decoded as the filesystem does)."""
        return require_path(self.origin, "the path to upload")

    @asynccontextmanager
    async def _reader(self, checksum: bool) -> AsyncIterator[Reader]:
        src = self.path
        # O_NONBLOCK: a path swapped for a FIFO since describe() would block the event
        # loop in open() until a writer appeared (no timeout or cancel reaches a syscall).
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
        # A tree entry: never follow a link swapped in since the walk.
        fd = open_entry(src, flags, self.walked) if self.walked is not None else os.open(src, flags)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise NotRegularFileError(
                    f"{src!r} is not a regular file any more (it is now a {file_type(st.st_mode)})",
                    path=src,
                )
            os.set_blocking(fd, True)
            size = st.st_size
            if self.size is not None and size != self.size:
                raise ValueError(f"{src!r} changed size ({self.size} -> {size} bytes)")
            yield fd_reader(fd, size, owned=True, identity=Identity.of(st), path=src)
        finally:
            os.close(fd)


class MemorySource(_Described):
    """A bytes-like object or a ``BytesIO`` (from its position): sliced, never copied."""

    @asynccontextmanager
    async def _reader(self, checksum: bool) -> AsyncIterator[Reader]:
        src = self.origin
        view = src.getbuffer() if isinstance(src, io.BytesIO) else memoryview(src)
        try:
            start = src.tell() if isinstance(src, io.BytesIO) else 0
            yield memory_reader(view[start:])
        finally:
            view.release()


class FileObjectSource(_Described):
    """A binary file object: its descriptor when it has a real one, else locked seek+read;
    spooled when it cannot seek (``size`` None)."""

    @asynccontextmanager
    async def _reader(self, checksum: bool) -> AsyncIterator[Reader]:
        fobj = self.origin
        if self.size is None:  # not seekable: spool with bounded memory
            async with spool_sync(fobj, hash_it=checksum) as reader:
                yield reader
            return
        start = int(fobj.tell())
        fd = usable_fd(fobj)
        if fd is None:
            yield SyncFileReader(fobj, start, self.size)
            return
        # Flush a writer's buffer so positional reads see the bytes (harmless for readers).
        flush = getattr(fobj, "flush", None)
        if callable(flush) and getattr(fobj, "writable", lambda: False)():
            flush()
        identity = Identity.of(os.fstat(fd))
        yield fd_reader(fd, self.size, base=start, owned=False, identity=identity)


class AioFileSource(_Described):
    """An aiofiles file opened in binary mode: its size is learned when opened."""

    @asynccontextmanager
    async def _reader(self, checksum: bool) -> AsyncIterator[Reader]:
        afile = self.origin
        if not await afile.seekable():
            chunks = _aiofile_chunks(afile)
            async with spool_async(chunks, self.size, hash_it=checksum) as reader:
                yield reader
            return
        start = int(await afile.tell())
        end = int(await afile.seek(0, io.SEEK_END))
        await afile.seek(start)
        size = max(0, end - start)
        if self.size is not None and self.size != size:
            raise ValueError(f"size={self.size} does not match the file's {size} bytes")
        fd = usable_fd(afile)
        if fd is None:
            yield AioFileReader(afile, start, size)
            return
        identity = Identity.of(os.fstat(fd))
        yield fd_reader(fd, size, base=start, owned=False, identity=identity)


async def _aiofile_chunks(afile: Any) -> AsyncIterator[bytes]:
    while chunk := await afile.read(CHUNK):
        yield chunk


class StreamSource(_Described):
    """An async iterable of bytes: read once in order with ``size=``, else spooled."""

    @asynccontextmanager
    async def _reader(self, checksum: bool) -> AsyncIterator[Reader]:
        iterator = self.origin.__aiter__()
        try:
            if self.size is None:
                async with spool_async(iterator, None, hash_it=checksum) as reader:
                    yield reader
            else:
                yield StreamReader(iterator, self.size, Sha256() if checksum else None)
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()


@overload
def describe(
    source: str | os.PathLike[str] | os.PathLike[bytes],
    *,
    name: str | None = None,
    content_type: str | None = None,
    size: int | None = None,
) -> PathSource: ...
@overload
def describe(
    source: UploadSource,
    *,
    name: str | None = None,
    content_type: str | None = None,
    size: int | None = None,
) -> Source: ...
def describe(
    source: UploadSource,
    *,
    name: str | None = None,
    content_type: str | None = None,
    size: int | None = None,
) -> Source:
    """Validate ``source`` and the naming options; raises TypeError/ValueError, no I/O
    beyond ``stat``."""
    if name is not None:
        require_text(name, "name")
    if content_type is not None:
        require_content_type(content_type)
    if size is not None:
        size = require_count(size, "size")
    cls, known, default_name = _classify(source)
    if size is not None and known is not None and size != known:
        raise ValueError(f"size={size} does not match the source's {known} bytes")
    final_name = name or require_text(default_name, "the file name (give another with name=)")
    ctype = content_type or mimetypes.guess_type(final_name, strict=False)[0]
    return cls(source, final_name, ctype, known if known is not None else size)


def _classify(source: Any) -> tuple[type[_Described], int | None, str]:
    """The source's class, its size when known before opening, and its default name."""
    if isinstance(source, bool) or source is None or isinstance(source, (int, float)):
        raise TypeError(f"cannot upload a {type(source).__name__}: pass a path, bytes or a file")
    if isinstance(source, (str, os.PathLike)):
        path = require_path(source, "the path to upload")
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise MissingSourceError(2, "no such file to upload", path) from None
        if stat.S_ISDIR(st.st_mode):
            raise ValueError(f"{path!r} is a directory: use files.upload_many to upload a tree")
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFileError(
                f"{path!r} is not a regular file (a {file_type(st.st_mode)})", path=path
            )
        return PathSource, st.st_size, os.path.basename(path) or DEFAULT_NAME
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        if not view.c_contiguous:
            raise ValueError("memoryview sources must be C-contiguous")
        return MemorySource, view.nbytes, DEFAULT_NAME
    if isinstance(source, io.TextIOBase):
        raise TypeError("the file is open in text mode: open it with 'rb'")
    if isinstance(source, aiofiles.base.AsyncBase):
        if "b" not in str(getattr(source, "mode", "b")):
            raise TypeError("the aiofiles file is open in text mode: open it with 'rb'")
        return AioFileSource, None, _name_of(source)
    if isinstance(source, io.BytesIO):
        return MemorySource, len(source.getbuffer()) - source.tell(), DEFAULT_NAME
    if hasattr(source, "read") and callable(source.read):
        return FileObjectSource, _fileobj_size(source), _name_of(source)
    if isinstance(source, AsyncIterable):
        return StreamSource, None, DEFAULT_NAME
    try:  # any other buffer-protocol object (array.array, numpy arrays, mmap...)
        view = memoryview(source)
    except TypeError:
        pass
    else:
        if not view.c_contiguous:
            raise ValueError("buffer sources must be C-contiguous")
        return MemorySource, view.nbytes, DEFAULT_NAME
    raise TypeError(
        f"cannot upload a {type(source).__name__}: pass a path, bytes-like object, binary "
        "file object, aiofiles file or async iterable of bytes"
    )


def file_type(mode: int) -> str:
    """What a ``st_mode`` names, for messages: ``"FIFO"``, ``"socket"``, ``"directory"``..."""
    for test, kind in (
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISLNK, "symlink"),
    ):
        if test(mode):
            return kind
    return "special file"


def _name_of(fobj: Any) -> str:
    name = getattr(fobj, "name", None)
    if isinstance(name, (str, os.PathLike)):
        base = os.path.basename(os.fspath(name))
        if isinstance(base, str) and base:
            return base
    return DEFAULT_NAME


def _fileobj_size(fobj: Any) -> int | None:
    """Bytes from the current position to the end, or None when not seekable."""
    if getattr(fobj, "closed", False):
        raise ValueError("the file object is closed")
    mode = getattr(fobj, "mode", "b")
    if isinstance(mode, str) and "b" not in mode and "r" in mode:
        raise TypeError("the file is open in text mode: open it with 'rb'")
    readable = getattr(fobj, "readable", None)
    if callable(readable) and not readable():
        raise ValueError("the file object is not readable")
    seekable = getattr(fobj, "seekable", None)
    if not (callable(seekable) and seekable()):
        return None
    start = fobj.tell()
    end = fobj.seek(0, io.SEEK_END)
    fobj.seek(start)
    return max(0, int(end) - int(start))


def open_entry(path: str, flags: int, walked: tuple[int, int]) -> int:
    """Open a file found by :func:`walk`: never through a symlink in its last component,
    and only if it is still the file (device, inode) the walk saw; returns the fd."""
    try:
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP and os.path.islink(path):
            raise EntrySkipped(SkipReason.SYMLINK, "replaced by a symlink after the walk") from None
        raise
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != walked:
            raise EntryReplacedError(f"{path}: replaced since the directory walk; not uploaded")
    except BaseException:
        os.close(fd)
        raise
    return fd
