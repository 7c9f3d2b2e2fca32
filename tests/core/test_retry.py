"""The retry rule: what is retried, how long it waits, and that it stops."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import aiohttp
import pytest
from aioresponses import aioresponses

from fluidcloud_async import (
    ApiConnectionError,
    ApiTimeoutError,
    AsyncFluidCloud,
    ConflictError,
    RateLimitError,
    RetryEvent,
    ServerError,
)
from fluidcloud_async._retry import MAX_RETRY_AFTER, backoff, parse_retry_after

from .conftest import API_KEY, ORIGIN, ROOT, SleepRecorder

QUOTA = {"bytes_used": 1, "bytes_limit": -1, "links_used": 0, "links_limit": -1}


async def test_retry_after_seconds_is_honored(
    client: AsyncFluidCloud, mock: aioresponses, sleeps: SleepRecorder
) -> None:
    mock.get(f"{ROOT}/quota", status=429, headers={"Retry-After": "7"})
    mock.get(f"{ROOT}/quota", payload=QUOTA)
    assert (await client.quota.usage()).bytes_used == 1
    assert sleeps.calls == [7.0]


async def test_retry_after_http_date_is_honored(
    client: AsyncFluidCloud, mock: aioresponses, sleeps: SleepRecorder
) -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    mock.get(f"{ROOT}/quota", status=429, headers={"Retry-After": format_datetime(when, True)})
    mock.get(f"{ROOT}/quota", payload=QUOTA)
    await client.quota.usage()
    assert len(sleeps.calls) == 1 and 27 <= sleeps.calls[0] <= 30


async def test_retry_after_ms_wins(
    client: AsyncFluidCloud, mock: aioresponses, sleeps: SleepRecorder
) -> None:
    mock.get(f"{ROOT}/quota", status=429, headers={"Retry-After": "2", "retry-after-ms": "1500"})
    mock.get(f"{ROOT}/quota", payload=QUOTA)
    await client.quota.usage()
    assert sleeps.calls == [1.5]


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "12"}) == 12
    assert parse_retry_after({"Retry-After": "0.5"}) == 0.5
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None
    fixed_now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    date = format_datetime(fixed_now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after({"Retry-After": date}, now=fixed_now.timestamp) == 90
    past = format_datetime(fixed_now - timedelta(seconds=90), usegmt=True)
    assert parse_retry_after({"Retry-After": past}, now=fixed_now.timestamp) == 0


async def test_retry_after_above_cap_raises_without_sleeping(
    client: AsyncFluidCloud, mock: aioresponses, sleeps: SleepRecorder
) -> None:
    mock.get(f"{ROOT}/quota", status=429, headers={"Retry-After": str(int(MAX_RETRY_AFTER) + 1)})
    with pytest.raises(RateLimitError):
        await client.quota.usage()
    assert sleeps.calls == []


async def test_429_without_header_backs_off_exponentially(
    client: AsyncFluidCloud, mock: aioresponses, sleeps: SleepRecorder
) -> None:
    for _ in range(4):
        mock.get(f"{ROOT}/quota", status=429)
    with pytest.raises(RateLimitError):
        await client.quota.usage()
    assert len(sleeps.calls) == client.max_retries == 3
    for attempt, slept in enumerate(sleeps.calls, start=1):
        ceiling = min(8.0, 0.5 * 2 ** (attempt - 1))
        assert ceiling / 2 <= slept <= ceiling


def test_backoff_is_jittered_and_capped() -> None:
    values = {backoff(10) for _ in range(20)}
    assert all(4.0 <= v <= 8.0 for v in values) and len(values) > 1


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
async def test_idempotent_requests_retry_5xx(
    client: AsyncFluidCloud, mock: aioresponses, sleeps: SleepRecorder, status: int
) -> None:
    mock.get(f"{ROOT}/quota", status=status)
    mock.get(f"{ROOT}/quota", status=status)
    mock.get(f"{ROOT}/quota", payload=QUOTA)
    await client.quota.usage()
    assert len(sleeps.calls) == 2


async def test_retries_are_bounded(
    client: AsyncFluidCloud, mock: aioresponses, sleeps: SleepRecorder
) -> None:
    mock.get(f"{ROOT}/files/f1", status=503, repeat=True)
    with pytest.raises(ServerError):
        await client.files.get("f1")
    assert len(mock.requests[("GET", next(iter(mock.requests))[1])]) == 4
    assert len(sleeps.calls) == 3


async def test_max_retries_zero(mock: aioresponses, sleeps: SleepRecorder) -> None:
    async with AsyncFluidCloud(API_KEY, base_url=ORIGIN, max_retries=0, _sleep=sleeps) as fc:
        mock.get(f"{ROOT}/quota", status=503)
        with pytest.raises(ServerError):
            await fc.quota.usage()
    assert sleeps.calls == []


@pytest.mark.parametrize(
    ("path", "call"),
    [
        ("/shares", lambda c: c.files.public_url("f1")),
        ("/spaces", lambda c: c.spaces.create("a")),
        ("/folders", lambda c: c.folders.create("a", "s1")),
        ("/uploads/import-url", lambda c: c.uploads.import_url(url="https://x/y", space_id="s")),
    ],
)
async def test_non_idempotent_creates_are_not_retried_on_5xx(
    client: AsyncFluidCloud, mock: aioresponses, sleeps: SleepRecorder, path: str, call: object
) -> None:
    mock.post(ROOT + path, status=503, repeat=True)
    with pytest.raises(ServerError):
        await call(client)  # type: ignore[operator]
    assert sleeps.calls == []
    assert sum(len(v) for v in mock.requests.values()) == 1


async def test_non_idempotent_creates_do_retry_429(
    client: AsyncFluidCloud, mock: aioresponses, sleeps: SleepRecorder
) -> None:
    link = {"id": "sh", "url": "https://raw/s/t", "permission": "view"}
    mock.post(f"{ROOT}/shares", status=429, headers={"Retry-After": "1"})
    mock.post(f"{ROOT}/shares", payload=link)
    assert (await client.files.public_url("f1")).id == "sh"
    assert sleeps.calls == [1.0]


async def test_upload_calls_are_retried_on_5xx(
    client: AsyncFluidCloud, mock: aioresponses, sleeps: SleepRecorder
) -> None:
    ticket = {"file_id": "f", "key": "k", "mode": "single", "upload_url": "https://st/x"}
    mock.post(f"{ROOT}/uploads/initiate", status=502)
    mock.post(f"{ROOT}/uploads/initiate", payload=ticket)
    assert (await client.uploads.initiate(original_name="a", size=1, space_id="s")).key == "k"
    assert len(sleeps.calls) == 1


async def test_409_is_never_retried(
    client: AsyncFluidCloud, mock: aioresponses, sleeps: SleepRecorder
) -> None:
    mock.get(f"{ROOT}/files/f1/download", status=409, payload={"detail": "not ready"}, repeat=True)
    with pytest.raises(ConflictError):
        await client.files.download_url("f1")
    assert sleeps.calls == []


async def test_connection_errors_are_typed_and_retried_for_get(
    client: AsyncFluidCloud, mock: aioresponses, sleeps: SleepRecorder
) -> None:
    mock.get(f"{ROOT}/quota", exception=aiohttp.ServerDisconnectedError())
    mock.get(f"{ROOT}/quota", exception=asyncio.TimeoutError())
    mock.get(f"{ROOT}/quota", payload=QUOTA)
    await client.quota.usage()
    assert len(sleeps.calls) == 2

    mock.get(f"{ROOT}/quota", exception=asyncio.TimeoutError(), repeat=True)
    with pytest.raises(ApiTimeoutError):
        await client.quota.usage()


async def test_dropped_connection_is_not_retried_for_create(
    client: AsyncFluidCloud, mock: aioresponses, sleeps: SleepRecorder
) -> None:
    mock.post(f"{ROOT}/spaces", exception=aiohttp.ServerDisconnectedError(), repeat=True)
    with pytest.raises(ApiConnectionError):
        await client.spaces.create("x")
    assert sleeps.calls == []


async def test_on_retry_hook_reports_attempts(mock: aioresponses, sleeps: SleepRecorder) -> None:
    events: list[RetryEvent] = []

    async def hook(event: RetryEvent) -> None:
        events.append(event)

    async with AsyncFluidCloud(API_KEY, base_url=ORIGIN, on_retry=hook, _sleep=sleeps) as fc:
        mock.get(f"{ROOT}/quota", status=503)
        mock.get(f"{ROOT}/quota", status=429, headers={"Retry-After": "2"})
        mock.get(f"{ROOT}/quota", payload=QUOTA)
        await fc.quota.usage()
    assert [(e.attempt, e.reason) for e in events] == [(1, "HTTP 503"), (2, "HTTP 429")]
    assert events[1].sleep == 2.0 and events[0].url == f"{ROOT}/quota"


async def test_cancellation_propagates_during_retry_sleep(mock: aioresponses) -> None:
    started = asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        started.set()
        await asyncio.sleep(3600)

    async with AsyncFluidCloud(API_KEY, base_url=ORIGIN, _sleep=slow_sleep) as fc:
        mock.get(f"{ROOT}/quota", status=503, repeat=True)
        task = asyncio.create_task(fc.quota.usage())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_cancellation_is_not_retried(
    client: AsyncFluidCloud, mock: aioresponses, sleeps: SleepRecorder
) -> None:
    mock.get(f"{ROOT}/quota", exception=asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await client.quota.usage()
    assert sleeps.calls == []
