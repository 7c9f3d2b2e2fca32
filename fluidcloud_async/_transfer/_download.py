"""``files.download``: presigned GETs to a path or a file object, verified.

A path destination is written to a temporary file beside it and renamed over it only once
every byte is there and the SHA-256 matches the record, so a failed or cancelled download
never leaves a partial file under the final name. Large files are fetched as parallel
ranged GETs written with ``os.pwritev`` at their offsets (from a worker thread, batched
to ~1 MiB, no concatenation); a dropped range resumes from its last byte; an expired
presigned URL is simply asked for again (download URLs, unlike upload URLs, can be).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio
from yarl import URL

from .._exceptions import ApiConnectionError, ApiError, DownloadError
from .._models import File
from .._retry import retry_wait
from ._buffers import CHUNK, call_in_thread
from ._checksum import digest_of
from ._progress import Progress, ProgressCallback
from ._readers import fd_reader
from ._storage import (
    MAX_ERROR_BODY,
    ExpiredUrlError,
    StoragePolicy,
    connection_error,
    is_transient,
    raise_if_closed,
    storage_error,
)

if TYPE_CHECKING:
    from .._client import AsyncFluidCloud

#: Size of one ranged GET; files of at least two of these go in parallel.
RANGE_PART = 16 << 20
#: Fresh presigned URLs asked for before an expiry is treated as an error.
MAX_URL_REFRESHES = 3

Write = Callable[[list[bytes], int], Awaitable[None]]


class _NoRanges(Exception):
    """The storage answered a ranged GET with the whole object."""


class _Url:
    """The current presigned URL, refreshed once for all ranges when it expires."""

    def __init__(self, client: AsyncFluidCloud, file_id: str, url: str) -> None:
        self._client = client
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
                self.value = await self._client.files.download_url(self._file_id)
            return self.value


async def _get_range(
    session: aiohttp.ClientSession,
    url: _Url,
    start: int,
    end: int | None,
    write: Write,
    progress: Progress,
    policy: StoragePolicy,
    *,
    ranged: bool,
) -> int:
    """GET bytes ``[start, end)`` (``end`` None: to the end), resuming after drops.

    Returns the number of bytes written."""
    pos = start
    failures = 0
    while True:
        current = url.value
        headers = {"Accept-Encoding": "identity"}
        if ranged or pos > start:
            headers["Range"] = f"bytes={pos}-" + ("" if end is None else str(end - 1))
        try:
            async with session.get(
                URL(current, encoded=True), headers=headers, timeout=policy.client_timeout()
            ) as resp:
                if resp.status >= 300:
                    body = await resp.content.read(MAX_ERROR_BODY)
                    raise storage_error(resp.status, body, "GET", current, resp.headers)
                if "Range" in headers and resp.status != 206:
                    if pos > start:
                        raise DownloadError("the storage ignored a Range request on resume")
                    raise _NoRanges
                batch: list[bytes] = []
                batched = 0
                async for chunk in resp.content.iter_any():
                    batch.append(chunk)
                    batched += len(chunk)
                    if batched >= CHUNK:
                        await write(batch, pos)
                        pos += batched
                        await progress.add(batched)
                        batch, batched = [], 0
                if batch:
                    await write(batch, pos)
                    pos += batched
                    await progress.add(batched)
            if end is not None and pos != end:
                raise ApiConnectionError(f"the body ended at byte {pos} of {end}", method="GET")
            return pos - start
        except ExpiredUrlError:
            await url.refresh(current)
            continue
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            failure: BaseException = connection_error(exc, "GET", current)
        except RuntimeError:
            raise_if_closed(session, "GET", current)
            raise
        except (ApiError, ApiConnectionError) as exc:
            failure = exc
        failures += 1
        if not is_transient(failure) or failures >= policy.attempts:
            raise DownloadError(f"downloading bytes {pos}.. failed: {failure}") from failure
        sleep = policy.sleep or anyio.sleep
        await sleep(retry_wait(failure, failures))


def _pwritev(fd: int, chunks: list[bytes], offset: int) -> None:
    while chunks:
        written = os.pwritev(fd, chunks, offset)
        offset += written
        while chunks and written >= len(chunks[0]):  # drop what a short write covered
            written -= len(chunks[0])
            chunks = chunks[1:]
        if chunks and written:
            chunks = [chunks[0][written:], *chunks[1:]]


async def download_file(
    client: AsyncFluidCloud,
    file_id: str,
    dest: Any,
    *,
    progress: ProgressCallback | None,
    max_concurrency: int,
    verify: bool,
    policy: StoragePolicy,
) -> File:
    """Download ``file_id`` to ``dest`` (an absolute path or a binary file object)."""
    record = await client.files.get(file_id)
    job = _Job(
        client,
        record,
        _Url(client, file_id, await client.files.download_url(file_id)),
        Progress(progress, record.size or 0),
        policy,
        verify,
    )
    if isinstance(dest, str):
        await _to_path(job, dest, max_concurrency)
    else:
        await _to_fileobj(job, dest)
    await job.progress.finish()
    return record


@dataclass
class _Job:
    client: AsyncFluidCloud
    record: File
    url: _Url
    progress: Progress
    policy: StoragePolicy
    verify: bool

    async def get(self, start: int, end: int | None, write: Write, *, ranged: bool) -> int:
        session = self.client._transport.session
        return await _get_range(
            session, self.url, start, end, write, self.progress, self.policy, ranged=ranged
        )


async def _to_path(job: _Job, dest: str, max_concurrency: int) -> None:
    directory, name = os.path.split(dest)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
    renamed = False
    try:
        size = job.record.size

        async def write(chunks: list[bytes], offset: int) -> None:
            await call_in_thread(_pwritev, fd, chunks, offset)

        if size is not None and size >= 2 * RANGE_PART and max_concurrency > 1:
            try:
                await _parallel(job, size, write, max_concurrency)
            except _NoRanges:  # the storage ignores Range: one plain GET instead
                await job.progress.add(-job.progress.sent)
                await call_in_thread(os.ftruncate, fd, 0)
                await job.get(0, size, write, ranged=False)
        else:
            await job.get(0, size, write, ranged=False)
        got = os.fstat(fd).st_size
        digest = None
        if job.verify and job.record.sha256:
            digest = await digest_of(fd_reader(fd, got, owned=False))
        _check(job.record, got, digest)
        os.replace(tmp, dest)
        renamed = True
    finally:
        os.close(fd)
        if not renamed:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


async def _parallel(job: _Job, size: int, write: Write, max_concurrency: int) -> None:
    slots = anyio.Semaphore(max_concurrency)
    errors: list[BaseException] = []

    async def one(start: int) -> None:
        try:
            end = min(size, start + RANGE_PART)
            await job.get(start, end, write, ranged=True)
        except Exception as exc:  # recorded, not raised: see _upload._send
            errors.append(exc)
            tg.cancel_scope.cancel()
        finally:
            slots.release()

    async with anyio.create_task_group() as tg:
        for start in range(0, size, RANGE_PART):
            await slots.acquire()
            tg.start_soon(one, start)
    if errors:
        raise errors[0]


async def _to_fileobj(job: _Job, fobj: Any) -> None:
    hasher = hashlib.sha256()
    written = 0
    is_async = _is_async_file(fobj)

    def sync_write(chunks: list[bytes]) -> None:
        for chunk in chunks:
            hasher.update(chunk)
            fobj.write(chunk)

    async def write(chunks: list[bytes], offset: int) -> None:
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
