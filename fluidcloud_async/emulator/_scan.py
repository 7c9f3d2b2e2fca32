"""The emulated virus scan: pending -> clean/infected after ``scan_delay``.

A file is infected when its bytes contain the EICAR test string anywhere, matches
spanning read boundaries included. The scan also fills in ``sha256`` when the client
sent none. Reads stream in a worker thread; nothing is loaded whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading

from ._clock import Clock
from ._db import Database
from ._storage import BinaryReader, ObjectStore, close_after

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
"""The standard antivirus test string: a file that contains it anywhere is scanned
`infected`."""
READ_SIZE = 1024 * 1024
STATUS_FOR = {"clean": "ready", "infected": "blocked", "pending": "draft"}
log = logging.getLogger(__name__)


def digest_and_scan(reader: BinaryReader, stop: threading.Event | None = None) -> tuple[str, bool]:
    """Blocking: (sha256 hex, contains EICAR) of everything ``reader`` yields.

    Setting ``stop`` ends the read loop early (the result is then meaningless).
    """
    sha = hashlib.sha256()
    found = False
    tail = b""
    keep = len(EICAR) - 1
    while (stop is None or not stop.is_set()) and (chunk := reader.read(READ_SIZE)):
        sha.update(chunk)
        if not found:
            window = tail + chunk
            found = EICAR in window
            tail = window[-keep:]
    return sha.hexdigest(), found


async def hash_object(store: ObjectStore, key: str) -> tuple[str, bool]:
    reader = await store.open_reader(key)
    stop = threading.Event()
    work = asyncio.ensure_future(asyncio.to_thread(digest_and_scan, reader, stop))
    try:
        return await asyncio.shield(work)
    finally:
        # A cancelled await leaves the thread reading: stop it, and close only once it
        # has returned (see close_after).
        stop.set()
        await close_after(reader, work)


class Scanner:
    """Owns one task per pending file; :meth:`aclose` cancels and awaits them all."""

    def __init__(self, db: Database, store: ObjectStore, clock: Clock, delay: float | None):
        self.db = db
        self.store = store
        self.clock = clock
        self.delay = delay
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def schedule(self, file_id: str) -> None:
        """Start scanning ``file_id`` (no-op when ``delay`` is None: tests decide)."""
        if self.delay is None or file_id in self._tasks:
            return
        task = asyncio.get_running_loop().create_task(self._run(file_id))
        self._tasks[file_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(file_id, None))

    def resume_pending(self) -> None:
        for row in self.db.all("SELECT id FROM files WHERE scan_status = 'pending'"):
            self.schedule(row["id"])

    async def _run(self, file_id: str) -> None:
        assert self.delay is not None
        await asyncio.sleep(self.delay)
        row = self.db.one("SELECT key, sha256 FROM files WHERE id = ?", (file_id,))
        if row is None:
            return
        try:
            sha, infected = await hash_object(self.store, row["key"])
        except Exception:  # a vanished object must not kill the emulator
            log.exception("scan of %s failed", file_id)
            return
        self.set_result(file_id, "infected" if infected else "clean", sha256=sha)

    def set_result(self, file_id: str, result: str, *, sha256: str | None = None) -> bool:
        """Force the verdict now; False when the file does not exist."""
        if result not in STATUS_FOR:
            raise ValueError(f"scan result must be one of {sorted(STATUS_FOR)}")
        task = self._tasks.pop(file_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        changed = self.db.run(
            "UPDATE files SET scan_status = ?, status = ?, sha256 = COALESCE(sha256, ?),"
            " updated_at = ? WHERE id = ?",
            (result, STATUS_FOR[result], sha256, self.clock.now(), file_id),
        )
        return changed > 0

    async def wait_idle(self) -> None:
        """Wait until every scheduled scan has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
