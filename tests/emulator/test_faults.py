"""Fault knobs and rate limits, observed over real sockets."""

from __future__ import annotations

import asyncio
import io
import time

import aiohttp
import pytest

from fluidcloud_async.emulator import Emulator, EmulatorConfig, Faults

from .conftest import Api


async def test_fail_next_api_requests(api: Api, emu: Emulator) -> None:
    emu.faults.fail_next_api_requests = 2
    emu.faults.fail_next_api_status = 502
    assert (await api.call("GET", "/quota"))[0] == 502
    assert (await api.call("POST", "/spaces", json={"name": "x"}))[0] == 502
    assert (await api.call("GET", "/spaces"))[1]["items"] == []  # the create never ran
    assert emu.stats.faults["api_error"] == 2
    assert emu.stats.count("GET /api/v1/quota", 502) == 1


async def test_injected_429_has_retry_after(api: Api, emu: Emulator) -> None:
    emu.faults.rate_limit_next_api_requests = 1
    emu.faults.retry_after = 3
    status, body, headers = await api.call("GET", "/quota")
    assert status == 429
    assert headers["Retry-After"] == "3"
    assert "retry-after-ms" not in headers
    assert "detail" in body
    assert emu.stats.rate_limited == 1
    assert (await api.call("GET", "/quota"))[0] == 200
    emu.faults.rate_limit_next_api_requests = 1
    emu.faults.retry_after = 0.25
    status, _, headers = await api.call("GET", "/quota")
    assert (status, headers["Retry-After"], headers["retry-after-ms"]) == (429, "1", "250")


async def test_probabilistic_faults_are_seeded() -> None:
    a, b = Faults(seed=3, api_error_rate=0.5), Faults(seed=3, api_error_rate=0.5)
    assert [a.roll(0.5) for _ in range(50)] == [b.roll(0.5) for _ in range(50)]
    a.reset()
    assert a.api_error_rate == 0.0
    assert a.seed == 3


async def test_api_error_rate(api: Api, emu: Emulator) -> None:
    emu.faults.reseed(1)
    emu.faults.api_error_rate = 0.5
    statuses = [(await api.call("GET", "/quota"))[0] for _ in range(40)]
    assert {500, 502, 503} & set(statuses)
    assert 200 in statuses
    emu.faults.api_error_rate = 0.0
    assert (await api.call("GET", "/quota"))[0] == 200


async def test_latency(api: Api, emu: Emulator) -> None:
    emu.faults.latency = 0.2
    started = time.monotonic()
    await api.ok("GET", "/quota")
    assert time.monotonic() - started >= 0.2


async def _ticket(api: Api, size: int) -> dict[str, str]:
    space = await api.space()
    t: dict[str, str] = await api.ok(
        "POST",
        "/uploads/initiate",
        json={"original_name": "a", "size": size, "space_id": space["id"]},
    )
    return t


async def test_storage_drop_closes_the_connection(api: Api, emu: Emulator) -> None:
    data = b"x" * 2_000_000
    t = await _ticket(api, len(data))
    # aiohttp clients resend an idempotent PUT once after a disconnect: drop both tries.
    emu.faults.drop_next_storage_puts = 2
    with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        await api.put(t["upload_url"], data)
    assert emu.stats.faults["storage_drop"] == 2
    assert await emu.ctx.store.stat(t["key"]) is None  # nothing half-written is visible
    # The retry succeeds.
    assert (await api.put(t["upload_url"], data))[0] == 200


async def test_storage_error_then_retry(api: Api, emu: Emulator) -> None:
    t = await _ticket(api, 5)
    emu.faults.fail_next_storage_puts = 2
    for _ in range(2):
        status, text, _ = await api.put(t["upload_url"], b"hello")
        assert status in (500, 503)
        assert "<Error>" in text
    assert (await api.put(t["upload_url"], b"hello"))[0] == 200
    assert emu.stats.storage_puts == 3
    assert emu.stats.storage_puts_ok == 1


async def test_storage_bandwidth_slows_puts_and_gets(api: Api, emu: Emulator) -> None:
    data = b"b" * (1024 * 1024)
    t = await _ticket(api, len(data))
    emu.faults.storage_bandwidth = 4 * 1024 * 1024
    started = time.monotonic()
    assert (await api.put(t["upload_url"], data))[0] == 200
    assert time.monotonic() - started > 0.15
    url = await emu.ctx.store.presign_get(
        t["key"], filename="a", disposition="attachment", content_type=None
    )
    started = time.monotonic()
    async with api.session.get(url) as resp:
        assert await resp.read() == data
    assert time.monotonic() - started > 0.15


async def test_storage_stall_exceeds_client_timeout(api: Api, emu: Emulator) -> None:
    t = await _ticket(api, 5)
    emu.faults.stall_next_storage_puts = 1
    emu.faults.stall_next_seconds = 2.0
    timeout = aiohttp.ClientTimeout(sock_read=0.3)
    with pytest.raises(asyncio.TimeoutError):
        async with api.session.put(
            t["upload_url"],
            data=io.BytesIO(b"hello"),
            timeout=timeout,
            skip_auto_headers=["Content-Type"],
        ) as resp:
            await resp.read()
    # The bytes were stored before the stall, as with a real store answering too late.
    assert await emu.ctx.store.stat(t["key"]) == 5


async def test_dropped_complete_response_then_idempotent_retry(api: Api, emu: Emulator) -> None:
    space = await api.space()
    data = b"payload"
    t = await api.ok(
        "POST",
        "/uploads/initiate",
        json={"original_name": "p", "size": len(data), "space_id": space["id"]},
    )
    assert (await api.put(t["upload_url"], data))[0] == 200
    body = {
        "file_id": t["file_id"],
        "key": t["key"],
        "original_name": "p",
        "size": len(data),
        "space_id": space["id"],
    }
    emu.faults.drop_next_complete_responses = 1
    with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        await api.call("POST", "/uploads/complete", json=body)
    file = await api.ok("POST", "/uploads/complete", json=body)
    assert file["id"] == t["file_id"]
    assert emu.stats.completes == 2
    files = await api.ok("GET", "/files", params={"space_id": space["id"]})
    assert len(files["items"]) == 1


RATE = EmulatorConfig(
    scan_delay=None,
    rate_limits=True,
    rate_limit_time_scale=60.0,  # per minute -> per second
    rate_limit_default=10,
    rate_limit_initiate=3,
)


@pytest.mark.parametrize("emu_config", [RATE])
async def test_rate_limit_default_budget(api: Api, emu: Emulator) -> None:
    statuses = []
    for _ in range(12):
        status, _, headers = await api.call("GET", "/quota")
        statuses.append(status)
    assert statuses[:10] == [200] * 10
    assert statuses[10:] == [429, 429]
    assert headers["Retry-After"] == "1"
    assert 0 < int(headers["retry-after-ms"]) <= 1000
    # Budgets are per key: another tenant is unaffected.
    assert (await api.call("GET", "/quota", key=emu.add_tenant()))[0] == 200
    await asyncio.sleep(int(headers["retry-after-ms"]) / 1000 + 0.05)
    assert (await api.call("GET", "/quota"))[0] == 200
    assert emu.stats.rate_limited == 2


@pytest.mark.parametrize("emu_config", [RATE])
async def test_rate_limit_initiate_bucket(api: Api) -> None:
    space = await api.space()
    body = {"original_name": "a", "size": 1, "space_id": space["id"]}
    statuses = [(await api.call("POST", "/uploads/initiate", json=body))[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert (await api.call("GET", "/quota"))[0] == 200  # other routes still have budget


async def test_unscaled_retry_after_is_whole_seconds() -> None:
    from fluidcloud_async.emulator._ratelimit import RateLimiter

    now = [0.0]
    limiter = RateLimiter({"default": 2}, clock=lambda: now[0])
    assert limiter.hit("k", ["default"]) is None
    now[0] = 30.0
    assert limiter.hit("k", ["default"]) is None
    wait = limiter.hit("k", ["default"])
    assert wait == pytest.approx(30.0)
    assert limiter.headers(0.2) == {"Retry-After": "1"}
    now[0] = 60.5  # the first entry left the window
    assert limiter.hit("k", ["default"]) is None
