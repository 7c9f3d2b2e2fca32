"""Retries over real sockets: injected 429/5xx faults and the documented rate limits."""

from __future__ import annotations

import pytest

from fluidcloud_async import AsyncFluidCloud, RetryEvent, ServerError
from fluidcloud_async.emulator import Emulator
from tests.conftest import RetrySleeps


async def test_injected_429_then_success_honors_retry_after(
    fluidcloud_emulator: Emulator, no_sleep: RetrySleeps
) -> None:
    emu = fluidcloud_emulator
    emu.faults.retry_after = 2
    emu.faults.rate_limit_next_api_requests = 2
    events: list[RetryEvent] = []
    async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url, on_retry=events.append) as fc:
        assert await fc.spaces.list() == []
    assert no_sleep.calls == [2.0, 2.0]
    assert [e.reason for e in events] == ["HTTP 429", "HTTP 429"]


async def test_injected_5xx_retried_for_reads_not_for_creates(
    fluidcloud_emulator: Emulator, no_sleep: RetrySleeps
) -> None:
    emu = fluidcloud_emulator
    async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as fc:
        emu.faults.fail_next_api_requests = 2
        await fc.quota.usage()
        assert len(no_sleep.calls) == 2

        emu.faults.fail_next_api_requests = 1
        with pytest.raises(ServerError):
            await fc.spaces.create("not retried")
        assert await fc.spaces.list() == []  # the failed create created nothing


async def test_random_fault_rate_is_survived(
    fluidcloud_emulator: Emulator, no_sleep: RetrySleeps
) -> None:
    emu = fluidcloud_emulator
    emu.faults.reseed(7)
    emu.faults.api_error_rate = 0.2
    emu.faults.api_429_rate = 0.1
    emu.faults.retry_after = 0.01
    async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url, max_retries=8) as fc:
        emu.faults.api_error_rate = 0.0
        space = await fc.spaces.create("s")
        emu.faults.api_error_rate = 0.2
        for _ in range(30):
            assert (await fc.quota.usage()).bytes_used == 0
            assert [s.id for s in await fc.spaces.list()] == [space.id]
