"""The shared (Redis) limiter on fakeredis: one budget for several limiters, a 429 seen by
one pauses all, ``share``, key hashing, validation and closing. The real Redis with real
processes is in tests/e2e/test_ratelimit_redis_e2e.py."""

from __future__ import annotations

import time

import fakeredis
import pytest
import redis.asyncio

from fluidcloud_async import AsyncFluidCloud, RateLimit
from fluidcloud_async._exceptions import ClientClosed
from fluidcloud_async._ratelimit import RateLimiter, RedisStore, rate_limiter

URI = "redis://fake:6379/0"
API_KEY = "fck_test_secret-key-0123456789"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> fakeredis.FakeServer:
    """Every Redis client the SDK makes talks to one in-memory server."""
    fake = fakeredis.FakeServer()

    def from_url(url: str, **kwargs: object) -> fakeredis.FakeAsyncRedis:
        return fakeredis.FakeAsyncRedis(server=fake)

    monkeypatch.setattr(redis.asyncio.Redis, "from_url", staticmethod(from_url))
    return fake


def _limiter(**changes: object) -> RateLimiter:
    limit = RateLimit(**{"requests": 4, "initiate": 2, "window": 1.0, "storage": URI, **changes})  # type: ignore[arg-type]
    return RateLimiter(limit, api_key=API_KEY)


async def _count_within(limiter: RateLimiter, method: str, path: str, seconds: float) -> int:
    """How many acquires pass within ``seconds`` (the rest would wait)."""
    count = 0
    deadline = time.monotonic() + seconds
    while True:
        started = time.monotonic()
        await limiter.acquire(method, path)
        if time.monotonic() > deadline or time.monotonic() - started > seconds:
            return count
        count += 1


async def test_limiters_share_one_budget(server: fakeredis.FakeServer) -> None:
    a, b = _limiter(), _limiter()  # two processes' limiters, one key
    try:
        for _ in range(2):
            await a.acquire("GET", "/api/v1/files")
            await b.acquire("GET", "/api/v1/files")
        started = time.monotonic()
        await b.acquire("GET", "/api/v1/files")  # the 5th in the window: waits it out
        assert time.monotonic() - started >= 0.5
        assert b.waited > 0.5
    finally:
        await a.aclose()
        await b.aclose()


async def test_initiate_counts_against_both_shared_budgets(server: fakeredis.FakeServer) -> None:
    a, b = _limiter(), _limiter()
    try:
        await a.acquire("POST", "/api/v1/uploads/initiate")
        await b.acquire("POST", "/api/v1/uploads/initiate")
        await a.acquire("POST", "/api/v1/uploads/complete")  # requests: 3 of 4, no wait
        assert a.waited == b.waited == 0
        started = time.monotonic()
        await a.acquire("POST", "/api/v1/uploads/initiate")  # initiate: 2 of 2 taken
        assert time.monotonic() - started >= 0.5
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_429_in_one_process_pauses_and_shrinks_all(server: fakeredis.FakeServer) -> None:
    a, b = _limiter(requests=10), _limiter(requests=10)
    try:
        await a.throttled(0.4)
        assert await b.scale() == pytest.approx(0.8)
        started = time.monotonic()
        await b.acquire("GET", "/x")
        assert time.monotonic() - started >= 0.35  # b honours a's Retry-After
        assert b.throttled_count == 0 and a.throttled_count == 1
    finally:
        await a.aclose()
        await b.aclose()


async def test_share_takes_only_that_fraction(server: fakeredis.FakeServer) -> None:
    half = _limiter(requests=10, share=0.5)
    try:
        assert await _count_within(half, "GET", "/x", 0.5) == 5
    finally:
        await half.aclose()


async def test_keys_are_namespaced_by_a_hash_of_the_key(server: fakeredis.FakeServer) -> None:
    limiter = _limiter()
    try:
        await limiter.acquire("POST", "/api/v1/uploads/initiate")
        await limiter.throttled(0.01)
    finally:
        await limiter.aclose()
    raw = fakeredis.FakeAsyncRedis(server=server)
    keys = [k.decode() for k in await raw.keys("*")]
    assert {k.rsplit(":", 1)[1] for k in keys} <= {"requests", "initiate", "throttle", "warm-up"}
    assert len({k.rsplit(":", 1)[0] for k in keys}) == 1
    dump = " ".join(keys) + repr([await raw.hgetall(k) for k in keys if k.endswith("throttle")])
    assert API_KEY not in dump and "secret" not in dump
    await raw.aclose()


async def test_client_close_closes_the_redis_connections(server: fakeredis.FakeServer) -> None:
    fc = AsyncFluidCloud(API_KEY, base_url="http://127.0.0.1:9")
    limit = RateLimit(storage=URI)
    limiter = rate_limiter(fc._transport, limit)
    assert rate_limiter(fc.with_options(timeout=5)._transport, limit) is limiter  # one per client
    await limiter.acquire("GET", "/x")
    store = limiter._store
    assert store._redis is not None  # type: ignore[attr-defined]
    await fc.close()
    assert store._redis is None  # type: ignore[attr-defined]
    with pytest.raises(ClientClosed):  # no connection reopened after close
        await limiter.acquire("GET", "/x")


def test_validation_and_repr() -> None:
    with pytest.raises(ValueError, match="share"):
        RateLimit(share=0)
    with pytest.raises(ValueError, match="share"):
        RateLimit(share=1.5)
    with pytest.raises(ValueError, match="storage"):
        RateLimit(storage="memcached://localhost")
    with pytest.raises(ValueError, match="storage"):
        RateLimit(storage="localhost:6379")
    with pytest.raises(ValueError, match="whole seconds"):
        RateLimit(window=0.25, storage=URI)
    text = repr(RateLimit(storage="redis://:hunter2@redis.internal:6379/0"))
    assert "hunter2" not in text and "redis.internal" in text
    assert RateLimit(storage="async+redis://h:1/0").storage == "async+redis://h:1/0"


async def test_a_lost_race_for_one_budget_takes_no_slot_in_the_other(
    server: fakeredis.FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process takes the last initiate slot between this one's check and its take:
    the take fails as a whole, and the requests budget keeps its slot (it used to be held
    and wasted, which cost a window in the fleet benchmark)."""
    a, b = _limiter(), _limiter()
    try:
        await b.acquire("POST", "/api/v1/uploads/initiate")
        await b.acquire("POST", "/api/v1/uploads/initiate")  # initiate: 2 of 2 taken
        store = a._store
        assert isinstance(store, RedisStore)
        _redis, storage = store._connect()
        real = storage.get_moving_window

        async def checked_before_b(key: str, limit: int, expiry: int) -> tuple[float, int]:
            # What A saw before B's last take landed; requests the fuller budget, so a
            # budget-by-budget take would have taken a requests slot first.
            return (0.0, 3) if key == "requests" else (0.0, 1)

        monkeypatch.setattr(storage, "get_moving_window", checked_before_b)
        wait = await store.take([("requests", 4, 4), ("initiate", 2, 2)])
        monkeypatch.setattr(storage, "get_moving_window", real)
        assert 0 < wait < 0.01  # look again shortly
        _oldest, requests = await storage.get_moving_window("requests", 4, store.expiry)
        assert requests == 2  # B's two, none held by A
        await a.acquire("GET", "/api/v1/files")  # the two free requests slots are usable
        await a.acquire("GET", "/api/v1/files")
        _oldest, requests = await storage.get_moving_window("requests", 4, store.expiry)
        assert requests == 4
    finally:
        await a.aclose()
        await b.aclose()
