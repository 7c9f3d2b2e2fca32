"""The emulator's documented per-key rate limits (time-scaled) against the SDK's retries."""

from __future__ import annotations

import pytest

from fluidcloud_async import AsyncFluidCloud, RateLimitError, RetryEvent
from fluidcloud_async.emulator import Emulator, EmulatorConfig
from tests.conftest import RetrySleeps


@pytest.fixture
def fluidcloud_emulator_config() -> EmulatorConfig:
    # Documented limits, with time scaled 60x: "600 per minute" becomes 600 per second.
    return EmulatorConfig(rate_limits=True, rate_limit_time_scale=60.0, rate_limit_default=20)


async def test_documented_rate_limit_is_honored(fluidcloud_emulator: Emulator) -> None:
    emu = fluidcloud_emulator
    events: list[RetryEvent] = []
    async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url, on_retry=events.append) as fc:
        for _ in range(40):
            await fc.quota.usage()
    assert events, "the budget of 20 per (scaled) minute must have been hit"
    assert all(e.reason == "HTTP 429" and 0 < e.sleep <= 1.0 for e in events)


async def test_rate_limit_error_when_retries_exhausted(
    fluidcloud_emulator: Emulator, no_sleep: RetrySleeps
) -> None:
    emu = fluidcloud_emulator
    emu.faults.rate_limit_next_api_requests = 5
    async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url, max_retries=1) as fc:
        with pytest.raises(RateLimitError) as info:
            await fc.quota.usage()
    assert info.value.retry_after is not None
