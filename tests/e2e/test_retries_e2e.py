"""Retries over real sockets: injected 429/5xx faults and the documented rate limits."""

from __future__ import annotations

import pytest

from fluidcloud_async import AsyncFluidCloud, RetryEvent, ServerError
from fluidcloud_async.emulator import Emulator


class Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


async def test_injected_429_then_success_honors_retry_after(
    fluidcloud_emulator: Emulator,
) -> None:
    emu = fluidcloud_emulator
    emu.faults.retry_after = 2
    emu.faults.rate_limit_next_api_requests = 2
    sleep = Recorder()
    events: list[RetryEvent] = []
    async with AsyncFluidCloud(
        emu.api_key, base_url=emu.base_url, _sleep=sleep, on_retry=events.append
    ) as fc:
        assert await fc.spaces.list() == []
    assert sleep.sleeps == [2.0, 2.0]
    assert [e.reason for e in events] == ["HTTP 429", "HTTP 429"]


async def test_injected_5xx_retried_for_reads_not_for_creates(
    fluidcloud_emulator: Emulator,
) -> None:
    emu = fluidcloud_emulator
    sleep = Recorder()
    async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url, _sleep=sleep) as fc:
        emu.faults.fail_next_api_requests = 2
        await fc.quota.usage()
        assert len(sleep.sleeps) == 2

        emu.faults.fail_next_api_requests = 1
        with pytest.raises(ServerError):
            await fc.spaces.create("not retried")
        assert await fc.spaces.list() == []  # the failed create created nothing


async def test_random_fault_rate_is_survived(fluidcloud_emulator: Emulator) -> None:
    emu = fluidcloud_emulator
    emu.faults.reseed(7)
    emu.faults.api_error_rate = 0.2
    emu.faults.api_429_rate = 0.1
    emu.faults.retry_after = 0.01
    async with AsyncFluidCloud(
        emu.api_key, base_url=emu.base_url, max_retries=8, _sleep=Recorder()
    ) as fc:
        emu.faults.api_error_rate = 0.0
        space = await fc.spaces.create("s")
        emu.faults.api_error_rate = 0.2
        for _ in range(30):
            assert (await fc.quota.usage()).bytes_used == 0
            assert [s.id for s in await fc.spaces.list()] == [space.id]
