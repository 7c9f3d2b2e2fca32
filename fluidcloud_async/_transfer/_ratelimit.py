"""A client-side limiter of the documented per-key request caps.

The API allows 600 requests a minute per key, of which 300 may start uploads (plus 120
share creations and 30 URL imports). A bulk ingest that simply fires requests gets a storm
of 429s; this limiter keeps a sliding-window log per budget - the exact rule "at most N in
any window" - so a long ingest runs at the cap with (almost) no 429s. Each window is
stretched by a small margin, since the server counts arrivals and we count departures.
When the server still answers 429 (another process shares the key), every request waits
out its Retry-After and the budgets shrink, then recover one step per quiet window.

It plugs into the API transport by subclassing it (see :class:`LimitedTransport`), so
storage traffic, which these caps do not cover, is never slowed.
"""

from __future__ import annotations

import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from yarl import URL

from .._exceptions import RateLimitError
from .._transport import Transport

#: Fraction added to every window (arrival-time jitter between us and the server).
WINDOW_MARGIN = 0.02


@dataclass(frozen=True)
class RateLimit:
    """Request budgets per API key over ``window`` seconds (the documented caps by default).

    ``window=1.0`` turns "per minute" into "per second", matching an emulator run with
    ``rate_limit_time_scale=60``.
    """

    requests: int = 600
    """Every API request."""
    initiate: int = 300
    """``POST /uploads/initiate``."""
    shares: int = 120
    """``POST /shares`` (public links)."""
    imports: int = 30
    """``POST /uploads/import-url``."""
    window: float = 60.0

    def __post_init__(self) -> None:
        for name in ("requests", "initiate", "shares", "imports"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RateLimit.{name} must be an int >= 1, got {value!r}")
        if not self.window > 0:
            raise ValueError(f"RateLimit.window must be > 0, got {self.window!r}")


class RateLimiter:
    """Waits before each API request until every budget it counts against has room."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.limit = limit
        self._clock = clock
        self._sleep = sleep
        self._window = limit.window * (1 + WINDOW_MARGIN)
        self._logs: dict[str, deque[float]] = {}
        self._caps = {
            "requests": limit.requests,
            "initiate": limit.initiate,
            "shares": limit.shares,
            "imports": limit.imports,
        }
        self._scale = 1.0
        self._paused_until = 0.0
        self._last_429 = float("-inf")
        self.waited = 0.0
        """Total seconds requests spent waiting here (for reports)."""
        self.throttled_count = 0
        """429s the server still sent."""

    @staticmethod
    def budgets(method: str, path: str) -> tuple[str, ...]:
        """The budgets a request counts against."""
        if method == "POST":
            if path.endswith("/uploads/initiate"):
                return ("requests", "initiate")
            if path.endswith("/uploads/import-url"):
                return ("requests", "imports")
            if path.endswith("/shares"):
                return ("requests", "shares")
        return ("requests",)

    def _wait_for(self, buckets: tuple[str, ...], now: float) -> float:
        self._recover(now)
        wait = self._paused_until - now
        for bucket in buckets:
            log = self._logs.setdefault(bucket, deque())
            while log and log[0] <= now - self._window:
                log.popleft()
            cap = max(1, int(self._caps[bucket] * self._scale))
            if len(log) >= cap:
                wait = max(wait, log[len(log) - cap] + self._window - now)
        return wait

    def _recover(self, now: float) -> None:
        if self._scale < 1.0 and now - self._last_429 >= self._window:
            self._scale = min(1.0, self._scale + 0.1)
            self._last_429 = now  # one step per quiet window

    async def acquire(self, method: str, path: str) -> None:
        """Return once the request may be sent (and count it)."""
        buckets = self.budgets(method, path)
        while True:  # bounded: each pass either returns or sleeps until a slot frees up
            now = self._clock()
            wait = self._wait_for(buckets, now)
            if wait <= 0:
                for bucket in buckets:
                    self._logs[bucket].append(now)
                return
            self.waited += wait
            await self._sleep(wait)

    def throttled(self, retry_after: float | None) -> None:
        """The server answered 429: pause everyone for Retry-After and shrink the budgets."""
        now = self._clock()
        self.throttled_count += 1
        self._paused_until = max(self._paused_until, now + (retry_after or 1.0))
        self._scale = max(0.25, self._scale * 0.8)
        self._last_429 = self._paused_until  # recovery starts once the pause is over


class LimitedTransport(Transport):
    """The API transport with every attempt (retries included) passing the limiter."""

    def __init__(self, base: Transport, limiter: RateLimiter) -> None:
        super().__init__(base.options, base.sessions)
        self.limiter = limiter

    def with_options(self, **changes: Any) -> Transport:
        return LimitedTransport(super().with_options(**changes), self.limiter)

    async def _send(self, method: str, url: URL, json: Any, attempt: int) -> Any:
        await self.limiter.acquire(method, url.path)
        try:
            return await super()._send(method, url, json, attempt)
        except RateLimitError as exc:
            self.limiter.throttled(exc.retry_after)
            raise


_shared: weakref.WeakKeyDictionary[Any, dict[tuple[str, RateLimit], RateLimiter]] = (
    weakref.WeakKeyDictionary()
)


def limiter_for(transport: Transport, limit: RateLimit) -> RateLimiter:
    """One limiter per (client session, API key, budgets): concurrent ingests through the
    same client share the key's budget instead of each spending all of it."""
    per_holder = _shared.setdefault(transport.sessions, {})
    key = (transport.options.api_key, limit)
    if key not in per_holder:
        per_holder[key] = RateLimiter(limit)
    return per_holder[key]
