"""The client-side limiter: sliding windows per budget, and backing off after a 429."""

from __future__ import annotations

import pytest

from fluidcloud_async import RateLimit
from fluidcloud_async._ratelimit import WINDOW_MARGIN, RateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _limiter(limit: RateLimit) -> tuple[RateLimiter, FakeTime]:
    t = FakeTime()
    return RateLimiter(limit, clock=t.clock, sleep=t.sleep), t


async def test_sliding_window_allows_a_burst_then_paces() -> None:
    limiter, t = _limiter(RateLimit(requests=3, initiate=2, window=1.0))
    sent: list[float] = []
    for _ in range(7):
        await limiter.acquire("GET", "/api/v1/files/x")
        sent.append(t.now)
    window = 1.0 * (1 + WINDOW_MARGIN)
    assert sent[:3] == [1000.0] * 3  # the burst the server allows
    assert sent[3] == pytest.approx(1000.0 + window)
    for i in range(len(sent) - 3):  # never more than 3 in any window
        assert sent[i + 3] - sent[i] >= window - 1e-9


async def test_initiate_counts_against_both_budgets() -> None:
    limiter, t = _limiter(RateLimit(requests=10, initiate=2, window=1.0))
    for _ in range(2):
        await limiter.acquire("POST", "/api/v1/uploads/initiate")
    await limiter.acquire("POST", "/api/v1/uploads/complete")  # other budget: no wait
    assert t.slept == []
    await limiter.acquire("POST", "/api/v1/uploads/initiate")
    assert t.slept and t.slept[0] == pytest.approx(1.0 * (1 + WINDOW_MARGIN))
    assert RateLimiter.budgets("POST", "/api/v1/shares") == ("requests", "shares")
    assert RateLimiter.budgets("POST", "/api/v1/uploads/import-url") == ("requests", "imports")


async def test_429_pauses_and_shrinks_then_recovers() -> None:
    limiter, t = _limiter(RateLimit(requests=10, window=1.0))
    await limiter.throttled(2.5)
    await limiter.acquire("GET", "/x")
    assert t.slept == [pytest.approx(2.5)]
    assert limiter.throttled_count == 1
    for _ in range(7):
        await limiter.acquire("GET", "/x")  # 8 of the shrunken 8 in this window
    await limiter.acquire("GET", "/x")
    assert len(t.slept) == 2  # the 9th had to wait: the budget shrank to 80 %
    t.now += 30.0
    for _ in range(40):  # one recovery step per quiet window
        await limiter.acquire("GET", "/x")
    assert await limiter.scale() == 1.0  # recovered after quiet windows


def test_bad_budgets() -> None:
    with pytest.raises(ValueError, match="requests"):
        RateLimit(requests=0)
    with pytest.raises(ValueError, match="window"):
        RateLimit(window=0)
