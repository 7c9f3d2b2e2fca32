"""Bulk ingest on a Dask cluster: [`upload_tree`][fluidcloud_async.dask.upload_tree]
(needs the ``[dask]`` extra).

The tree is walked on the client side (by the same walker as ``upload_many``: no symlink
followed by default), cut into batches by file count and bytes, and each batch runs as one
Dask task: ``upload_many``'s engine with ``skip_existing`` on the worker, through one
[`AsyncFluidCloud`][fluidcloud_async.AsyncFluidCloud] per worker process, reused by every
task it runs.

How it runs on a worker. Dask runs tasks in threads; the SDK is async. A
`distributed.WorkerPlugin` starts, in each worker process, one event loop in a
dedicated thread (an anyio blocking portal) and one client on it; tasks hand their batch
to that loop and wait. The plugin closes the client and stops the loop when the worker
shuts down. Concurrent tasks on one worker share the client's connection pool and its
rate limiter.

Credentials. The API key, base URL and [`RateLimit`][fluidcloud_async.RateLimit] (whose
Redis URI may hold a password) travel inside the worker plugin, registered with the
scheduler once per set of connection settings (so a worker that replaces a lost one gets
it too; registering it again would close the clients of a run in progress), never as
task arguments:
the dashboard, task reprs and the scheduler's task graph show only paths, keys, sizes and
upload options. The plugin's ``repr`` hides the key. Whoever can reach the scheduler can
still unpickle the plugin: that is Dask's trust boundary, as for any credential a task uses.

Re-runs. Every file's ``client_key`` is its POSIX path relative to ``root`` (after
``key_prefix``), and every batch runs with ``skip_existing=True``: a batch that Dask
re-runs after losing a worker skips the files the lost attempt stored, and a second
``upload_tree`` over the same tree uploads nothing.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import logging
import os
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ._exceptions import EntryReplacedError
from ._ratelimit import RateLimit
from ._transfer._bulk import Found, Job, Plan, Skipped, _key, _Tree, walk
from ._transfer._existing import Existing, HashCache, check_jobs
from ._transfer._sources import describe
from ._transfer._upload import UploadOptions
from ._types import SkipReason
from ._validate_args import (
    optional_callback,
    optional_rate_limit,
    require_flag,
    require_positive_int,
    require_text,
    upload_options,
)

try:
    from distributed import WorkerPlugin, as_completed, get_worker
except ImportError as exc:  # pragma: no cover - exercised without the extra only
    raise ImportError(
        "fluidcloud_async.dask needs Dask: pip install 'fluidcloud-async[dask]'"
    ) from exc

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal
    from distributed import Client, Worker

    from ._client import AsyncFluidCloud

__all__ = ["BatchReport", "FileFailure", "TreeSummary", "upload_tree"]

logger = logging.getLogger("fluidcloud_async")

_DEFAULT_RATE_LIMIT = RateLimit()
_POLL = 0.2  # seconds between checks that a running batch is still wanted


@dataclass(frozen=True)
class FileFailure:
    """One file that was not stored, and why."""

    path: str
    """The file's path as walked on the client (``root`` joined with its relative path)."""
    client_key: str | None
    """The key it was to be stored under."""
    error: str
    """The exception's ``repr`` (from the worker), or why its whole batch failed."""


@dataclass
class BatchReport:
    """What one batch (one Dask task) did; handed to ``on_batch`` as batches finish."""

    index: int
    """The batch's position (0-based, in walk order)."""
    files: int
    """Files in the batch."""
    uploaded: int = 0
    unchanged: int = 0
    """Already stored with the same size and SHA-256 (``SkipReason.UNCHANGED``)."""
    skipped: int = 0
    """Other skips: a file replaced by a symlink after the walk."""
    failed: int = 0
    bytes_uploaded: int = 0
    bytes_unchanged: int = 0
    failures: list[FileFailure] = field(default_factory=list)
    skips: list[tuple[str, str]] = field(default_factory=list)
    """``(path, reason)`` of each file skipped."""
    worker: str | None = None
    """The address of the worker that ran it (``None`` if the task failed as a whole)."""
    seconds: float = 0.0
    """Time the batch took on its worker."""
    batches_done: int = 0
    """Batches finished so far, this one included (set on the client)."""
    batches_total: int = 0


@dataclass
class TreeSummary:
    """The aggregated outcome of [`upload_tree`][fluidcloud_async.dask.upload_tree];
    ``str()`` gives a one-line summary."""

    files: int = 0
    """Regular files found by the walk (each one is in exactly one batch)."""
    uploaded: int = 0
    unchanged: int = 0
    """Stored already with the same size and SHA-256: not sent again."""
    skipped: int = 0
    """Walk entries not uploaded (symlinks not followed, fifos...) plus files replaced by a
    symlink after the walk; see ``skips``."""
    failed: int = 0
    bytes_uploaded: int = 0
    bytes_unchanged: int = 0
    failures: list[FileFailure] = field(default_factory=list)
    """Each file not stored, with the reason (an unreadable subdirectory counts as one)."""
    skips: list[tuple[str, str]] = field(default_factory=list)
    """``(path, reason)`` of each skipped entry, e.g. ``("t/link", "symlink (not followed)
    (-> /etc/passwd)")``."""
    batches: int = 0
    wall_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every file found is stored (uploaded now or unchanged)."""
        return self.failed == 0

    def __str__(self) -> str:
        rate = self.bytes_uploaded / self.wall_seconds / 2**20 if self.wall_seconds else 0.0
        return (
            f"uploaded {self.uploaded} ({_mib(self.bytes_uploaded)}), unchanged "
            f"{self.unchanged}, skipped {self.skipped}, failed {self.failed} in "
            f"{self.wall_seconds:.1f}s ({rate:.1f} MiB/s, {self.batches} batches)"
        )

    def _add(self, report: BatchReport) -> None:
        self.uploaded += report.uploaded
        self.unchanged += report.unchanged
        self.skipped += report.skipped
        self.failed += report.failed
        self.bytes_uploaded += report.bytes_uploaded
        self.bytes_unchanged += report.bytes_unchanged
        self.failures.extend(report.failures)
        self.skips.extend(report.skips)


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


@dataclass(frozen=True)
class _Entry:
    """One walked file, as sent to a worker (no credentials in a task's arguments)."""

    path: str  # shown: root joined with rel
    rel: str
    open_path: str  # no symlink in its last component
    ino: int  # the inode the walk saw (st_dev may differ on another host's mount)
    size: int


@dataclass(frozen=True)
class _Options:
    """The upload options of a run (no credentials)."""

    plugin: str
    space_id: str
    folder_id: str | None
    key_prefix: str | None
    follow_symlinks: bool
    max_files: int
    max_concurrency: int
    checksum: bool
    wait_until_clean: bool
    clean_timeout: float | None
    hash_cache: str | None


@dataclass(frozen=True)
class _Connection:
    api_key: str = field(repr=False)
    base_url: str
    rate_limit: RateLimit | None
    timeout: float | None
    max_retries: int | None


class _ClientPlugin(WorkerPlugin):
    """One event loop (an anyio blocking portal in its own thread) and one
    `AsyncFluidCloud` per worker process; closed when the worker shuts down."""

    def __init__(self, name: str, connection: _Connection) -> None:
        self.name = name
        self._connection = connection
        self._portal_cm: contextlib.AbstractContextManager[BlockingPortal] | None = None
        self.portal: BlockingPortal | None = None
        self.client: AsyncFluidCloud | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the key
        return f"<fluidcloud_async worker client {self.name}>"

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name, "_connection": self._connection}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["name"], state["_connection"])  # type: ignore[misc]

    def setup(self, worker: Worker) -> None:
        """Nothing yet: the loop and client start with the first task (a worker that
        runs no batch opens no connection)."""

    def ensure(self) -> tuple[BlockingPortal, AsyncFluidCloud]:
        """The worker's portal and client, started on first use (thread-safe)."""
        with self._lock:
            if self.portal is None or self.client is None:
                from anyio.from_thread import start_blocking_portal

                from ._client import AsyncFluidCloud

                cm = start_blocking_portal()
                portal = cm.__enter__()
                conn = self._connection
                options: dict[str, Any] = {"base_url": conn.base_url}
                if conn.timeout is not None:
                    options["timeout"] = conn.timeout
                if conn.max_retries is not None:
                    options["max_retries"] = conn.max_retries
                try:
                    self.client = AsyncFluidCloud(conn.api_key, **options)
                except BaseException:
                    cm.__exit__(None, None, None)
                    raise
                self._portal_cm, self.portal = cm, portal
            return self.portal, self.client

    def teardown(self, worker: Worker) -> None:
        """Close the client (its sessions and Redis connections) and stop the loop."""
        with self._lock:
            portal, client, cm = self.portal, self.client, self._portal_cm
            self.portal = self.client = self._portal_cm = None
        if portal is None or cm is None:
            return
        try:
            if client is not None:
                portal.call(client.close)
        finally:
            cm.__exit__(None, None, None)


def _has_plugin(name: str, dask_scheduler: Any = None) -> bool:
    """On the scheduler: whether the worker plugin ``name`` is registered."""
    return name in getattr(dask_scheduler, "worker_plugins", {})


def _run_batch(index: int, options: _Options, entries: list[_Entry]) -> BatchReport:
    """The task: upload one batch on this worker's loop and client."""
    worker = get_worker()
    plugin = worker.plugins.get(options.plugin)
    if not isinstance(plugin, _ClientPlugin):
        raise RuntimeError(f"worker {worker.address} has no fluidcloud_async plugin")
    portal, client = plugin.ensure()
    started = time.monotonic()
    key = worker.get_current_task()
    running = portal.start_task_soon(
        _upload_batch, client, index, options, entries, plugin._connection
    )
    while True:
        try:
            report = running.result(timeout=_POLL)
            break
        except concurrent.futures.TimeoutError:
            # Dask cannot stop a task's thread: when the task is cancelled (or released),
            # cancel its uploads on the loop here, so that nothing more is sent.
            state = worker.state.tasks.get(key)
            if state is None or state.state in ("cancelled", "released"):
                running.cancel()
                raise concurrent.futures.CancelledError(f"{key} was cancelled") from None
    report.worker = worker.address
    report.seconds = time.monotonic() - started
    return report


def _jobs(options: _Options, entries: list[_Entry]) -> list[Job]:
    base = upload_options(
        space_id=options.space_id,
        folder_id=options.folder_id,
        checksum=options.checksum,
        wait_until_clean=options.wait_until_clean,
        clean_timeout=options.clean_timeout,
    )
    jobs: list[Job] = []
    for entry in entries:
        key = _key(options.key_prefix, entry.rel)
        opts: UploadOptions = replace(base, client_key=key)
        try:  # still the file the walk saw? (its device may differ on this host)
            st = os.lstat(entry.open_path)
            if stat.S_ISLNK(st.st_mode):
                detail = "replaced by a symlink after the walk"
                jobs.append(Job(0, entry.path, None, opts, key, skip=(SkipReason.SYMLINK, detail)))
                continue
            if st.st_ino != entry.ino:
                raise EntryReplacedError(
                    f"{entry.path}: replaced since the directory walk; not uploaded"
                )
            spec = describe(entry.open_path, name=os.path.basename(entry.path))
            jobs.append(Job(0, entry.path, replace(spec, walked=(st.st_dev, st.st_ino)), opts, key))
        except (OSError, ValueError, TypeError) as exc:
            jobs.append(Job(0, entry.path, None, opts, key, error=exc))
    return jobs


async def _upload_batch(
    client: AsyncFluidCloud,
    index: int,
    options: _Options,
    entries: list[_Entry],
    connection: _Connection,
) -> BatchReport:
    pieces: list[Job | _Tree] = list(_jobs(options, entries))
    plan = Plan(pieces, True, options.key_prefix, options.follow_symlinks)
    jobs = plan.jobs()
    check_jobs(jobs)
    cache = HashCache(options.hash_cache) if options.hash_cache else None
    batch = client.files._batch(
        plan,
        rate_limit=connection.rate_limit,
        max_files=options.max_files,
        max_concurrency=options.max_concurrency,
        existing=Existing(cache),
    )
    report = BatchReport(index=index, files=len(entries))
    async with batch as results:
        async for result in results:
            if result.skipped is SkipReason.UNCHANGED:
                report.unchanged += 1
                report.bytes_unchanged += (result.file.size or 0) if result.file else 0
            elif result.skipped is not None:
                report.skipped += 1
                report.skips.append((str(result.source), result.reason or ""))
            elif result.ok:
                report.uploaded += 1
                report.bytes_uploaded += (result.file.size or 0) if result.file else 0
            else:
                report.failed += 1
                report.failures.append(
                    FileFailure(str(result.source), result.client_key, repr(result.error))
                )
    return report


def _batches(found: list[Found], max_files: int, max_bytes: int) -> Iterator[list[Found]]:
    batch: list[Found] = []
    size = 0
    for entry in found:
        if batch and (len(batch) >= max_files or size + entry.size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += entry.size
    if batch:
        yield batch


def upload_tree(
    dask_client: Client,
    root: str | os.PathLike[str],
    space_id: str,
    *,
    folder_id: str | None = None,
    key_prefix: str | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    rate_limit: RateLimit | None = _DEFAULT_RATE_LIMIT,
    batch_files: int = 500,
    batch_bytes: int = 2 * 2**30,
    max_files: int = 16,
    max_concurrency: int = 16,
    checksum: bool = True,
    wait_until_clean: bool = False,
    clean_timeout: float | None = 300.0,
    follow_symlinks: bool = False,
    hash_cache: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    on_batch: Callable[[BatchReport], None] | None = None,
) -> TreeSummary:
    """Upload the directory ``root`` to a space with the workers of a Dask cluster.

    The tree is walked here, on the client, with ``upload_many``'s rules (sorted; no
    symlink followed unless ``follow_symlinks=True``, and then only inside the tree; fifos,
    sockets and devices skipped), and every file is stored under the ``client_key`` of its
    POSIX path relative to ``root``, joined to ``key_prefix``. The files are cut into
    batches of at most ``batch_files`` files and ``batch_bytes`` bytes (a larger file is a
    batch of its own), and each batch is one Dask task running ``upload_many``'s engine
    with ``skip_existing=True`` on a worker: at most ``max_files`` files and
    ``max_concurrency`` parts in flight per task, one client per worker process.

    Every worker must see ``root`` at the same path (a shared filesystem, or a
    ``LocalCluster``) and have ``fluidcloud_async`` installed. ``dask_client`` is a
    synchronous client: from async code, call ``upload_tree`` in a thread. Leaving early
    (an exception from ``on_batch``, Ctrl-C) cancels the batches not yet finished. A file
    replaced after the walk is not uploaded (a failure), nor followed if it became a
    symlink (a skip).

    Re-running is safe: a batch Dask re-runs after losing a worker, or a whole second
    call, skips what is already stored with the same size and SHA-256 (each batch lists
    the destination once: ``files / batch_files`` listings of ``stored / 100`` pages each).
    ``hash_cache`` is a path, opened on each worker, that spares re-reading unchanged files
    (keep it on a local disk of each host; several processes may share it).

    Args:
        dask_client: A connected ``distributed.Client``.
        root: The directory to upload.
        space_id: The destination space.
        folder_id: A folder of that space (default: its root).
        key_prefix: Prefix of every ``client_key`` (joined with ``/``).
        api_key: The key the workers use; default ``FLUIDCLOUD_API_KEY`` here, on the
            client. It reaches the workers inside a worker plugin, never as a task
            argument (not shown by the dashboard).
        base_url: The API origin, default ``FLUIDCLOUD_BASE_URL`` here or the real API.
        rate_limit: The key's budget, shared by every worker process only with a
            ``storage="redis://..."`` that all of them reach; with the in-memory default
            each worker process spends the whole budget (N workers, N times the cap).
            ``None`` turns the client-side limiter off.
        batch_files: Files per task at most.
        batch_bytes: Bytes per task at most.
        max_files: Files in flight per task.
        max_concurrency: Parts in flight per task, across its files.
        checksum: Send and check each file's SHA-256 (as ``upload_many``).
        wait_until_clean: Wait for each file's scan verdict.
        clean_timeout: Seconds to wait for a verdict.
        follow_symlinks: Follow links whose target stays inside ``root``.
        hash_cache: A path for a ``HashCache`` on each worker, or ``None``.
        timeout: The workers' client ``timeout`` (default: the client's default).
        max_retries: The workers' client ``max_retries`` (default: the client's default).
        on_batch: Called here, in the calling thread, with each
            [`BatchReport`][fluidcloud_async.dask.BatchReport] as its batch finishes
            (``batches_done`` of ``batches_total``).

    Returns:
        The [`TreeSummary`][fluidcloud_async.dask.TreeSummary]: counts, bytes, each
        failure and skip with its reason, and the wall time. A batch whose task failed as
        a whole (a worker lost more often than the scheduler's ``allowed-failures``)
        counts each of its files as failed.

    Raises:
        OSError: ``root`` cannot be listed.
        TypeError: An argument of the wrong type (before any task is submitted).
        ValueError: A bad value, as for ``upload_many``.
    """
    started = time.monotonic()
    from ._settings import ClientSettings  # resolves the key and URL the way workers would

    top = os.fspath(root)
    if isinstance(top, bytes):
        raise TypeError("root must be a str path")
    if not os.path.isdir(top):
        raise ValueError(f"{top!r} is not a directory")
    base = upload_options(
        space_id=space_id,
        folder_id=folder_id,
        checksum=checksum,
        wait_until_clean=wait_until_clean,
        clean_timeout=clean_timeout,
    )
    if key_prefix is not None:
        require_text(key_prefix, "key_prefix")
    rate_limit = optional_rate_limit(rate_limit)
    callback = optional_callback(on_batch, "on_batch")
    cache = None if hash_cache is None else os.path.abspath(os.fspath(hash_cache))
    settings: dict[str, Any] = {}
    if timeout is not None:
        settings["timeout"] = timeout
    if max_retries is not None:
        settings["max_retries"] = max_retries
    # Checked as the workers' clients will be (ConfigurationError without a key).
    checked = ClientSettings.resolve(api_key, base_url=base_url, **settings)
    connection = _Connection(
        api_key=checked.api_key,
        base_url=checked.origin,
        rate_limit=rate_limit,
        timeout=timeout,
        max_retries=max_retries,
    )
    storage = "" if rate_limit is None else rate_limit.storage  # repr() hides its password
    digest = hashlib.sha256("\0".join((repr(connection), storage, connection.api_key)).encode())
    plugin_name = "fluidcloud-" + digest.hexdigest()[:16]
    options = _Options(
        plugin=plugin_name,
        space_id=base.space_id,
        folder_id=base.folder_id,
        key_prefix=key_prefix,
        follow_symlinks=require_flag(follow_symlinks, "follow_symlinks"),
        max_files=require_positive_int(max_files, "max_files"),
        max_concurrency=require_positive_int(max_concurrency, "max_concurrency"),
        checksum=base.checksum,
        wait_until_clean=base.wait_until_clean,
        clean_timeout=base.clean_timeout,
        hash_cache=cache,
    )
    per_files = require_positive_int(batch_files, "batch_files")
    per_bytes = require_positive_int(batch_bytes, "batch_bytes")

    summary = TreeSummary()
    found: list[Found] = []
    for entry in walk(top, follow_symlinks=options.follow_symlinks):
        if isinstance(entry, Found):
            found.append(entry)
        elif isinstance(entry, Skipped):
            summary.skipped += 1
            detail = f" ({entry.detail})" if entry.detail else ""
            summary.skips.append((entry.path, entry.reason.value + detail))
        else:  # a subdirectory that could not be listed: its files are missing
            summary.failed += 1
            summary.failures.append(FileFailure(entry.path, None, repr(entry.error)))
    summary.files = len(found)
    batches = list(_batches(found, per_files, per_bytes))
    summary.batches = len(batches)
    if batches:
        # Registered once per connection settings: registering again would close the
        # workers' clients under a run still using them (another upload_tree call).
        if not dask_client.run_on_scheduler(_has_plugin, plugin_name):  # type: ignore[no-untyped-call]
            dask_client.register_plugin(_ClientPlugin(plugin_name, connection), name=plugin_name)
        run = uuid.uuid4().hex[:8]
        futures: dict[Any, tuple[int, list[Found]]] = {}  # distributed.Future: untyped
        for index, batch in enumerate(batches):
            entries = [_Entry(f.path, f.rel, f.open_path, f.ident[1], f.size) for f in batch]
            future = dask_client.submit(
                _run_batch, index, options, entries, key=f"fluidcloud-batch-{run}-{index}"
            )
            futures[future] = (index, batch)
        finished = as_completed(list(futures))  # type: ignore[no-untyped-call]  # untyped
        try:
            for done, future in enumerate(finished, 1):
                index, batch = futures[future]
                try:
                    report = future.result()
                except Exception as exc:  # the task failed as a whole (e.g. KilledWorker)
                    report = BatchReport(index=index, files=len(batch), failed=len(batch))
                    report.failures = [
                        FileFailure(f.path, _key(key_prefix, f.rel), f"batch failed: {exc!r}")
                        for f in batch
                    ]
                future.release()
                report.batches_done, report.batches_total = done, len(batches)
                summary._add(report)
                if callback is not None:
                    callback(report)
        except BaseException:  # interrupted (Ctrl-C, an exception from on_batch):
            # stop the batches left, and release those finished but not yet collected
            dask_client.cancel(list(futures))  # type: ignore[no-untyped-call]  # untyped
            raise
    summary.failures.sort(key=lambda f: f.path)
    summary.skips.sort()
    summary.wall_seconds = time.monotonic() - started
    return summary
