"""Every kind of upload source, normalized to a size, a name, a content type and a reader.

:func:`describe` validates synchronously (no network, only ``stat``); :meth:`SourceSpec.open`
yields a :class:`Reader`, spooling sources of unknown size to a temporary file first.
Readers expose the cheapest read path they have: a ``memoryview`` of the whole content
(bytes-like, ``BytesIO``), a descriptor for ``os.preadv`` / ``sendfile`` (paths, real
files, spools), or locked seek+read (any other seekable object).
"""

from __future__ import annotations

import io
import mimetypes
import os
import stat
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiofiles.base

from .._exceptions import NotRegularFileError
from .._validate_args import require_content_type, require_text
from ._buffers import CHUNK
from ._checksum import Sha256
from ._readers import (
    AioFileReader,
    Identity,
    Reader,
    StreamReader,
    SyncFileReader,
    fd_reader,
    memory_reader,
    usable_fd,
)
from ._spool import spool_async, spool_sync
from ._tree import open_entry

DEFAULT_NAME = "upload.bin"


class MissingSourceError(FileNotFoundError, ValueError):
    """The path to upload does not exist (both a FileNotFoundError and a ValueError)."""


@dataclass(frozen=True)
class SourceSpec:
    """A validated, not yet opened source."""

    origin: Any
    kind: str  # "path" | "memory" | "fileobj" | "aiofile" | "aiter"
    name: str
    content_type: str | None
    size: int | None  # None: known only once opened (spooled or seek/tell of an aiofile)
    # (st_dev, st_ino) of a file found by an upload_many directory walk: opened with
    # O_NOFOLLOW and only while it is still that file (see _tree.open_entry).
    walked: tuple[int, int] | None = None

    def open(self, *, checksum: bool = True) -> Any:
        """``async with spec.open() as reader`` (see :class:`Reader`); ``checksum`` lets
        sources that are read once (spools, streams) hash on the way."""
        return _open(self, checksum)


def describe(
    source: Any,
    *,
    name: str | None = None,
    content_type: str | None = None,
    size: int | None = None,
) -> SourceSpec:
    """Validate ``source`` and the naming options; raises TypeError/ValueError, no I/O
    beyond ``stat``."""
    if name is not None:
        require_text(name, "name")
    if content_type is not None:
        require_content_type(content_type)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
        raise TypeError(f"size must be an int, not {type(size).__name__}")
    if size is not None and size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    kind, known, default_name = _classify(source)
    if size is not None and known is not None and size != known:
        raise ValueError(f"size={size} does not match the source's {known} bytes")
    final_name = name or require_text(default_name, "the file name (give another with name=)")
    ctype = content_type or mimetypes.guess_type(final_name, strict=False)[0]
    return SourceSpec(source, kind, final_name, ctype, known if known is not None else size)


def _classify(source: Any) -> tuple[str, int | None, str]:
    if isinstance(source, bool) or source is None or isinstance(source, (int, float)):
        raise TypeError(f"cannot upload a {type(source).__name__}: pass a path, bytes or a file")
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not path:
            raise ValueError("the path to upload is empty")
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise MissingSourceError(2, "no such file to upload", path) from None
        if stat.S_ISDIR(st.st_mode):
            raise ValueError(f"{path!r} is a directory: use files.upload_many to upload a tree")
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFileError(
                f"{path!r} is not a regular file (a {_kind(st.st_mode)})", path=path
            )
        return "path", st.st_size, os.path.basename(path) or DEFAULT_NAME
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        if not view.c_contiguous:
            raise ValueError("memoryview sources must be C-contiguous")
        return "memory", view.nbytes, DEFAULT_NAME
    if isinstance(source, io.TextIOBase):
        raise TypeError("the file is open in text mode: open it with 'rb'")
    if isinstance(source, aiofiles.base.AsyncBase):
        if "b" not in str(getattr(source, "mode", "b")):
            raise TypeError("the aiofiles file is open in text mode: open it with 'rb'")
        return "aiofile", None, _name_of(source)
    if isinstance(source, io.BytesIO):
        return "memory", len(source.getbuffer()) - source.tell(), DEFAULT_NAME
    if hasattr(source, "read") and callable(source.read):
        return "fileobj", _fileobj_size(source), _name_of(source)
    if isinstance(source, AsyncIterable):
        return "aiter", None, DEFAULT_NAME
    try:  # any other buffer-protocol object (array.array, numpy arrays, mmap...)
        view = memoryview(source)
    except TypeError:
        pass
    else:
        if not view.c_contiguous:
            raise ValueError("buffer sources must be C-contiguous")
        return "memory", view.nbytes, DEFAULT_NAME
    raise TypeError(
        f"cannot upload a {type(source).__name__}: pass a path, bytes-like object, binary "
        "file object, aiofiles file or async iterable of bytes"
    )


def _kind(mode: int) -> str:
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


@asynccontextmanager
async def _open(spec: SourceSpec, checksum: bool) -> AsyncIterator[Reader]:
    async with _open_kind(spec, checksum) as reader:
        try:
            yield reader
        finally:
            await reader.wait_idle()


@asynccontextmanager
async def _open_kind(spec: SourceSpec, checksum: bool) -> AsyncIterator[Reader]:
    src = spec.origin
    if spec.kind == "path":
        # O_NONBLOCK: a path swapped for a FIFO since describe() would block the event
        # loop in open() until a writer appeared (no timeout or cancel reaches a syscall).
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
        if spec.walked is not None:  # a tree entry: never follow a link swapped in since
            fd = open_entry(os.fspath(src), flags, spec.walked)
        else:
            fd = os.open(os.fspath(src), flags)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise NotRegularFileError(
                    f"{src!r} is not a regular file any more (it is now a {_kind(st.st_mode)})",
                    path=os.fspath(src),
                )
            os.set_blocking(fd, True)
            size = st.st_size
            if spec.size is not None and size != spec.size:
                raise ValueError(f"{src!r} changed size ({spec.size} -> {size} bytes)")
            reader = fd_reader(fd, size, owned=True)
            reader.identity, reader.path = Identity.of(st), os.fspath(src)
            yield reader
        finally:
            os.close(fd)
    elif spec.kind == "memory":
        view = src.getbuffer() if isinstance(src, io.BytesIO) else memoryview(src)
        try:
            start = src.tell() if isinstance(src, io.BytesIO) else 0
            yield memory_reader(view[start:])
        finally:
            view.release()
    elif spec.kind == "fileobj":
        async with _open_fileobj(spec, checksum) as reader:
            yield reader
    elif spec.kind == "aiofile":
        async with _open_aiofile(spec, checksum) as reader:
            yield reader
    else:
        async with _open_aiter(spec, checksum) as reader:
            yield reader


@asynccontextmanager
async def _open_fileobj(spec: SourceSpec, checksum: bool) -> AsyncIterator[Reader]:
    fobj = spec.origin
    if spec.size is None:  # not seekable: spool with bounded memory
        async with spool_sync(fobj, None, hash_it=checksum) as (data, digest):
            yield _spooled(data, digest)
        return
    start = int(fobj.tell())
    fd = usable_fd(fobj)
    if fd is not None:
        # Flush a writer's buffer so positional reads see the bytes (harmless for readers).
        flush = getattr(fobj, "flush", None)
        if callable(flush) and getattr(fobj, "writable", lambda: False)():
            flush()
        reader = fd_reader(fd, spec.size, base=start, owned=False)
        reader.identity = Identity.of(os.fstat(fd))
        yield reader
    else:
        yield SyncFileReader(fobj, start, spec.size)


@asynccontextmanager
async def _open_aiofile(spec: SourceSpec, checksum: bool) -> AsyncIterator[Reader]:
    afile = spec.origin
    if not await afile.seekable():
        chunks = _aiofile_chunks(afile)
        async with spool_async(chunks, spec.size, hash_it=checksum) as (data, digest):
            yield _spooled(data, digest)
        return
    start = int(await afile.tell())
    end = int(await afile.seek(0, io.SEEK_END))
    await afile.seek(start)
    size = max(0, end - start)
    if spec.size is not None and spec.size != size:
        raise ValueError(f"size={spec.size} does not match the file's {size} bytes")
    fd = usable_fd(afile)
    if fd is None:
        yield AioFileReader(afile, start, size)
        return
    reader = fd_reader(fd, size, base=start, owned=False)
    reader.identity = Identity.of(os.fstat(fd))
    yield reader


async def _aiofile_chunks(afile: Any) -> AsyncIterator[bytes]:
    while chunk := await afile.read(CHUNK):
        yield chunk


@asynccontextmanager
async def _open_aiter(spec: SourceSpec, checksum: bool) -> AsyncIterator[Reader]:
    iterator = spec.origin.__aiter__()
    try:
        if spec.size is None:
            async with spool_async(iterator, None, hash_it=checksum) as (data, digest):
                yield _spooled(data, digest)
        else:
            yield StreamReader(iterator, spec.size, Sha256() if checksum else None)
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def _spooled(data: memoryview | int, digest: str) -> Reader:
    if isinstance(data, memoryview):
        reader = memory_reader(data)
    else:
        reader = fd_reader(data, os.fstat(data).st_size, owned=True)
    reader.sha256 = digest or None
    return reader


@asynccontextmanager
async def materialize(reader: Reader) -> AsyncIterator[Reader]:
    """A positional reader over a sequential one (single PUTs are retried by re-reading)."""
    if not reader.sequential:
        yield reader
        return
    assert isinstance(reader, StreamReader)

    async def chunks() -> AsyncIterator[memoryview]:
        buf = bytearray(min(CHUNK, max(reader.size, 1)))
        done = 0
        while done < reader.size:
            n = await reader.read_next(memoryview(buf)[: min(len(buf), reader.size - done)])
            done += n
            yield memoryview(buf)[:n]
        if reader.size == 0:
            await reader._expect_end()

    async with spool_async(chunks(), reader.size, hash_it=False) as (data, _):
        positional = _spooled(data, reader.digest() or "")
        positional.sha256 = reader.digest()
        yield positional
