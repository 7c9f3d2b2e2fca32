"""A client-side limiter of the documented per-key request caps, in one process or a fleet.

The API allows 600 requests a minute per key, of which 300 may start uploads (plus 120
share creations and 30 URL imports). A bulk ingest that simply fires requests gets a storm
of 429s; this limiter keeps a sliding-window log per budget - the exact rule "at most N in
any window" - so a long ingest runs at the cap with (almost) no 429s. Each window is
stretched by a small margin, since the server counts arrivals and we count departures.
When the server still answers 429, every request waits out its Retry-After and the budgets
shrink to 80 %, then recover one step of 10 % per quiet window.

Where the log lives is ``RateLimit.storage``, in the storage-URI convention of the `limits`
library:

* ``memory://`` (the default): one process. The log is the hand-written deque below.
* ``redis://host:6379/0`` (``rediss://``, ``redis+unix://``): every process and host using
  the same key shares one log, kept by `limits`' moving-window storage on `redis.asyncio`
  (the ``[redis]`` extra), and one throttle record (pause end, shrunk scale), so a 429 seen
  by one process slows all of them. Keys are namespaced by a hash of the API key.

Why the in-process log is not `limits`' ``MemoryStorage`` too (measured, 2 shared cores,
Python 3.11, limits 5.8): speed does not decide it (per uncontended acquire: the old
limiter 1.2 us, this one 2.1 us, limits' memory moving window 4.4 us; Redis on loopback
0.57 ms, 0.88 ms for an initiate, i.e. < 1 % of a core at the documented 10 requests/s);
what does is that `limits` counts windows in whole seconds (its ``expiry`` is an ``int``
and Redis' ``EXPIRE`` takes no fractions), while the time-scaled emulator runs (tests and
benchmarks) use 0.5-3 s windows with a 2 % margin, and the deque takes an injected clock.

In Redis the window with its margin is rounded to whole seconds (60 s -> 61 s). A request
counted against two budgets (an initiate: "requests" and "initiate") is checked against
both, then takes one slot in each in one Lua call (``_TAKE_ALL``: limits' moving-window
check and push for several lists at once), one Redis call at a time per process, so a lost
race between processes costs a retry a few ms later, never a slot or a cap. Taken budget
by budget, a request could hold a "requests" slot while another process won the last
"initiate" one; the slot was wasted, and in the fleet benchmark (3 processes on one key,
20 s windows, 300 files = exactly 5 windows of budget) one wasted slot cost a window: 78 %
of the cap in 4 of 9 runs, against 97 % in 5 of 5 runs with the atomic take (0 429s in
600 requests either way; three in-memory limiters: 66-78 % and 5.7-7.4 % 429s).

The limiter wraps the API transport as an attempt hook (:meth:`RateLimiter.around`), so
every attempt, retries included, passes it, and storage traffic, which these caps do not
cover, is never slowed. One limiter per client and ``RateLimit`` is kept by the client
(:func:`rate_limiter`) and closed with it, which closes its Redis connections.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import anyio

from ._exceptions import ClientClosed, RateLimitError
from ._validate_args import require_fraction, require_positive_int, require_seconds

if TYPE_CHECKING:
    import redis.asyncio
    from limits.aio.storage import RedisStorage

    from ._transport import Transport

#: Fraction added to every window (arrival-time jitter between us and the server).
WINDOW_MARGIN = 0.02
#: Budgets shrink to this fraction per 429, down to MIN_SCALE; they recover by
#: RECOVERY_STEP per quiet window after the pause.
SHRINK = 0.8
MIN_SCALE = 0.25
RECOVERY_STEP = 0.1
REDIS_SCHEMES = ("redis", "rediss", "redis+unix")
KEY_PREFIX = "fluidcloud_async"

_BUDGETS = ("requests", "initiate", "shares", "imports")


@dataclass(frozen=True)
class RateLimit:
    """Request budgets per API key over ``window`` seconds (the documented caps by default).

    ``window=1.0`` turns "per minute" into "per second", matching an emulator run with
    ``rate_limit_time_scale=60``. ``share=0.5`` spends only half of each budget (leaving the
    rest to another client of the same key). ``storage="redis://host:6379/0"`` shares the
    budgets with every process using the same key and storage (needs the ``[redis]``
    extra); all of them should use the same caps and window.
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
    """Seconds the budgets count over."""
    share: float = 1.0
    """Fraction of each budget this client may use (0 < share <= 1)."""
    storage: str = field(default="memory://", repr=False)
    """Where the request log lives: ``memory://`` or a ``redis://`` URI (limits' convention)."""

    def __post_init__(self) -> None:
        for name in _BUDGETS:
            require_positive_int(getattr(self, name), f"RateLimit.{name}")
        require_seconds(self.window, "RateLimit.window")
        require_fraction(self.share, "RateLimit.share")
        scheme = _scheme(self.storage)
        if scheme == "memory":
            return
        if scheme not in REDIS_SCHEMES:
            raise ValueError(
                f"RateLimit.storage must be memory:// or redis://..., got a {scheme}:// URI"
            )
        if round(self.window * (1 + WINDOW_MARGIN)) < 1:
            raise ValueError("a Redis-backed RateLimit counts whole seconds: window must be >= 1")
        missing = [m for m in ("limits", "redis") if importlib.util.find_spec(m) is None]
        if missing:
            raise ValueError(
                f"RateLimit(storage={scheme}://...) needs {' and '.join(missing)}: "
                "pip install 'fluidcloud-async[redis]'"
            )

    def __repr__(self) -> str:
        caps = ", ".join(f"{name}={getattr(self, name)}" for name in _BUDGETS)
        return (
            f"RateLimit({caps}, window={self.window!r}, share={self.share!r}, "
            f"storage={_redact(self.storage)!r})"
        )

    def caps(self) -> dict[str, int]:
        """The full budgets per window (before ``share``)."""
        return {name: getattr(self, name) for name in _BUDGETS}


def _scheme(uri: str) -> str:
    if not isinstance(uri, str) or "://" not in uri:
        raise ValueError(f"RateLimit.storage must be a URI like memory:// or redis://, got {uri!r}")
    return uri.split("://", 1)[0].lower().removeprefix("async+")


def _redact(uri: str) -> str:
    """The storage URI without its password (it may sit in logs and reprs)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


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


def effective_scale(paused_until: float, scale: float, window: float, now: float) -> float:
    """The budgets' scale now: ``scale`` during the pause, then one recovery step per quiet
    window. Derived from the last 429 alone, so a shared store needs no recovery writes."""
    if scale >= 1.0 or now < paused_until:
        return scale
    return min(1.0, scale + RECOVERY_STEP * math.floor((now - paused_until) / window))


class Store(Protocol):
    """Where the request logs and the throttle record live."""

    def now(self) -> float:
        """The store's clock (seconds)."""

    async def take(self, wanted: Sequence[tuple[str, int, int]]) -> float:
        """Log one request in every ``(bucket, cap, full_cap)`` if each has fewer than
        ``cap`` entries in the window; 0.0 if taken, else seconds to wait first."""

    async def throttle(self) -> tuple[float, float]:
        """``(paused_until, scale)`` as last written by :meth:`set_throttle`."""

    async def set_throttle(self, paused_until: float, scale: float) -> None:
        """Record a 429: pause everyone until ``paused_until`` with budgets at ``scale``."""

    async def aclose(self) -> None:
        """Release connections."""


class MemoryStore:
    """One process: a deque of send times per budget (the exact sliding-window log)."""

    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._logs: dict[str, deque[float]] = {}
        self._paused_until = float("-inf")
        self._scale = 1.0

    def now(self) -> float:
        return self._clock()

    async def take(self, wanted: Sequence[tuple[str, int, int]]) -> float:
        # No await between the check and the append: atomic across budgets in one loop.
        now = self._clock()
        wait = 0.0
        for bucket, cap, _full in wanted:
            log = self._logs.setdefault(bucket, deque())
            while log and log[0] <= now - self._window:
                log.popleft()
            if len(log) >= cap:
                wait = max(wait, log[len(log) - cap] + self._window - now)
        if wait > 0:
            return wait
        for bucket, _cap, _full in wanted:
            self._logs[bucket].append(now)
        return 0.0

    async def throttle(self) -> tuple[float, float]:
        return self._paused_until, self._scale

    async def set_throttle(self, paused_until: float, scale: float) -> None:
        self._paused_until, self._scale = paused_until, scale

    async def aclose(self) -> None:
        return None


#: Takes one slot in each of the moving-window logs KEYS (caps ARGV[3..]), or none: limits'
#: ``acquire_moving_window`` check and push, for several budgets in one atomic call.
_TAKE_ALL = """
local now = tonumber(ARGV[1])
local expiry = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
    local entry = redis.call('lindex', key, tonumber(ARGV[2 + i]) - 1)
    if entry and tonumber(entry) >= now - expiry then
        return 0
    end
end
for i, key in ipairs(KEYS) do
    redis.call('lpush', key, now)
    redis.call('ltrim', key, 0, tonumber(ARGV[2 + i]) - 1)
    redis.call('expire', key, expiry)
end
return 1
"""


class RedisStore:
    """A fleet: `limits`' moving-window log in Redis, plus a throttle hash beside it.

    Connections are opened lazily in the running loop and closed by :meth:`aclose`.
    Times are wall-clock (``time.time``, as `limits` uses): hosts need synchronised clocks.
    """

    def __init__(self, uri: str, api_key: str, window: float) -> None:
        self._uri = uri.removeprefix("async+")
        # Whole seconds: limits' expiry is an int and Redis' EXPIRE takes no fractions.
        self._expiry = max(1, round(window * (1 + WINDOW_MARGIN)))
        digest = hashlib.sha256(b"fluidcloud-ratelimit\0" + api_key.encode()).hexdigest()[:32]
        self._prefix = f"{KEY_PREFIX}:{digest}"
        self._throttle_key = f"{self._prefix}:throttle"
        self._redis: redis.asyncio.Redis | None = None
        self._storage: RedisStorage | None = None
        self._take_all: Any = None
        # One Redis call at a time per process: tasks racing each other between the check
        # and the take of a two-budget request wasted slots (measured: 9 of 60 in a window),
        # and a call that has to open a new connection would stamp its entry late.
        self._lock = anyio.Lock()
        self._closed = False
        self._warm = False

    @property
    def expiry(self) -> int:
        """The window in Redis, in whole seconds."""
        return self._expiry

    def now(self) -> float:
        return time.time()

    def _connect(self) -> tuple[redis.asyncio.Redis, RedisStorage]:
        if self._closed:  # a late request would otherwise reopen connections nobody closes
            raise ClientClosed("the client is closed; create a new AsyncFluidCloud")
        if self._redis is None or self._storage is None:
            # Imported here: the [redis] extra is optional and memory:// needs neither.
            import redis.asyncio
            from limits.aio.storage import RedisStorage

            self._redis = redis.asyncio.Redis.from_url(self._uri.replace("redis+unix", "unix"))
            # limits uses our pool, so one aclose() releases every connection.
            self._storage = RedisStorage(
                "async+redis://",
                implementation="redispy",
                key_prefix=self._prefix,
                connection_pool=self._redis.connection_pool,  # type: ignore[arg-type]
            )
            self._take_all = self._redis.register_script(_TAKE_ALL)
        return self._redis, self._storage

    async def take(self, wanted: Sequence[tuple[str, int, int]]) -> float:
        async with self._lock:
            return await self._take(wanted)

    async def _take(self, wanted: Sequence[tuple[str, int, int]]) -> float:
        _redis, storage = self._connect()
        if not self._warm:
            # limits stamps an entry with time.time() before its call reaches Redis; the
            # first call also connects and loads the Lua scripts (100s of ms under load),
            # and an entry stamped that early expires early: one 429 per run, measured.
            await storage.get_moving_window("warm-up", 1, 1)
            await self._take_all(keys=[f"{self._prefix}:warm-up"], args=[time.time(), 1, 1])
            self._warm = True
        # Check every budget against this client's (shared, shrunk) cap first...
        windows = [await storage.get_moving_window(b, cap, self._expiry) for b, cap, _ in wanted]
        now = time.time()
        wait = 0.0
        for (_bucket, cap, _full), (oldest, count) in zip(wanted, windows, strict=True):
            if count >= cap:
                wait = max(wait, float(oldest) + self._expiry - now)
        if wait > 0:
            # Jittered: every waiting task of every process would otherwise wake at the same
            # instant and queue up on Redis, delaying the winners' sends past the margin.
            return wait + random.random() * 0.005
        # ...then take one slot in every budget at once, each against the key's full cap (the
        # lists are always trimmed to the same length, so clients with different shares keep
        # one consistent log). Taken one by one, a slot held while another process won the
        # other budget's last slot was wasted (see the module notes).
        keys = [f"{self._prefix}:{bucket}" for bucket, _cap, _full in wanted]
        caps = [full for _bucket, _cap, full in wanted]
        if not await self._take_all(keys=keys, args=[time.time(), self._expiry, *caps]):
            return 0.001 + random.random() * 0.004  # lost a race, nothing taken: look again
        return 0.0

    async def throttle(self) -> tuple[float, float]:
        client, _storage = self._connect()
        async with self._lock:
            until, scale = await client.hmget(self._throttle_key, ["until", "scale"])
        if until is None or scale is None:
            return float("-inf"), 1.0
        return float(until), float(scale)

    async def set_throttle(self, paused_until: float, scale: float) -> None:
        client, _storage = self._connect()
        # Last writer wins: 429s seen together by several processes carry near-equal values.
        await client.hset(self._throttle_key, mapping={"until": paused_until, "scale": scale})
        # Kept until the budgets are fully recovered, then Redis forgets it.
        steps = math.ceil((1.0 - scale) / RECOVERY_STEP) + 1
        ttl = paused_until - time.time() + steps * self._expiry
        await client.pexpire(self._throttle_key, max(1, math.ceil(ttl * 1000)))

    async def aclose(self) -> None:
        self._closed = True
        redis, self._redis, self._storage = self._redis, None, None
        if redis is not None:
            await redis.aclose()


class RateLimiter:
    """Waits before each API request until every budget it counts against has room."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        api_key: str = "",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.limit = limit
        self._sleep = sleep
        self._caps = limit.caps()
        self._store: Store
        if _scheme(limit.storage) == "memory":
            self._window = limit.window * (1 + WINDOW_MARGIN)
            self._store = MemoryStore(self._window, clock)
        else:
            store = RedisStore(limit.storage, api_key, limit.window)
            self._window = float(store.expiry)
            self._store = store
        self.waited = 0.0
        """Total seconds requests spent waiting here (for reports)."""
        self.throttled_count = 0
        """429s the server still sent (to this process)."""

    budgets = staticmethod(budgets)

    async def scale(self) -> float:
        """The budgets' current scale (1.0 unless the server answered 429 lately)."""
        paused_until, scale = await self._store.throttle()
        return effective_scale(paused_until, scale, self._window, self._store.now())

    async def acquire(self, method: str, path: str) -> None:
        """Return once the request may be sent (and count it)."""
        buckets = budgets(method, path)
        while True:  # bounded: each pass either returns or sleeps until a slot frees up
            paused_until, scale = await self._store.throttle()
            now = self._store.now()
            wait = paused_until - now
            if wait <= 0:
                scale = effective_scale(paused_until, scale, self._window, now)
                wanted = [
                    (b, max(1, int(self._caps[b] * self.limit.share * scale)), self._caps[b])
                    for b in buckets
                ]
                wait = await self._store.take(wanted)
                if wait <= 0:
                    return
            self.waited += wait
            await self._sleep(wait)

    async def throttled(self, retry_after: float | None) -> None:
        """The server answered 429: pause everyone for Retry-After and shrink the budgets."""
        self.throttled_count += 1
        paused_until, scale = await self._store.throttle()
        now = self._store.now()
        current = effective_scale(paused_until, scale, self._window, now)
        until = max(paused_until, now + (retry_after or 1.0))
        await self._store.set_throttle(until, max(MIN_SCALE, current * SHRINK))

    async def around(self, method: str, path: str, send: Callable[[], Awaitable[Any]]) -> Any:
        """The transport's attempt hook: wait for room, send, and learn from a 429."""
        await self.acquire(method, path)
        try:
            return await send()
        except RateLimitError as exc:
            await self.throttled(exc.retry_after)
            raise

    async def aclose(self) -> None:
        """Close the store's connections (Redis); the client calls this when it closes."""
        await self._store.aclose()


def rate_limiter(transport: Transport, limit: RateLimit) -> RateLimiter:
    """The client's limiter for ``limit``: concurrent ingests through one client (and its
    ``with_options`` copies) share the key's budget instead of each spending all of it."""
    api_key = transport.settings.api_key
    return transport.sessions.resource(
        ("rate_limit", limit), lambda: RateLimiter(limit, api_key=api_key)
    )
