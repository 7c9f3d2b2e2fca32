"""Throttled progress reporting.

Bytes are counted on every chunk (an integer add); the callback runs at most every
:data:`MIN_INTERVAL` seconds, so a fast upload costs ~10 calls a second whatever its chunk
rate. Values only grow, except that a failed attempt's bytes are subtracted before it is
retried (documented rollback). :meth:`Progress.finish` makes the last call report exactly
the total.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

#: Seconds between two callback calls (at most ~10 a second).
MIN_INTERVAL = 0.1

ProgressCallback = Callable[[int, int], Awaitable[None] | None]


class Progress:
    """Counts bytes sent for one transfer (or a batch) and calls ``callback(sent, total)``."""

    __slots__ = ("_busy", "_callback", "_last", "_parent", "sent", "total")

    def __init__(
        self,
        callback: ProgressCallback | None,
        total: int,
        *,
        parent: Progress | None = None,
    ) -> None:
        self._callback = callback
        self.total = total
        self.sent = 0
        self._parent = parent
        self._last = time.monotonic()
        self._busy = False

    @property
    def active(self) -> bool:
        """Whether anyone listens (else counting can be skipped entirely)."""
        return self._callback is not None or (self._parent is not None and self._parent.active)

    async def add(self, n: int) -> None:
        """``n`` more bytes went out (negative: a failed attempt is rolled back)."""
        self.sent += n
        if self._parent is not None:
            await self._parent.add(n)
        if self._callback is None or self._busy:
            return
        now = time.monotonic()
        if now - self._last >= MIN_INTERVAL or n < 0:
            self._last = now
            await self._emit(max(0, self.sent))

    async def finish(self) -> None:
        """Report exactly the total (the last call)."""
        if self._callback is not None:
            self.sent = self.total
            await self._emit(self.total)

    async def _emit(self, value: int) -> None:
        assert self._callback is not None
        self._busy = True
        try:
            result: Any = self._callback(value, self.total)
            if inspect.isawaitable(result):
                await result
        finally:
            self._busy = False
