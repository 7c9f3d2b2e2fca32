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
import threading
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field, replace
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._models import File
from ._existing import Existing, check_jobs
from ._progress import Progress, ProgressCallback
from ._scheduler import SlotPool
from ._sources import Source
from ._tree import EntrySkipped, SkipReason
from ._upload import UploadOptions, upload_file

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

if TYPE_CHECKING:
    from ._engine import Engine


Finish = Callable[[File, UploadOptions], Awaitable[File]]
"""``finish(file, options)``: what follows a stored upload (wait for the scan, mint the
link), the same steps ``files.upload`` takes; also applied to files found unchanged."""

FileProgressCallback = Callable[[Any, int, int], Awaitable[None] | None]
"""``file_progress(source, bytes_sent, total)``: one file's progress within a batch."""


@dataclass
class UploadResult:
    """The outcome of one item of ``upload_many``: ``file`` on success, ``error`` on
    failure, ``skipped`` for an item deliberately not uploaded (a symlink not followed, a
    fifo...: not a failure; with ``skip_existing``, ``SkipReason.UNCHANGED`` and ``file``
    is the stored record). ``str(result)`` says which, in one line."""

    source: Any
    """The item's source as given (a path for files found in a directory)."""
    client_key: str | None
    """The key the file was uploaded under, if any."""
    file: File | None = None
    """The stored file, when it was uploaded."""
    error: BaseException | None = None
    """Why it failed, when it did."""
    index: int = 0
    """Position in input order (directories expand in sorted order)."""
    skipped: SkipReason | None = None
    """Why a directory entry was not uploaded; ``None`` for uploads and failures."""
    skip_detail: str | None = None
    """What was skipped: ``"fifo"``, ``"-> ../target"``, the outside target's path..."""
    note: str | None = None
    """With ``skip_existing``: why a file on record under this key was not matched
    (``"changed (...)"``, ``"no sha256 on record, cannot compare"``); None if there was none."""

    @property
    def ok(self) -> bool:
        """Whether the file is stored: uploaded (and verified), or found unchanged."""
        return self.error is None and self.file is not None

    @property
    def status(self) -> Literal["uploaded", "failed", "skipped"]:
        """``"uploaded"``, ``"failed"`` or ``"skipped"``."""
        if self.skipped is not None:
            return "skipped"
        return "uploaded" if self.ok else "failed"

    @property
    def reason(self) -> str | None:
        """Why it was skipped, e.g. ``"not a regular file (fifo)"``; else ``None``."""
        if self.skipped is None:
            return None
        detail = f" ({self.skip_detail})" if self.skip_detail else ""
        return self.skipped.value + detail

    def __str__(self) -> str:
        if self.skipped is not None:
            return f"{self.source}: skipped: {self.reason}"
        if self.ok and self.file is not None:
            return f"{self.source}: uploaded as {self.file.id}"
        return f"{self.source}: failed: {self.error!r}"


@dataclass
class Job:
    """One validated item (``spec`` is None for entries that report ``skip`` or
    ``error`` without uploading)."""

    index: int
    source: Any
    spec: Source | None
    options: UploadOptions
    client_key: str | None = field(default=None)
    skip: tuple[SkipReason, str | None] | None = None
    error: BaseException | None = None


class JobPlan(Protocol):
    """Checked items whose directories are walked by :meth:`jobs` (blocking)."""

    @property
    def has_trees(self) -> bool:
        """Whether :meth:`jobs` walks directories (and so must leave the event loop)."""

    def jobs(self, stop: threading.Event | None = None) -> list[Job]:
        """Every job in input order; ``stop`` set: give up walking."""


class UploadMany:
    """A batch of uploads, returned (not started) by
    [`files.upload_many`][fluidcloud_async.resources.Files.upload_many].

    `async with` it to stream [`UploadResults`][fluidcloud_async.UploadResults] as files
    finish (leaving the block cancels what still runs), or `await` it for the list of all
    results in input order. A batch runs once.
    """

    def __init__(
        self,
        engine: Engine,
        finish: Finish,
        plan: JobPlan,
        *,
        max_files: int,
        max_concurrency: int,
        fail_fast: bool,
        progress: ProgressCallback | None,
        file_progress: FileProgressCallback | None = None,
        existing: Existing | None = None,
    ) -> None:
        self._engine = engine
        self._finish = finish
        self._existing = existing
        self._plan = plan
        self._file_progress = file_progress
        self._max_files = max_files
        self._pool = SlotPool(max_concurrency)
        self._fail_fast = fail_fast
        self._progress_callback = progress
        self._progress: Progress | None = None
        self._jobs: list[Job] | None = None
        if not plan.has_trees:  # nothing to walk: ready now (and len() works at once)
            self._prepare(plan.jobs())
        self._started = False
        self._tg: TaskGroup | None = None
        self._receive: MemoryObjectReceiveStream[UploadResult] | None = None
        self._work: anyio.CancelScope | None = None

    def _prepare(self, jobs: list[Job]) -> None:
        if self._file_progress is not None:
            for job in jobs:
                job.options = replace(
                    job.options, progress=partial(self._file_progress, job.source)
                )
        total = sum(job.spec.size or 0 for job in jobs if job.spec is not None)
        if self._progress_callback is not None:
            self._progress = Progress(self._progress_callback, total)
        self._jobs = jobs

    async def _walk(self) -> None:
        # A large tree takes many blocking system calls: a worker thread does them. On
        # cancellation the thread is abandoned and told to stop at its next directory.
        stop = threading.Event()
        try:
            jobs = await anyio.to_thread.run_sync(self._plan.jobs, stop, abandon_on_cancel=True)
        finally:
            stop.set()
        self._prepare(jobs)

    def __len__(self) -> int:
        """The number of results (skipped entries included). With directories among the
        items it is known once the batch has started (they are walked then)."""
        if self._jobs is None:
            raise TypeError(
                "directories are walked when the batch starts: use len() inside "
                "`async with fc.files.upload_many(...)`"
            )
        return len(self._jobs)

    @property
    def skipped_count(self) -> int:
        """How many directory entries will be reported as skipped (known once started)."""
        return sum(job.skip is not None for job in self._jobs or ())

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
        if self._jobs is None:
            await self._walk()  # may raise: a duplicate client key, an unreadable root
            if self._existing is not None:
                check_jobs(self._jobs or ())
        if self._existing is not None:
            try:  # the destination is listed once, before any upload starts
                await self._existing.load(self._engine.api, self._jobs or [])
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._existing.aclose()
                raise
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
            if self._existing is not None:
                with anyio.CancelScope(shield=True):  # commit the digests read so far
                    await self._existing.aclose()
        return None

    async def _produce(self, send: MemoryObjectSendStream[UploadResult]) -> None:
        files = anyio.Semaphore(self._max_files)
        assert self._jobs is not None
        async with send, anyio.create_task_group() as work:
            self._work = work.cancel_scope
            for job in self._jobs:
                if job.spec is None:  # skipped, or known to fail: nothing to upload
                    await send.send(_unsent(job))
                    continue
                await files.acquire()
                work.start_soon(self._one, job, files, send)
        if self._progress is not None and not work.cancel_scope.cancel_called:
            await self._progress.finish()

    async def _one(
        self, job: Job, files: anyio.Semaphore, send: MemoryObjectSendStream[UploadResult]
    ) -> None:
        assert job.spec is not None
        result = UploadResult(job.source, job.client_key, index=job.index)
        try:
            if self._existing is not None:
                found = await self._existing.check(job)
                result.note = found.note
                if found.unchanged is not None:  # reported like a skipped entry, with its file
                    result.file = await self._finish(found.unchanged, job.options)
                    raise EntrySkipped(SkipReason.UNCHANGED, f"stored as {found.unchanged.id}")
            stored = await upload_file(
                self._engine, job.spec, job.options, pool=self._pool, parent_progress=self._progress
            )
            result.file = await self._finish(stored, job.options)
        except EntrySkipped as skip:  # unchanged, or a symlink swapped in since the walk
            result.skipped, result.skip_detail = skip.reason, skip.detail
            if self._progress is not None and job.spec.size:
                self._progress.total -= job.spec.size  # never sent: the batch total shrinks
        except Exception as exc:  # reported per file; cancellation propagates
            result.error = exc
        finally:
            files.release()
        await send.send(result)
        if result.error is not None and self._fail_fast and self._work is not None:
            self._work.cancel()


def _unsent(job: Job) -> UploadResult:
    result = UploadResult(job.source, job.client_key, error=job.error, index=job.index)
    if job.skip is not None:
        result.skipped, result.skip_detail = job.skip
    return result


class Results:
    """Async iterator over [`UploadResult`][fluidcloud_async.UploadResult]s as files finish
    (in completion order), from `async with fc.files.upload_many(...) as results`.

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
