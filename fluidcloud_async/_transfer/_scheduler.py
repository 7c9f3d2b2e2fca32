"""Bounded-concurrency part scheduling over one shared pool of part slots.

A :class:`SlotPool` is shared by every file of an upload or a batch: the slot (and the read
buffers that come with it) is taken *before* a part is read and given back when its PUT
has finished, so the memory in use is bounded by the slot count, never by file sizes or
file counts. Parts of one file run in an anyio task group: the first part that fails for
good cancels its siblings at once, and a cancelled caller cancels them all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import anyio

from ._body import BUFFERS_PER_BODY
from ._buffers import CHUNK, BufferPool
from ._plan import Part

T = TypeVar("T")


class SlotPool:
    """``slots`` parts in flight at most, across every file that shares the pool."""

    def __init__(self, slots: int, *, chunk_size: int = CHUNK) -> None:
        if slots < 1:
            raise ValueError("a slot pool needs at least one slot")
        self.slots = slots
        self._semaphore = anyio.Semaphore(slots)
        self.buffers = BufferPool(chunk_size, keep=slots * BUFFERS_PER_BODY)

    async def acquire(self) -> None:
        await self._semaphore.acquire()

    def release(self) -> None:
        self._semaphore.release()


class PartsFailed(Exception):
    """Some parts failed for good; the others were cancelled."""

    def __init__(self, failures: dict[int, BaseException]) -> None:
        first = failures[min(failures)]
        super().__init__(str(first))
        self.failures = failures
        self.first = first


async def run_parts(
    parts: Sequence[Part],
    send: Callable[[Part, Any], Awaitable[T]],
    pool: SlotPool,
    *,
    prepare: Callable[[Part], Awaitable[Any]] | None = None,
) -> dict[int, T]:
    """``send(part, prepared)`` for every part, at most ``pool.slots`` at once (shared).

    ``prepare`` (sequential sources) runs in part order in this task once the part's slot
    is held. Returns results by part number; raises :class:`PartsFailed` when any part
    failed (after cancelling the rest).
    """
    results: dict[int, T] = {}
    failures: dict[int, BaseException] = {}

    async def one(part: Part, prepared: Any) -> None:
        try:
            results[part.number] = await send(part, prepared)
        except Exception as exc:
            failures[part.number] = exc
            tg.cancel_scope.cancel()
        finally:
            pool.release()

    async with anyio.create_task_group() as tg:
        for part in parts:
            await pool.acquire()
            try:
                prepared = await prepare(part) if prepare is not None else None
            except Exception as exc:
                pool.release()
                failures[part.number] = exc
                tg.cancel_scope.cancel()
                break
            except BaseException:
                pool.release()
                raise
            tg.start_soon(one, part, prepared)
    if failures:
        raise PartsFailed(failures)
    return results
