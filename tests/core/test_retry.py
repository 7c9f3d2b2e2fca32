"""The retry rule: what is retried, how long it waits, and that it stops."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from fluidcloud_async import (
    ApiConnectionError,
    ApiTimeoutError,
    AsyncFluidCloud,
    BadRequestError,
    ConflictError,
    RateLimitError,
    RetryEvent,
    ServerError,
    _retry,
)
from fluidcloud_async._exceptions import ClientClosed, ConnectFailed, ExpiredUrlError
from fluidcloud_async._retry import (
    MAX_RETRY_AFTER,
    RETRIED,
    Failure,
    Kind,
    RetryPolicy,
    backoff,
    is_retryable,
    parse_retry_after,
)
from fluidcloud_async._transfer._storage import StoragePolicy, put_with_retries

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
    async with AsyncFluidCloud(API_KEY, base_url=ORIGIN, max_retries=0) as fc:
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

    async with AsyncFluidCloud(API_KEY, base_url=ORIGIN, on_retry=hook) as fc:
        mock.get(f"{ROOT}/quota", status=503)
        mock.get(f"{ROOT}/quota", status=429, headers={"Retry-After": "2"})
        mock.get(f"{ROOT}/quota", payload=QUOTA)
        await fc.quota.usage()
    assert [(e.attempt, e.reason) for e in events] == [(1, "HTTP 503"), (2, "HTTP 429")]
    assert events[1].sleep == 2.0 and events[0].url == f"{ROOT}/quota"


async def test_cancellation_propagates_during_retry_sleep(
    mock: aioresponses, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        started.set()
        await asyncio.sleep(3600)

    monkeypatch.setattr(_retry, "sleep", slow_sleep)
    async with AsyncFluidCloud(API_KEY, base_url=ORIGIN) as fc:
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


# -- the one table, for API calls and storage alike ------------------------------------------


def test_every_failure_has_a_row() -> None:
    assert set(RETRIED) == set(Failure)


@pytest.mark.parametrize(
    ("exc", "retried_for"),
    [
        (RateLimitError("x", status=429, retry_after=1.0), set(Kind)),
        (RateLimitError("x", status=429, retry_after=MAX_RETRY_AFTER + 1), set()),
        (ServerError("x", status=503, headers={"Retry-After": "3600"}), set()),
        (ServerError("x", status=503), {Kind.API, Kind.PUT, Kind.GET}),
        (BadRequestError("x", status=400, code="RequestTimeout"), {Kind.PUT, Kind.GET}),
        (ConflictError("x", status=409), set()),
        (ConnectFailed("x"), set(Kind)),
        (ApiTimeoutError("x"), {Kind.API, Kind.PUT, Kind.GET}),
        (ClientClosed("x"), set()),
        (ExpiredUrlError("x", status=403), set()),
        (OSError("the source failed"), set()),
    ],
)
def test_what_is_retried_where(exc: BaseException, retried_for: set[Kind]) -> None:
    assert {kind for kind in Kind if is_retryable(exc, kind)} == retried_for


async def test_a_hint_above_the_cap_is_not_slept_for_5xx_either(
    client: AsyncFluidCloud, mock: aioresponses, sleeps: SleepRecorder
) -> None:
    mock.get(f"{ROOT}/quota", status=503, headers={"Retry-After": "3600"})
    with pytest.raises(ServerError):
        await client.quota.usage()
    assert sleeps.calls == []


class _Body:
    def __init__(self, error: BaseException | None = None) -> None:
        self.sent = 0
        self.error = error
        self.rolled_back = 0

    async def rollback(self) -> None:
        self.rolled_back += 1


class _FlakyStorage:
    """Answers 503 ``failures`` times, then an ETag."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    async def put(self, url: str, body: Any, **_: Any) -> str | None:
        if self.failures:
            self.failures -= 1
            raise ServerError("storage PUT answered 503", status=503, method="PUT")
        return '"etag"'


SECRET_URL = "https://storage.test/b/k?X-Amz-Signature=secret"


async def test_part_puts_retry_through_the_same_loop_and_hook(
    sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "fluidcloud_async")
    events: list[RetryEvent] = []
    bodies: list[_Body] = []

    def make_body() -> _Body:
        bodies.append(_Body())
        return bodies[-1]

    policy = StoragePolicy(retry=RetryPolicy(max_retries=3, on_retry=events.append))
    etag = await put_with_retries(
        _FlakyStorage(2),
        SECRET_URL,
        make_body,
        length=1,
        content_type=None,
        policy=policy,
        label="part 7",
    )
    assert etag == '"etag"' and len(sleeps.calls) == 2
    assert [b.rolled_back for b in bodies] == [1, 1, 0]  # a fresh body per attempt
    assert [(e.attempt, e.method, e.reason) for e in events] == [
        (1, "PUT", "HTTP 503"),
        (2, "PUT", "HTTP 503"),
    ]
    assert all("secret" not in e.url for e in events)
    assert "retrying storage PUT" in caplog.text and "part 7" in caplog.text
    assert "secret" not in caplog.text


async def test_a_failed_source_is_raised_not_retried(sleeps: SleepRecorder) -> None:
    broken = OSError("disk gone")
    policy = StoragePolicy(retry=RetryPolicy(max_retries=3))
    with pytest.raises(OSError, match="disk gone"):
        await put_with_retries(
            _FlakyStorage(5),
            SECRET_URL,
            lambda: _Body(broken),
            length=1,
            content_type=None,
            policy=policy,
            label="object",
        )
    assert sleeps.calls == []


def test_a_view_and_its_storage_share_one_policy() -> None:
    fc = AsyncFluidCloud(API_KEY, base_url=ORIGIN, max_retries=5)
    view = fc.with_options(max_retries=1)
    assert fc.files._engine().policy.retry == RetryPolicy(max_retries=5)
    assert view.files._engine().policy.retry.attempts == 2
