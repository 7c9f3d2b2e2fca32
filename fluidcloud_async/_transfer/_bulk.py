"""``files.upload_many``: items -> checked jobs (directories walked) -> uploads through one
shared slot pool, results streamed as files finish.

**Batch.** One :class:`SlotPool` bounds the parts (and read buffers) in flight across
every file, a semaphore bounds the files in flight, and the API calls pass one client-side
rate limiter. Results go out through an anyio memory object stream as files finish. The
task group that runs the uploads belongs to the ``async with`` block (never to an async
generator), so leaving the block - normally, by ``break`` or by an exception - cancels
what is left and waits for it, and nothing outlives the block.

**Items.** Paths, directories (walked recursively, in sorted order), bytes-like objects,
file objects, async iterables, or ``(source, {options})`` pairs. With ``keys_from_paths``
a file found under a directory gets the POSIX path relative to that directory as its
``client_key`` (joined to ``key_prefix`` with ``/``); duplicate keys in one batch would
supersede each other on the server, so they are refused up front. Items are checked when
``upload_many`` is called; directories are walked when the batch starts, in a worker
thread, because a large tree takes many blocking system calls. Entries a walk leaves out
become jobs that report why they were skipped.

**Walks.** By default no symlink is followed (a link inside a user-writable tree could
point at any file the process can read); each is reported as skipped. With
``follow_symlinks=True`` links are followed only to targets whose real path stays inside
the root's real path, and each real directory is walked once, so link loops (and
bind-mount loops, in both modes) end with a skipped entry. Links are followed after the
real tree is walked, so a directory reachable both directly and through a link keeps its
own path. Files are opened later, by :func:`open_entry`, with ``O_NOFOLLOW`` and only
while they are still the file the walk saw (device and inode), so an entry swapped for a
link (or a parent directory swapped for one) between the walk and the upload is never
followed.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import sys
import threading
from collections.abc import (
    AsyncIterable,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import PurePath
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._exceptions import EntrySkipped
from .._models import File
from .._types import SkipReason
from .._validate_args import optional_id, optional_text, require_flag, require_text
from ._existing import Existing, check_jobs
from ._io import Progress, ProgressCallback
from ._sources import Source, describe, file_type
from ._upload import SlotPool, UploadOptions, upload_file

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

if TYPE_CHECKING:
    from ._engine import Engine


# --- batch ---------------------------------------------------------------------

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
    """What was skipped: ``"FIFO"``, ``"-> ../target"``, the outside target's path..."""
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
        """Why it was skipped, e.g. ``"not a regular file (FIFO)"``; else ``None``."""
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


# --- items -------------------------------------------------------------------

#: Options an item may override: naming and sizing, plus the per-file upload flags.
ITEM_KEYS = frozenset(
    {
        "name",
        "content_type",
        "size",
        "client_key",
        "folder_id",
        "public",
        "checksum",
        "wait_until_clean",
    }
)


_DIRECTORY_KEYS = frozenset({"folder_id", "public", "checksum", "wait_until_clean"})


@dataclass(frozen=True)
class _Tree:
    """A directory item, walked when the batch starts."""

    root: str
    options: UploadOptions


@dataclass
class Plan:
    """The checked items of one batch; :meth:`jobs` walks its directories (blocking)."""

    pieces: list[Job | _Tree]
    keys_from_paths: bool
    key_prefix: str | None
    follow_symlinks: bool

    @property
    def has_trees(self) -> bool:
        """Whether :meth:`jobs` has directories to walk (then run it in a worker thread)."""
        return any(isinstance(piece, _Tree) for piece in self.pieces)

    def jobs(self, stop: threading.Event | None = None) -> list[Job]:
        """Every job in input order (directories expanded); raises ValueError on
        duplicate client keys. ``stop`` set: give up walking (the batch was cancelled)."""
        jobs: list[Job] = []
        for piece in self.pieces:
            if isinstance(piece, _Tree):
                jobs.extend(self._walk(piece, stop))
            else:
                jobs.append(piece)
        for index, job in enumerate(jobs):
            job.index = index
        _refuse_duplicate_keys(jobs)
        return jobs

    def _walk(self, tree: _Tree, stop: threading.Event | None) -> Iterator[Job]:
        for entry in walk(tree.root, follow_symlinks=self.follow_symlinks, stop=stop):
            key = _key(self.key_prefix, entry.rel) if self.keys_from_paths else None
            options = replace(tree.options, client_key=key)
            if isinstance(entry, Skipped):
                yield Job(0, entry.path, None, options, key, skip=(entry.reason, entry.detail))
                continue
            if not isinstance(entry, Found):  # a subdirectory that could not be listed
                yield Job(0, entry.path, None, options, key, error=entry.error)
                continue
            try:
                spec = describe(entry.open_path, name=os.path.basename(entry.path))
            except (OSError, ValueError, TypeError) as exc:  # changed since it was listed
                yield Job(0, entry.path, None, options, key, error=exc)
                continue
            yield Job(0, entry.path, replace(spec, walked=entry.ident), options, key)


def expand(
    items: Any,
    base: UploadOptions,
    *,
    keys_from_paths: bool,
    key_prefix: str | None,
    follow_symlinks: bool = False,
) -> Plan:
    """Every item checked (directories only noted); raises TypeError/ValueError."""
    if key_prefix is not None:
        require_text(key_prefix, "key_prefix")
    pieces: list[Job | _Tree] = []
    for source, overrides in _entries(items):
        options = _options(base, overrides)
        if isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
            extra = set(overrides) - _DIRECTORY_KEYS
            if extra:
                raise TypeError(f"a directory item cannot take {sorted(extra)}")
            pieces.append(_Tree(os.fspath(source), options))
            continue
        spec = describe(
            source,
            name=overrides.get("name"),
            content_type=overrides.get("content_type"),
            size=overrides.get("size"),
        )
        key = options.client_key
        if key is None and keys_from_paths and isinstance(source, (str, os.PathLike)):
            key = _key(key_prefix, os.path.basename(os.fspath(source)))
        pieces.append(Job(len(pieces), source, spec, replace(options, client_key=key), key))
    plan = Plan(pieces, keys_from_paths, key_prefix, follow_symlinks)
    if not plan.has_trees:
        plan.jobs()  # duplicate keys among plain items are refused right here
    return plan


def _entries(items: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
    if _is_single(items):
        items = [items]
    elif not isinstance(items, Iterable):
        raise TypeError(
            f"items must be a path, a source, a (source, options) pair or an iterable of them, "
            f"not {type(items).__name__}"
        )
    for item in items:
        if isinstance(item, tuple):
            if len(item) != 2 or not isinstance(item[1], Mapping):
                raise TypeError("a tuple item must be (source, {options})")
            source, overrides = item[0], dict(item[1])
            unknown = set(overrides) - ITEM_KEYS
            if unknown:
                raise TypeError(
                    f"unknown item options {sorted(unknown)}; allowed: {sorted(ITEM_KEYS)}"
                )
            yield source, overrides
        else:
            yield item, {}


def _is_single(items: Any) -> bool:
    if isinstance(items, (str, os.PathLike, bytes, bytearray, memoryview, io.IOBase)):
        return True
    if isinstance(items, tuple) and len(items) == 2 and isinstance(items[1], Mapping):
        return True
    return isinstance(items, AsyncIterable) or callable(getattr(items, "read", None))


def _options(base: UploadOptions, overrides: dict[str, Any]) -> UploadOptions:
    changes: dict[str, Any] = {}
    if "client_key" in overrides:
        changes["client_key"] = optional_text(overrides["client_key"], "client_key")
    if "folder_id" in overrides:
        changes["folder_id"] = optional_id(overrides["folder_id"], "folder_id")
    for name in ("public", "checksum", "wait_until_clean"):
        if name in overrides:
            changes[name] = require_flag(overrides[name], name)
    return replace(base, **changes) if changes else base


def _key(prefix: str | None, rel: str) -> str:
    if not prefix:
        return rel
    return prefix + rel if prefix.endswith("/") else f"{prefix}/{rel}"


def _refuse_duplicate_keys(jobs: list[Job]) -> None:
    seen: dict[str, int] = {}
    for job in jobs:
        if job.client_key is None or job.spec is None:  # skipped entries upload nothing
            continue
        if job.client_key in seen:
            raise ValueError(
                f"client_key {job.client_key!r} is used by items {seen[job.client_key]} and "
                f"{job.index}: the second upload would supersede the first"
            )
        seen[job.client_key] = job.index


# --- walks ---------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """A regular file to upload."""

    path: str  # as shown to the caller: the root joined with ``rel``
    rel: str  # POSIX path relative to the root
    open_path: str  # the path to open: no symlink in its last component
    ident: tuple[int, int]  # (st_dev, st_ino) seen by the walk
    size: int


@dataclass(frozen=True)
class Skipped:
    """An entry deliberately left out."""

    path: str
    rel: str
    reason: SkipReason
    detail: str | None = None


@dataclass(frozen=True)
class Unreadable:
    """A subdirectory that could not be listed (its files are missing: a failure)."""

    path: str
    rel: str
    error: OSError


Entry = Found | Skipped | Unreadable


def walk(root: str, *, follow_symlinks: bool, stop: threading.Event | None = None) -> list[Entry]:
    """Every entry under ``root`` in sorted order (a directory's files, then its
    subdirectories), then those reached through followed links. Blocking: run it in a
    worker thread. Raises OSError if ``root`` itself cannot be listed."""
    return _Walk(root, follow_symlinks, stop).run()


class _Walk:
    def __init__(self, root: str, follow: bool, stop: threading.Event | None) -> None:
        self.root = root
        # The root you name is used even if it is itself a link; links inside are not.
        self.root_real = os.path.realpath(root, strict=True)
        self.follow = follow
        self.stop = stop
        self.entries: list[Entry] = []
        self.visited: dict[tuple[int, int], str] = {}  # real directory -> rel walked as
        self.links: list[tuple[str, str, str]] = []  # (shown path, rel, path on disk)

    def run(self) -> list[Entry]:
        st = os.stat(self.root)
        self.visited[(st.st_dev, st.st_ino)] = ""
        self._tree(self.root, self.root, "", top=True)
        while self.links and not self._stopped():  # grows while linked trees are walked
            self._link(*self.links.pop(0))
        return self.entries

    def _stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _tree(self, disk: str, shown: str, rel: str, *, top: bool = False) -> None:
        stack = [(disk, shown, rel)]
        while stack and not self._stopped():
            disk, shown, rel = stack.pop()
            try:
                with os.scandir(disk) as it:
                    listing = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                if top:
                    raise
                self.entries.append(Unreadable(shown, rel, exc))
                continue
            top = False
            subdirs: list[tuple[str, str, str]] = []
            for entry in listing:
                child = (entry.path, os.path.join(shown, entry.name), _join(rel, entry.name))
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # removed since the listing: nothing to report
                    continue
                if stat.S_ISLNK(st.st_mode):
                    if self.follow:
                        self.links.append(child)
                    else:
                        self._skip(child, SkipReason.SYMLINK, _readlink(entry.path))
                elif stat.S_ISDIR(st.st_mode):
                    ident = (st.st_dev, st.st_ino)
                    if self._first_visit(child, ident):
                        subdirs.append(child)
                elif stat.S_ISREG(st.st_mode):
                    self.entries.append(
                        Found(child[1], child[2], child[0], (st.st_dev, st.st_ino), st.st_size)
                    )
                else:
                    self._skip(child, SkipReason.NOT_REGULAR, file_type(st.st_mode))
            stack.extend(reversed(subdirs))

    def _first_visit(self, child: tuple[str, str, str], ident: tuple[int, int]) -> bool:
        """Record a directory; a second visit (a loop, or an alias) is skipped."""
        earlier = self.visited.get(ident)
        if earlier is None:
            self.visited[ident] = child[2]
            return True
        rel = child[2]
        if earlier == "" or rel.startswith(earlier + "/"):
            self._skip(child, SkipReason.LOOP, f"leads back to {earlier or '.'}")
        else:
            self._skip(child, SkipReason.ALREADY_WALKED, f"as {earlier}")
        return False

    def _link(self, disk: str, shown: str, rel: str) -> None:
        child = (disk, shown, rel)
        try:
            target = os.path.realpath(disk, strict=True)
            st = os.stat(target)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._skip(child, SkipReason.LOOP, "links resolve in a circle")
            else:
                self._skip(child, SkipReason.BROKEN_SYMLINK, _readlink(disk))
            return
        if not _inside(target, self.root_real):
            self._skip(child, SkipReason.OUTSIDE_ROOT, target)
        elif stat.S_ISDIR(st.st_mode):
            if self._first_visit(child, (st.st_dev, st.st_ino)):
                self._tree(target, shown, rel)
        elif stat.S_ISREG(st.st_mode):
            self.entries.append(Found(shown, rel, target, (st.st_dev, st.st_ino), st.st_size))
        else:
            self._skip(child, SkipReason.NOT_REGULAR, file_type(st.st_mode))

    def _skip(self, child: tuple[str, str, str], reason: SkipReason, detail: str | None) -> None:
        self.entries.append(Skipped(child[1], child[2], reason, detail))


def _join(rel: str, name: str) -> str:
    return PurePath(rel, name).as_posix() if rel else PurePath(name).as_posix()


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _readlink(path: str) -> str | None:
    try:
        return "-> " + os.readlink(path)
    except OSError:
        return None
