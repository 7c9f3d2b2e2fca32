"""Per-key rate limits as sliding-window logs.

A sliding log (timestamps of the accepted requests within the last window) is exact:
a burst of N is allowed, the N+1th waits until the oldest entry leaves the window, and
Retry-After is precisely that wait. Rejected requests are not logged.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence


class RateLimiter:
    """Checks named budgets (requests per minute, scaled) per API key."""

    def __init__(
        self,
        limits: dict[str, int],
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.window = 60.0 / time_scale
        self.time_scale = time_scale
        self._clock = clock
        self._logs: dict[tuple[str, str], deque[float]] = {}

    def hit(self, key_id: str, buckets: Sequence[str]) -> float | None:
        """Record one request; None if allowed, else seconds until it would be."""
        now = self._clock()
        wait = 0.0
        logs: list[deque[float]] = []
        for bucket in buckets:
            log = self._logs.setdefault((key_id, bucket), deque())
            while log and log[0] <= now - self.window:
                log.popleft()
            limit = self.limits[bucket]
            if len(log) >= limit:
                wait = max(wait, log[len(log) - limit] + self.window - now)
            logs.append(log)
        if wait > 0:
            return wait
        for log in logs:
            log.append(now)
        return None

    def headers(self, wait: float, *, exact: bool = False) -> dict[str, str]:
        """``Retry-After`` in whole seconds (at least 1); also ``retry-after-ms`` when the
        time is scaled or ``exact`` asks for it (a fractional injected value)."""
        headers = {"Retry-After": str(max(1, math.ceil(wait)))}
        if exact or self.time_scale != 1.0:
            headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
        return headers
