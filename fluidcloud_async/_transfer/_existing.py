"""``upload_many(..., skip_existing=True)``: skip what the destination already holds.

The destination of each item (its space and folder) is listed once, page by page, when
the batch starts; only records whose ``client_key`` is one of the batch's keys are kept
(memory grows with the batch, not with the folder). An item is skipped as unchanged when
the newest live record under its key has the same size and a SHA-256 equal to the local
bytes'. Records without a SHA-256 cannot be compared: the item is uploaded (and, under the
API's ``client_key`` semantics, supersedes the old record), with a note saying why.

The local SHA-256 is computed only for items whose key and size already match a record,
in worker threads, reading 4 MiB at a time. A :class:`HashCache` remembers digests by
path and ``stat`` identity (size, mtime_ns, ctime_ns, inode, device), so an unchanged tree
re-runs without reading its files; any difference in those fields means the file is read
again. The cache serves the skip decision only: an upload still hashes exactly the bytes
it sends (the source-identity check needs that digest, not a remembered one).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from .._models import File
from .._validate_args import require_path
from ._io import HASH_CHUNK, pread_into, run_stoppable
from ._sources import MemorySource, PathSource, open_entry

if TYPE_CHECKING:
    from ._bulk import Job
    from ._engine import ApiCalls

#: (size, mtime_ns, ctime_ns, inode, device): a file whose stat differs in any is re-read.
Stamp = tuple[int, int, int, int, int]
#: Digests kept in memory before they are written (a crash loses at most these).
_COMMIT_EVERY = 512

NO_SHA256 = "no sha256 on record, cannot compare"

logger = logging.getLogger("fluidcloud_async")


def _stamp(st: os.stat_result) -> Stamp:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


class HashCache:
    """A local SQLite cache of file digests for ``upload_many(..., skip_existing=True)``.

    Maps a path and its ``stat`` identity (size, mtime_ns, ctime_ns, inode, device) to the
    SHA-256 read from it, so re-running a batch over an unchanged tree reads no file. A
    file whose identity differs in any field is read again (the file wins). The database
    is created ``0600``; one owned by another user or writable by others is refused (its
    digests decide what is skipped). It is opened when a batch starts, in a worker thread.

    ``hits`` and ``hashed`` count digests served from the cache and files read.

    Args:
        path: The database file (created if missing).

    Examples:
        ```python
        from pathlib import Path

        from fluidcloud_async import HashCache

        Path("tree").mkdir()
        Path("tree", "a.txt").write_text("a")
        cache = HashCache("digests.sqlite")
        for _ in range(2):  # the second run reads no file: its digest is cached
            await fc.files.upload_many(
                "tree", space.id, keys_from_paths=True, skip_existing=True, hash_cache=cache
            )
        print(cache)  # HashCache('.../digests.sqlite', hits=1, hashed=1)
        ```
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(require_path(path, "the hash_cache path"))
        self.hits = 0
        self.hashed = 0
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._rows: list[tuple[str | int, ...]] = []  # digests not written yet
        self._users = 0  # batches using it now: the last one closes it

    def __repr__(self) -> str:
        return f"HashCache({self.path!r}, hits={self.hits}, hashed={self.hashed})"

    def open(self) -> None:
        """Open (creating ``0600``) the database; blocking, idempotent."""
        with self._lock:
            self._users += 1
            if self._db is not None:
                return
            try:
                flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
                fd = os.open(self.path, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
                try:
                    _check_owner(self.path, os.fstat(fd))
                finally:
                    os.close(fd)
                # Autocommit: reads take no lock for long, writes are short batches, so
                # several processes can share one cache file.
                db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                try:
                    db.execute(
                        "CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, size INTEGER,"
                        " mtime_ns INTEGER, ctime_ns INTEGER, ino INTEGER, dev INTEGER,"
                        " sha256 TEXT NOT NULL)"
                    )
                except BaseException:
                    db.close()
                    raise
            except BaseException:
                self._users -= 1
                raise
            self._db = db

    def close(self) -> None:
        """Write what is pending and close (blocking) once every batch using it is done;
        the cache can be opened again."""
        with self._lock:
            self._flush()
            self._users = max(0, self._users - 1)
            if self._users:  # another batch still uses it
                return
            db, self._db = self._db, None
            if db is not None:
                db.close()

    def lookup(self, path: str, stamp: Stamp) -> str | None:
        """The digest recorded for a path, if its identity is still the same (blocking).

        Args:
            path: The file's path.
            stamp: Its identity now: size, mtime_ns, ctime_ns, inode, device.
        """
        with self._lock:
            assert self._db is not None, "HashCache.open() first"
            try:
                row = self._db.execute(
                    "SELECT size, mtime_ns, ctime_ns, ino, dev, sha256 FROM digests WHERE path = ?",
                    (path,),
                ).fetchone()
            except sqlite3.OperationalError:  # locked by another process too long: a miss
                return None
        if row is None or tuple(row[:5]) != stamp:
            return None
        self.hits += 1
        return str(row[5])

    def store(self, path: str, stamp: Stamp, sha256: str) -> None:
        """Record a digest read from a path (blocking; written in batches).

        Args:
            path: The file's path.
            stamp: Its identity while it was read: size, mtime_ns, ctime_ns, inode, device.
            sha256: The hex digest.
        """
        with self._lock:
            self._rows.append((path, *stamp, sha256))
            if len(self._rows) >= _COMMIT_EVERY:
                self._flush()

    def _flush(self) -> None:
        rows, self._rows = self._rows, []
        if not rows or self._db is None:
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?, ?)", rows
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.OperationalError:
            # Locked by another process beyond sqlite's timeout: these digests are only
            # lost to the cache (those files are read again next time), never wrong.
            logger.info("hash cache %s busy: %d digests not saved", self.path, len(rows))


def _check_owner(path: str, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"refusing the hash cache {path}: not a regular file")
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # Windows: no POSIX owner or mode bits to go by
        return
    if st.st_uid != getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ValueError(
            f"refusing the hash cache {path}: owned by another user or writable by others, "
            "so its digests may not be this SDK's (caches are created 0600); delete it"
        )


def check_jobs(jobs: Iterable[Job]) -> None:
    """Refuse ``skip_existing`` for items it cannot match (before any request)."""
    for job in jobs:
        if job.spec is None:  # a skipped or failed directory entry: nothing to compare
            continue
        if job.client_key is None:
            raise ValueError(
                f"skip_existing needs a client_key for every item; item {job.index} "
                f"({_shown(job.source)}) has none (give client_key, or keys_from_paths=True)"
            )
        if not isinstance(job.spec, (PathSource, MemorySource)):
            raise ValueError(
                f"skip_existing cannot compare item {job.index} "
                f"({type(job.spec.origin).__name__} source) without consuming it: pass a path "
                "or bytes"
            )
        if job.options.public:
            raise ValueError(
                "skip_existing cannot tell whether a stored file already has its public "
                "link: mint links separately (files.public_url)"
            )


def _shown(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    return type(source).__name__


@dataclass
class Decision:
    """What :meth:`Existing.check` found: ``unchanged`` (the stored record), or why not."""

    unchanged: File | None = None
    note: str | None = None


class Existing:
    """The destination's records under the batch's keys, and local digests to match."""

    def __init__(self, cache: HashCache | None) -> None:
        self.cache = cache
        self._records: dict[tuple[str, str | None, str], File] = {}
        self._known: dict[int, str] = {}  # job index -> digest served by the cache
        self.pages = 0
        self.hashed = 0
        self.cache_hits = 0
        self._opened = False  # this batch holds the cache open (and closes it)

    async def load(self, api: ApiCalls, jobs: list[Job]) -> None:
        """List each destination once (through ``api``, the batch's rate-limited calls)
        and look the candidates up in the cache."""
        keys: dict[tuple[str, str | None], set[str]] = {}
        for job in jobs:
            if job.spec is not None and job.client_key is not None:
                where = (job.options.space_id, job.options.folder_id)
                keys.setdefault(where, set()).add(job.client_key)
        for (space_id, folder_id), wanted in keys.items():
            # pages() is an async generator (typed as an iterator): close it explicitly.
            pages = cast(AsyncGenerator[list[File], None], api.pages(space_id, folder_id))
            async with contextlib.aclosing(pages):  # closed at once if cancelled mid-listing
                async for page in pages:
                    self.pages += 1
                    for file in page:
                        # A listing is of one folder (or the root) as documented; anything
                        # else it may hold is not in this destination, hence no match.
                        here = file.folder_id == folder_id and file.space_id in (None, space_id)
                        if here and file.client_key in wanted and file.deleted_at is None:
                            self._keep(space_id, folder_id, file.client_key, file)
        if self.cache is not None:
            candidates = [
                job for job in jobs if self._candidate(job) and isinstance(job.spec, PathSource)
            ]
            if candidates:
                self._opened = True
                try:
                    self._known = await run_stoppable(self._prefill, self.cache, candidates)
                except ValueError:  # refused (or failed) to open: nothing to close
                    self._opened = False
                    raise
                self.cache_hits = len(self._known)

    def _keep(self, space_id: str, folder_id: str | None, key: str, file: File) -> None:
        # One live record per key and space is the API's rule (an upload supersedes the
        # older one); if a listing ever shows two, the newest is what resolve returns.
        slot = (space_id, folder_id, key)
        old = self._records.get(slot)
        if old is None or _age(file) >= _age(old):
            self._records[slot] = file

    def _record(self, job: Job) -> File | None:
        assert job.client_key is not None
        return self._records.get((job.options.space_id, job.options.folder_id, job.client_key))

    def _candidate(self, job: Job) -> bool:
        record = self._record(job) if job.client_key is not None else None
        return (
            record is not None
            and job.spec is not None
            and record.size == job.spec.size
            and bool(record.sha256)
        )

    @staticmethod
    def _prefill(stop: threading.Event, cache: HashCache, jobs: list[Job]) -> dict[int, str]:
        cache.open()
        found: dict[int, str] = {}
        for job in jobs:
            if stop.is_set():
                break
            assert job.spec is not None
            path = os.fspath(job.spec.origin)
            try:
                # A walked entry is judged as the walk saw it: never through a symlink.
                st = os.stat(path, follow_symlinks=job.spec.walked is None)
            except OSError:
                continue  # the upload reports it
            if not stat.S_ISREG(st.st_mode):
                continue
            if job.spec.walked is not None and (st.st_dev, st.st_ino) != job.spec.walked:
                continue
            digest = cache.lookup(os.path.abspath(path), _stamp(st))
            if digest is not None:
                found[job.index] = digest
        return found

    async def check(self, job: Job) -> Decision:
        """Whether ``job`` is already stored unchanged (reads its bytes if it must)."""
        assert job.spec is not None
        record = self._record(job)
        if record is None:
            return Decision()
        if record.size != job.spec.size:
            return Decision(note=f"changed (stored {record.size} bytes)")
        if not record.sha256:
            return Decision(note=NO_SHA256)
        digest = self._known.pop(job.index, None)
        if digest is None:
            self.hashed += 1
            if isinstance(job.spec, MemorySource):
                digest = await run_stoppable(_hash_memory, job.spec.origin)
            else:
                digest = await run_stoppable(
                    _hash_path, job.spec.origin, job.spec.walked, self.cache
                )
        if digest == record.sha256.lower():
            return Decision(unchanged=record)
        return Decision(note="changed (other SHA-256)")

    async def aclose(self) -> None:
        """Commit and close the cache (in a worker thread)."""
        if self.cache is not None and self._opened:
            self._opened = False
            await run_stoppable(_close, self.cache)


def _age(file: File) -> float:
    return file.created_at.timestamp() if file.created_at is not None else 0.0


def _close(stop: threading.Event, cache: HashCache) -> None:
    cache.close()


def _hash_memory(stop: threading.Event, origin: Any) -> str:
    import hashlib
    import io

    view = origin.getbuffer() if isinstance(origin, io.BytesIO) else memoryview(origin)
    with view, view.cast("B") as flat:
        start = origin.tell() if isinstance(origin, io.BytesIO) else 0
        h = hashlib.sha256()
        for offset in range(start, len(flat), HASH_CHUNK):
            if stop.is_set():
                raise InterruptedError
            h.update(flat[offset : offset + HASH_CHUNK])
        return h.hexdigest()


def _hash_path(
    stop: threading.Event, origin: Any, walked: tuple[int, int] | None, cache: HashCache | None
) -> str:
    import hashlib

    path = os.fspath(origin)
    # O_NONBLOCK: a path swapped for a FIFO must not block this thread in open().
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = open_entry(path, flags, walked) if walked is not None else os.open(path, flags)
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise OSError(f"{path!r} is not a regular file any more")
        os.set_blocking(fd, True)
        h = hashlib.sha256()
        buf = bytearray(HASH_CHUNK)
        view = memoryview(buf)
        offset = 0
        while True:
            if stop.is_set():
                raise InterruptedError
            n = pread_into(fd, view, offset)
            if n == 0:
                break
            h.update(view[:n])
            offset += n
        digest = h.hexdigest()
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if cache is not None:
        with cache._lock:
            cache.hashed += 1
        # Only a digest of one version of the file is remembered: a file written while it
        # was read gets a digest that matches nothing and is simply read again next time.
        if _stamp(before) == _stamp(after) and offset == before.st_size:
            cache.store(os.path.abspath(path), _stamp(before), digest)
    return digest
