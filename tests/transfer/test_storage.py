"""The storage request layer against a scripted S3-like server: retry rule, Retry-After,
expiry detection, error parsing, ETags verbatim."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from fluidcloud_async import ApiConnectionError, RateLimitError, ServerError, _retry
from fluidcloud_async._exceptions import NotFoundError
from fluidcloud_async._retry import RetryPolicy
from fluidcloud_async._transfer._io import MemoryBody
from fluidcloud_async._transfer._storage import (
    AiohttpStorage,
    ExpiredUrlError,
    StoragePolicy,
    check_not_expired,
    parse_s3_error,
    put_with_retries,
    scrub,
    url_expiry,
)

from .conftest import serving


def s3(status: int, code: str, message: str, **headers: str) -> web.Response:
    body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return web.Response(status=status, text=body, content_type="application/xml", headers=headers)


class Script:
    def __init__(self) -> None:
        self.answers: list[Any] = []
        self.bodies: list[bytes] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.bodies.append(await request.read())
        answer = self.answers.pop(0) if self.answers else web.Response(headers={"ETag": '"ok"'})
        if answer == "drop":
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError
        return answer  # type: ignore[no-any-return]


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Script]]:
    script = Script()
    app = web.Application()
    app.router.add_put("/{key:.*}", script.handle)
    async with serving(app) as origin:
        yield f"{origin}/bucket/key?X-Amz-Signature=secret%2Fpart", script


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


async def _put(url: str, sleeps: Sleeps, attempts: int = 4) -> str | None:
    data = memoryview(b"x" * 1000)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_retry, "sleep", sleeps)
        async with aiohttp.ClientSession() as session:
            return await put_with_retries(
                AiohttpStorage(session),
                url,
                lambda: MemoryBody(data, None),
                length=1000,
                content_type=None,
                policy=StoragePolicy(retry=RetryPolicy(max_retries=attempts - 1)),
                label="part 1",
            )


async def test_retry_after_and_etag_verbatim(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [
        s3(429, "SlowDown", "Please reduce your request rate.", **{"Retry-After": "3"}),
        s3(503, "SlowDown", "Please reduce your request rate."),
        s3(400, "RequestTimeout", "Your socket connection to the server was not read from"),
        "drop",
        web.Response(headers={"ETag": '"abc-123"'}),
    ]
    sleeps = Sleeps()
    assert await _put(url, sleeps, attempts=6) == '"abc-123"'
    assert sleeps[0] == 3.0  # Retry-After honoured exactly
    # The dropped connection was a reused keep-alive one, which aiohttp re-sends on by
    # itself once; either way every attempt sent the whole body.
    assert 3 <= len(sleeps) <= 4
    assert all(body == b"x" * 1000 for body in script.bodies)  # re-sent in full each time


async def test_attempts_are_bounded(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [s3(500, "InternalError", "boom") for _ in range(10)]
    sleeps = Sleeps()
    with pytest.raises(ServerError) as info:
        await _put(url, sleeps, attempts=3)
    assert info.value.code == "InternalError"
    assert len(script.bodies) == 3
    assert "secret" not in str(info.value)  # the signature never reaches messages


async def test_not_retried(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [s3(404, "NoSuchUpload", "The specified upload does not exist.")]
    with pytest.raises(NotFoundError):
        await _put(url, Sleeps())
    assert len(script.bodies) == 1
    script.answers = [s3(429, "SlowDown", "later", **{"Retry-After": "3600"})]
    with pytest.raises(RateLimitError):  # a wait beyond MAX_RETRY_AFTER is not slept
        await _put(url, Sleeps())


async def test_expired_answer(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [s3(403, "AccessDenied", "Request has expired")]
    with pytest.raises(ExpiredUrlError):
        await _put(url, Sleeps())
    assert len(script.bodies) == 1


async def test_connection_refused_is_typed() -> None:
    with pytest.raises(ApiConnectionError):
        await _put("http://127.0.0.1:9/bucket/key", Sleeps(), attempts=2)


def _amz(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%SZ")


def test_expiry_from_query() -> None:
    issued = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    url = f"https://s3.example/b/k?X-Amz-Date={_amz(issued)}&X-Amz-Expires=600&X-Amz-Signature=x"
    assert url_expiry(url) == issued.timestamp() + 600
    assert url_expiry("https://s3.example/b/k?foo=bar") is None
    old = datetime.now(timezone.utc) - timedelta(hours=2)
    stale = f"https://s3/b/k?X-Amz-Date={_amz(old)}&X-Amz-Expires=60"
    with pytest.raises(ExpiredUrlError):
        check_not_expired(stale)
    recent = f"https://s3/b/k?X-Amz-Date={_amz(old)}&X-Amz-Expires=7000"
    check_not_expired(recent)
    check_not_expired(stale, now=lambda: time.time() - 3 * 3600)


def test_parse_s3_error() -> None:
    body = (
        b"<?xml version='1.0'?><Error><Code>AccessDenied</Code>"
        b"<Message>Request has expired</Message></Error>"
    )
    assert parse_s3_error(body) == ("AccessDenied", "Request has expired")
    assert parse_s3_error(b"<html>oops</html>") == (None, None)


async def test_connection_errors_carry_no_signature(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = ["drop", "drop"]
    with pytest.raises(ApiConnectionError) as info:
        await _put(url, Sleeps(), attempts=1)
    assert "secret" not in str(info.value)
    assert info.value.__cause__ is None  # aiohttp's message may hold the full URL
    assert "?<redacted>" in scrub("PUT http://h/b/k?X-Amz-Signature=secret failed")
    assert "secret" not in scrub("for https://h:9/b/k?X-Amz-Signature=secret&a=b: reset")
