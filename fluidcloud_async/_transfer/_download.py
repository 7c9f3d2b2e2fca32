"""``files.download``: presigned GETs to a path or a file object, verified.

A path destination is written to a temporary file beside it and moved into place only once
every byte is there and the SHA-256 matches the record, so a failed or cancelled download
never leaves a partial file under the final name; an existing file is replaced only when
asked (``overwrite=True``). Large files are fetched as parallel ranged GETs written with
``os.pwritev`` at their offsets (~1 MiB at a time, no concatenation); a dropped range
resumes from its last byte written; an expired presigned URL is simply asked for again
(download URLs, unlike upload URLs, can be). Each attempt goes through the URL's storage
transport (``StorageRoutes``: worker threads for https, whose threads write with
``pwritev`` themselves; aiohttp for http), handed a :class:`_Range` that holds every check;
the retry loop, resume and refresh are here, the same for both. A verified ranged download
hashes its finished prefix while later ranges still arrive (:class:`_PrefixDigest`).

The storage is not trusted further than the record: a body longer than the record (or the
requested range) is cut off before the excess is written and fails for good
(:class:`StorageProtocolError`), and bodies are never decompressed.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from .._exceptions import (
    ApiConnectionError,
    ApiError,
    ClientClosed,
    DownloadError,
    ExpiredUrlError,
    RangesIgnored,
    StorageProtocolError,
)
from .._models import File
from .._redact import redact_url
from .._retry import Kind, call
from ._io import (
    HASH_CHUNK,
    Progress,
    ProgressCallback,
    call_in_thread,
    digest_of,
    hash_fd_into,
    run_stoppable,
)
from ._sources import fd_reader
from ._storage import Chunks, StoragePolicy

if TYPE_CHECKING:
    from ._engine import ApiCalls, Engine, StorageRoutes

#: Size of one ranged GET; files of at least two of these go in parallel.
RANGE_PART = 16 << 20
#: Fresh presigned URLs asked for before an expiry is treated as an error.
MAX_URL_REFRESHES = 3

#: Name length assumed where the filesystem does not say (``pathconf`` fails or is unlimited).
DEFAULT_NAME_MAX = 255

Write = Callable[[Chunks, int], Awaitable[None]]
PWrite = Callable[[Chunks, int], None]

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
_SAFE_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,16}")
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# Control (Cc: C0, DEL, C1), format (Cf: bidi overrides, zero-width), surrogate and
# line/paragraph separator characters: nothing a file name needs, all of them able to hide
# or rewrite what a terminal or a file manager shows.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


class _Url:
    """The current presigned URL, refreshed once for all ranges when it expires."""

    def __init__(self, api: ApiCalls, file_id: str, url: str) -> None:
        self._api = api
        self._file_id = file_id
        self.value = url
        self._refreshes = 0
        self._lock = anyio.Lock()

    async def refresh(self, stale: str) -> str:
        async with self._lock:
            if self.value == stale:
                self._refreshes += 1
                if self._refreshes > MAX_URL_REFRESHES:
                    raise DownloadError(f"the download URL of {self._file_id} keeps expiring")
                self.value = await self._api.download_url(self._file_id)
            return self.value


class _Range:
    """One range's GET state across attempts: the :class:`._storage.GetSink` of each."""

    def __init__(
        self,
        start: int,
        end: int | None,
        write: Write,
        pwrite: PWrite | None,
        progress: Progress,
        *,
        ranged: bool,
        file_id: str,
        moved: Callable[[], None] | None = None,
    ) -> None:
        self.start, self.end, self.pos = start, end, start
        self._write = write
        self.pwrite = pwrite
        self._progress = progress
        self._ranged = ranged
        self.file_id = file_id
        self._moved = moved

    def headers(self) -> dict[str, str]:
        headers = {"Accept-Encoding": "identity"}
        if self._asks_range():  # a retry resumes from the last byte written
            end = self.end
            headers["Range"] = f"bytes={self.pos}-" + ("" if end is None else str(end - 1))
        return headers

    def _asks_range(self) -> bool:
        return self._ranged or self.pos > self.start

    def check(self, status: int, headers: Mapping[str, str]) -> None:
        """Refuse, before reading its body, an answer that breaks the protocol."""
        if self._asks_range() and status != 206:
            if self.pos > self.start:
                raise DownloadError("the storage ignored a Range request on resume")
            raise RangesIgnored
        _check_answer(status, headers, self.pos, self.end, self.file_id)

    def admit(self, n: int) -> None:
        """Refuse ``n`` more bytes (before any is written) if they pass the range's end."""
        end = self.end
        if end is not None and self.pos + n > end:
            raise StorageProtocolError(
                f"file {self.file_id}: the storage sent more than the "
                f"{end - self.start} bytes asked for{_span(self.start, end)}",
                file_id=self.file_id,
            )

    async def deliver(self, chunks: Chunks, n: int) -> None:
        await self._write(chunks, self.pos)
        self.pos += n
        await self.count(n)

    async def count(self, n: int) -> None:
        if self._moved is not None:
            self._moved()
        await self._progress.add(n)


async def _get_range(
    routes: StorageRoutes,
    url: _Url,
    part: _Range,
    policy: StoragePolicy,
) -> int:
    """GET bytes ``[start, end)`` of ``part`` (``end`` None: to the end), resuming after
    drops under the client's retry policy; an expired URL is refreshed (not a retry).

    Never writes past ``end``: more bytes raise :class:`StorageProtocolError` (not retried).
    Returns the number of bytes written."""
    start, end = part.start, part.end

    async def attempt(number: int) -> int:
        # Per attempt: the transport follows the (possibly refreshed) URL's scheme.
        await routes.for_url(current).get(current, part, policy=policy)
        if end is not None and part.pos != end:
            raise ApiConnectionError(f"the body ended at byte {part.pos} of {end}", method="GET")
        return part.pos - start

    while True:
        current = url.value
        try:
            return await call(
                attempt, kind=Kind.GET, policy=policy.retry, method="GET", url=redact_url(current)
            )
        except ExpiredUrlError:
            await url.refresh(current)  # then start over with the fresh URL
        except ClientClosed:
            raise
        except (ApiError, ApiConnectionError) as failure:
            raise DownloadError(f"downloading bytes {part.pos}.. failed: {failure}") from failure


def _span(start: int, end: int) -> str:
    return f" (bytes {start}-{end - 1})" if end > start else ""


def _check_answer(
    status: int, headers: Mapping[str, str], pos: int, end: int | None, file_id: str
) -> None:
    encoding = headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        # Identity was asked for: an encoded body is not the stored bytes, and inflating it
        # would let a few bytes on the wire expand without bound.
        raise StorageProtocolError(
            f"file {file_id}: the storage sent a {encoding!r}-encoded body "
            "although 'identity' was asked for",
            file_id=file_id,
        )
    announced = headers.get("Content-Length", "").strip()
    length = int(announced) if announced.isdigit() else None
    if end is not None and length is not None and length > end - pos:
        raise StorageProtocolError(
            f"file {file_id}: the storage announced {length} bytes where "
            f"{end - pos} remain{_span(pos, end)}",
            file_id=file_id,
        )
    if status == 206 and (header := headers.get("Content-Range")) is not None:
        match = _CONTENT_RANGE.fullmatch(header.strip())
        if match is None or int(match[1]) != pos:
            raise StorageProtocolError(
                f"file {file_id}: asked for bytes {pos}-, the storage sent {header!r}",
                file_id=file_id,
            )


def _pwritev(fd: int, chunks: Chunks, offset: int) -> None:
    while chunks:
        written = os.pwritev(fd, chunks, offset)
        offset += written
        while chunks and written >= len(chunks[0]):  # drop what a short write covered
            written -= len(chunks[0])
            chunks = chunks[1:]
        if chunks and written:
            chunks = [chunks[0][written:], *chunks[1:]]


async def download_file(
    engine: Engine,
    file_id: str,
    dest: Any,
    *,
    progress: ProgressCallback | None,
    max_concurrency: int,
    verify: bool,
    overwrite: bool = False,
) -> File:
    """Download ``file_id`` to ``dest`` (an absolute path or a binary file object); an
    existing file at a path is replaced only with ``overwrite``."""
    # Refused before any request; _place refuses one that appears in the meantime.
    check = isinstance(dest, str) and not overwrite
    if check and await anyio.to_thread.run_sync(os.path.lexists, dest):
        raise _exists_error(dest)
    record = await engine.api.get(file_id)
    job = _Job(
        engine,
        record,
        _Url(engine.api, file_id, await engine.api.download_url(file_id)),
        Progress(progress, record.size or 0),
        verify,
    )
    if isinstance(dest, str):
        await _to_path(job, dest, max_concurrency, overwrite)
    else:
        await _to_fileobj(job, dest)
    await job.progress.finish()
    return record


@dataclass
class _Job:
    engine: Engine
    record: File
    url: _Url
    progress: Progress
    verify: bool

    async def get(
        self,
        start: int,
        end: int | None,
        write: Write,
        *,
        ranged: bool,
        pwrite: PWrite | None = None,
        digest: _PrefixDigest | None = None,
    ) -> int:
        part = _Range(
            start,
            end,
            write,
            pwrite,
            self.progress,
            ranged=ranged,
            file_id=self.record.id,
            moved=None if digest is None else digest.moved,
        )
        if digest is not None:
            digest.track(part)
        return await _get_range(self.engine.storage, self.url, part, self.engine.policy)


async def _to_path(job: _Job, dest: str, max_concurrency: int, overwrite: bool) -> None:
    # Opened and placed on the loop, as before: one local open/link each, and a worker
    # thread cancelled mid-open would leak the descriptor and the temporary file.
    fd, tmp, mode = _open_temp(dest)
    renamed = False
    try:
        size = job.record.size

        async def write(chunks: Chunks, offset: int) -> None:
            await call_in_thread(_pwritev, fd, chunks, offset)

        def pwrite(chunks: Chunks, offset: int) -> None:
            # Called by a threaded transport's worker itself: one hop fewer per chunk.
            _pwritev(fd, chunks, offset)

        verify = job.verify and bool(job.record.sha256)
        digest: str | None = None
        if size is not None and size >= 2 * RANGE_PART and max_concurrency > 1:
            follower = _PrefixDigest(fd) if verify else None
            try:
                await _parallel(job, size, write, pwrite, max_concurrency, follower)
            except RangesIgnored:  # the storage ignores Range: one plain GET instead
                await job.progress.add(-job.progress.sent)
                await call_in_thread(os.ftruncate, fd, 0)
                await job.get(0, size, write, ranged=False, pwrite=pwrite)
            else:
                if follower is not None:
                    digest = await follower.finish(os.fstat(fd).st_size)
        else:
            await job.get(0, size, write, ranged=False, pwrite=pwrite)
        got = os.fstat(fd).st_size
        if verify and digest is None:
            digest = await digest_of(fd_reader(fd, got, owned=False))
        _check(job.record, got, digest)
        _place(fd, tmp, dest, mode, overwrite=overwrite)
        renamed = True
    finally:
        os.close(fd)
        if not renamed:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def name_max(directory: str) -> int:
    """The longest file name (in bytes of the filesystem encoding) ``directory`` takes."""
    try:
        limit = os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # unknown name, or no pathconf (Windows)
        return DEFAULT_NAME_MAX
    return limit if limit > 0 else DEFAULT_NAME_MAX


def _fs_len(text: str) -> int:
    return len(os.fsencode(text))


def _temp_name(name: str, limit: int) -> str:
    """``.NAME.RANDOM.part``, NAME cut (by encoded bytes, never mid-character) so the
    whole fits in ``limit`` bytes: a name at the limit still gets a temporary file."""
    suffix = f".{secrets.token_hex(4)}.part"
    room = limit - 1 - len(suffix)
    kept: list[str] = []
    for ch in name:
        room -= _fs_len(ch)
        if room < 0:
            break
        kept.append(ch)
    return f".{''.join(kept)}{suffix}"


def _open_temp(dest: str) -> tuple[int, str, int]:
    """A new private temporary file beside ``dest``: its descriptor, path, and the mode a
    new file gets here (0o666 less the umask, read back without touching the umask)."""
    directory, name = os.path.split(dest)
    limit = name_max(directory)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)  # RDWR: hashed back
    flags |= getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = os.path.join(directory, _temp_name(name, limit))
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        break
    else:  # pragma: no cover - 100 collisions of 32 random bits
        raise FileExistsError(errno.EEXIST, "no free temporary name", directory)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        with contextlib.suppress(OSError):  # e.g. FAT: no modes at all
            os.fchmod(fd, 0o600)  # private while partial
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return fd, tmp, mode


def _exists_error(dest: str) -> FileExistsError:
    return FileExistsError(
        errno.EEXIST, "the destination exists (pass overwrite=True to replace it)", dest
    )


def _place(fd: int, tmp: str, dest: str, new_mode: int, *, overwrite: bool) -> None:
    """Move the finished temporary file to ``dest``.

    Without ``overwrite`` an existing ``dest`` (even one created during the download) is
    never replaced: the file is hard-linked into place, which fails if the name is taken.
    A replaced regular file keeps its permission bits (without set-id bits, as ``cp``
    does); a new file gets ``new_mode``, the mode any new file gets there.
    """
    try:
        old: os.stat_result | None = os.lstat(dest)
    except FileNotFoundError:
        old = None
    if old is not None and not overwrite:
        raise _exists_error(dest)
    mode = new_mode
    if old is not None and stat.S_ISREG(old.st_mode):
        mode = stat.S_IMODE(old.st_mode) & 0o777
    with contextlib.suppress(OSError):
        os.fchmod(fd, mode)
    if overwrite:
        os.replace(tmp, dest)
        return
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise _exists_error(dest) from None
    except OSError:  # no hard links on this filesystem: check, then rename (a tiny race)
        if os.path.lexists(dest):
            raise _exists_error(dest) from None
        os.rename(tmp, dest)
        return
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def _is_safe_name(name: str, limit: int) -> bool:
    if not name.strip() or name.startswith(".") or "/" in name or "\\" in name:
        return False  # also '.', '..' and every dotfile (.bashrc, .ssh, ...)
    if any(unicodedata.category(ch) in _UNSAFE_CATEGORIES for ch in name):
        return False
    try:
        return _fs_len(name) <= limit
    except UnicodeEncodeError:  # not representable in the filesystem encoding
        return False


def local_name(record: File, directory: str) -> str:
    """A file name for ``record`` inside ``directory`` that cannot escape it or surprise.

    The record's ``original_name`` when it is safe; otherwise (empty, ``.``/``..``, a
    dotfile, a ``/`` or ``\\``, a control or format character, longer than the directory's
    name limit) the file id, plus the name's extension when that is plain letters and
    digits. It may still name an existing file: :meth:`Files.download` refuses those.
    """
    name = record.original_name or ""
    limit = name_max(directory)
    if _is_safe_name(name, limit):
        return name
    base = record.id if _SAFE_ID.fullmatch(record.id or "") else "download"
    extension = os.path.splitext(name)[1]
    return base + extension if _SAFE_EXTENSION.fullmatch(extension) else base


class _PrefixDigest:
    """SHA-256 of a ranged download, hashed while the ranges still arrive.

    Ranges finish out of order, but each is written from its start onwards, so the bytes
    ``[0, prefix)`` are final as soon as every range before the first unfinished one is
    complete: :meth:`follow` reads that prefix back (page cache) and hashes it in a worker
    thread as it grows, so the hash of a verified download overlaps its transfer instead
    of following it (measured in ``benchmarks/bench_tls.py``'s download rows).
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._hasher = hashlib.sha256()
        self._hashed = 0
        self._ranges: list[_Range] = []
        self._wake = anyio.Event()
        self._stopped = False

    def track(self, part: _Range) -> None:
        """Follow ``part``, whatever order the ranges start in."""
        bisect.insort(self._ranges, part, key=lambda tracked: tracked.start)
        self.moved()

    def moved(self) -> None:
        """A tracked range wrote more bytes (called on the loop)."""
        self._wake.set()

    def _prefix(self) -> int:
        # Read on the loop; a worker thread raises ``pos`` only after its bytes are written.
        prefix = 0
        for part in self._ranges:
            if part.start != prefix:
                break
            prefix = part.pos
            if part.pos != part.end:
                break
        return prefix

    async def _hash_to(self, end: int) -> None:
        # A cancelled pass leaves the hasher fed with an unknown part of the span: the
        # digest is then never used (the download failed or starts over without ranges).
        if end > self._hashed:
            start, self._hashed = self._hashed, end
            await run_stoppable(hash_fd_into, self._hasher, self._fd, start, end - start)

    async def follow(self) -> None:
        """Hash the finished prefix as it grows, until :meth:`stop`."""
        while not self._stopped:
            self._wake = anyio.Event()
            prefix = self._prefix()
            if prefix - self._hashed >= HASH_CHUNK:
                await self._hash_to(prefix)
            else:
                await self._wake.wait()

    def stop(self) -> None:
        """Every range is written: :meth:`follow` returns after the pass it is in."""
        self._stopped = True
        self._wake.set()

    async def finish(self, size: int) -> str:
        """The digest of the whole file of ``size`` bytes, once every range is written."""
        await self._hash_to(size)
        return self._hasher.hexdigest()


async def _parallel(
    job: _Job,
    size: int,
    write: Write,
    pwrite: PWrite,
    max_concurrency: int,
    digest: _PrefixDigest | None,
) -> None:
    slots = anyio.Semaphore(max_concurrency)
    errors: list[BaseException] = []

    async def one(start: int) -> None:
        try:
            end = min(size, start + RANGE_PART)
            await job.get(start, end, write, ranged=True, pwrite=pwrite, digest=digest)
        except Exception as exc:  # recorded, not raised: see _upload._send
            errors.append(exc)
            tg.cancel_scope.cancel()
        finally:
            slots.release()

    async def follow(digest: _PrefixDigest) -> None:
        try:
            await digest.follow()
        except Exception as exc:  # e.g. EIO reading the prefix back: as a range's error
            errors.append(exc)
            tg.cancel_scope.cancel()

    async with anyio.create_task_group() as tg:
        if digest is not None:
            tg.start_soon(follow, digest)
        async with anyio.create_task_group() as ranges:
            for start in range(0, size, RANGE_PART):
                await slots.acquire()
                ranges.start_soon(one, start)
        if digest is not None:
            digest.stop()  # finish() hashes what is left
    if errors:
        raise errors[0]


async def _to_fileobj(job: _Job, fobj: Any) -> None:
    hasher = hashlib.sha256()
    written = 0
    is_async = _is_async_file(fobj)

    def sync_write(chunks: Chunks) -> None:
        for chunk in chunks:
            hasher.update(chunk)
            fobj.write(chunk)

    async def write(chunks: Chunks, offset: int) -> None:
        nonlocal written
        if offset != written:  # only sequential writes reach a file object
            raise DownloadError("a file-object download cannot rewind")
        if is_async:
            for chunk in chunks:
                hasher.update(chunk)
                await fobj.write(chunk)
        else:
            await call_in_thread(sync_write, chunks)
        written += sum(len(c) for c in chunks)

    record = job.record
    await job.get(0, record.size, write, ranged=False)
    _check(record, written, hasher.hexdigest() if job.verify and record.sha256 else None)


def _is_async_file(fobj: Any) -> bool:
    import aiofiles.base

    return isinstance(fobj, aiofiles.base.AsyncBase)


def _check(record: File, got: int, digest: str | None) -> None:
    if record.size is not None and got != record.size:
        raise DownloadError(
            f"file {record.id}: received {got} bytes, the record says {record.size}"
        )
    if digest is not None and record.sha256 and digest != record.sha256.lower():
        raise DownloadError(
            f"file {record.id}: SHA-256 of the received bytes {digest} != {record.sha256}"
        )
