"""``files.upload_many``: many files through one shared scheduler.

One :class:`SlotPool` bounds the parts (and read buffers) in flight across every file, a
semaphore bounds the files in flight, and the API calls pass one client-side rate limiter.
Results go out through an anyio memory object stream as files finish. The task group that
runs the uploads belongs to the ``async with`` block (never to an async generator), so
leaving the block - normally, by ``break`` or by an exception - cancels what is left and
waits for it, and nothing outlives the block.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field, replace
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._models import File
from ._progress import Progress, ProgressCallback
from ._ratelimit import RateLimit, rate_limiter
from ._scheduler import SlotPool
from ._sources import SourceSpec
from ._upload import UploadOptions, upload_file

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

if TYPE_CHECKING:
    from .._client import AsyncFluidCloud


FileProgressCallback = Callable[[Any, int, int], Awaitable[None] | None]
"""``file_progress(source, bytes_sent, total)``: one file's progress within a batch."""


@dataclass
class UploadResult:
    """The outcome of one item of ``upload_many``: ``file`` on success, else ``error``."""

    source: Any
    """The item's source as given (a path for files found in a directory)."""
    client_key: str | None
    file: File | None = None
    error: BaseException | None = None
    index: int = 0
    """Position in input order (directories expand in sorted order)."""

    @property
    def ok(self) -> bool:
        """Whether the file was uploaded (and verified)."""
        return self.error is None and self.file is not None


@dataclass
class Job:
    """One validated item."""

    index: int
    source: Any
    spec: SourceSpec
    options: UploadOptions
    client_key: str | None = field(default=None)


class UploadMany:
    """Returned by ``files.upload_many``: ``async with`` it to stream results as files
    finish, or ``await`` it for the list of all results in input order."""

    def __init__(
        self,
        client: AsyncFluidCloud,
        jobs: list[Job],
        *,
        max_files: int,
        max_concurrency: int,
        fail_fast: bool,
        progress: ProgressCallback | None,
        rate_limit: RateLimit | None,
        file_progress: FileProgressCallback | None = None,
    ) -> None:
        if rate_limit is not None:
            view = client.with_options()
            limiter = rate_limiter(client._transport, rate_limit)
            view._init(view._transport.with_hook(limiter.around))
            client = view
        self._client = client
        if file_progress is not None:
            for job in jobs:
                job.options = replace(job.options, progress=partial(file_progress, job.source))
        self._jobs = jobs
        self._max_files = max_files
        self._pool = SlotPool(max_concurrency)
        self._fail_fast = fail_fast
        total = sum(job.spec.size or 0 for job in jobs)
        self._progress = Progress(progress, total) if progress is not None else None
        self._started = False
        self._tg: TaskGroup | None = None
        self._receive: MemoryObjectReceiveStream[UploadResult] | None = None
        self._work: anyio.CancelScope | None = None

    def __len__(self) -> int:
        return len(self._jobs)

    def __aiter__(self) -> Results:
        raise TypeError(
            "iterate inside the block: `async with fc.files.upload_many(...) as results: "
            "async for r in results: ...` (or `await` it for a list)"
        )

    def __await__(self) -> Generator[Any, None, list[UploadResult]]:
        return self._collect().__await__()

    async def _collect(self) -> list[UploadResult]:
        async with self as results:
            collected = [result async for result in results]
        return sorted(collected, key=lambda r: r.index)

    async def __aenter__(self) -> Results:
        if self._started:
            raise RuntimeError("an upload_many(...) batch runs once; call upload_many again")
        self._started = True
        send, receive = anyio.create_memory_object_stream[UploadResult](
            max_buffer_size=self._max_files
        )
        self._receive = receive
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._produce, send)
        return Results(receive, self._fail_fast)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None and self._receive is not None
        # Whatever is still running when the block ends is cancelled, and waited for. The
        # block's own exception is not handed to the task group, which would wrap it in an
        # ExceptionGroup: it propagates unchanged once the uploads have stopped.
        self._tg.cancel_scope.cancel()
        try:
            await self._tg.__aexit__(None, None, None)
        except BaseExceptionGroup as group:
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            self._receive.close()
        return None

    async def _produce(self, send: MemoryObjectSendStream[UploadResult]) -> None:
        files = anyio.Semaphore(self._max_files)
        async with send, anyio.create_task_group() as work:
            self._work = work.cancel_scope
            for job in self._jobs:
                await files.acquire()
                work.start_soon(self._one, job, files, send)
        if self._progress is not None and not work.cancel_scope.cancel_called:
            await self._progress.finish()

    async def _one(
        self, job: Job, files: anyio.Semaphore, send: MemoryObjectSendStream[UploadResult]
    ) -> None:
        result = UploadResult(job.source, job.client_key, index=job.index)
        try:
            result.file = await upload_file(
                self._client, job.spec, job.options, pool=self._pool, parent_progress=self._progress
            )
        except Exception as exc:  # reported per file; cancellation propagates
            result.error = exc
        finally:
            files.release()
        await send.send(result)
        if result.error is not None and self._fail_fast and self._work is not None:
            self._work.cancel()


class Results:
    """Async iterator over :class:`UploadResult` as files finish (completion order).

    With ``fail_fast`` the first failure's exception is raised from the iteration once
    its result arrives; the files still running are cancelled.
    """

    def __init__(self, receive: MemoryObjectReceiveStream[UploadResult], fail_fast: bool) -> None:
        self._receive = receive
        self._fail_fast = fail_fast

    def __aiter__(self) -> Results:
        return self

    async def __anext__(self) -> UploadResult:
        try:
            result = await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None
        if self._fail_fast and result.error is not None:
            raise result.error
        return result
