"""Bad input from the server: a real loopback aiohttp server (not the emulator) answers
with broken, surprising or hostile responses.

The contract under test: every public call ends in a value of the documented type or a
:class:`FluidCloudError` subclass (never a raw aiohttp/pydantic/json/yarl exception), and
always within a bounded time (never a hang).
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from aiohttp import web
from pydantic import BaseModel

from fluidcloud_async import (
    ApiConnectionError,
    ApiError,
    ApiTimeoutError,
    AsyncFluidCloud,
    BadRequestError,
    File,
    FluidCloudError,
    Folder,
    Link,
    NotFoundError,
    Preview,
    ProtocolError,
    Quota,
    RateLimitError,
    ServerError,
    Share,
    Space,
    UnprocessableEntityError,
    UploadTicket,
)
from fluidcloud_async._transport import MAX_API_BODY

from .conftest import NoSleep, ScriptedServer

KEY = "fck_test_badinput0123456789"
SID = "11111111-1111-4111-8111-111111111111"
FID = "22222222-2222-4222-8222-222222222222"
FOLDER_ID = "33333333-3333-4333-8333-333333333333"

SPACE = {"id": SID, "name": "space"}
FOLDER = {"id": FOLDER_ID, "name": "folder", "space_id": SID}
FILE = {
    "id": FID,
    "original_name": "a.txt",
    "space_id": SID,
    "scan_status": "clean",
    "status": "ready",
    "size": 3,
}
LINK = {"id": "share-1", "url": "http://raw.test/s/tok", "file_id": FID, "permission": "view"}
SHARE = {"id": "share-1", "file_id": FID, "permission": "view"}
QUOTA = {"bytes_used": 0, "bytes_limit": -1, "links_used": 0, "links_limit": -1}
PREVIEW = {"url": "http://storage.test/p?sig=1", "kind": "image"}
TICKET = {
    "file_id": FID,
    "key": "tenants/t/incoming/s/f/a.txt",
    "mode": "single",
    "upload_url": "http://storage.test/b/k?X-Amz-Signature=1",
}

Call = Callable[[AsyncFluidCloud], Awaitable[Any]]


def _complete(fc: AsyncFluidCloud) -> Awaitable[File]:
    return fc.uploads.complete(file_id=FID, key="k", original_name="a.txt", size=3, space_id=SID)


def _initiate(fc: AsyncFluidCloud) -> Awaitable[UploadTicket]:
    return fc.uploads.initiate(original_name="a.txt", size=3, space_id=SID)


def _import(fc: AsyncFluidCloud) -> Awaitable[File]:
    return fc.uploads.import_url(url="http://source.test/a.txt", space_id=SID)


# name -> (call, model of one item (None: a plain value), a well-formed answer, is a list)
CALLS: dict[str, tuple[Call, type[BaseModel] | None, Any, bool]] = {
    "spaces.create": (lambda fc: fc.spaces.create("n"), Space, SPACE, False),
    "spaces.list": (lambda fc: fc.spaces.list(), Space, [SPACE], True),
    "folders.create": (lambda fc: fc.folders.create("n", SID), Folder, FOLDER, False),
    "folders.rename": (lambda fc: fc.folders.rename(FOLDER_ID, "m"), Folder, FOLDER, False),
    "folders.list": (lambda fc: fc.folders.list(SID), Folder, [FOLDER], True),
    "files.get": (lambda fc: fc.files.get(FID), File, FILE, False),
    "files.resolve": (lambda fc: fc.files.resolve("ck"), File, FILE, False),
    "files.rename": (lambda fc: fc.files.rename(FID, "b.txt"), File, FILE, False),
    "files.restore": (lambda fc: fc.files.restore(FID), File, FILE, False),
    "files.list": (lambda fc: fc.files.list(SID), File, {"items": [FILE]}, True),
    "files.preview": (lambda fc: fc.files.preview(FID), Preview, PREVIEW, False),
    "files.download_url": (lambda fc: fc.files.download_url(FID), None, {"url": "u"}, False),
    "shares.create": (lambda fc: fc.shares.create(FID), Link, LINK, False),
    "shares.list": (lambda fc: fc.shares.list(), Share, [SHARE], True),
    "quota.usage": (lambda fc: fc.quota.usage(), Quota, QUOTA, False),
    "uploads.initiate": (_initiate, UploadTicket, TICKET, False),
    "uploads.complete": (_complete, File, FILE, False),
    "uploads.import_url": (_import, File, FILE, False),
}
OBJECT_CALLS = [name for name, (_, _, _, is_list) in CALLS.items() if not is_list]


def json_answer(body: Any, status: int = 200) -> Callable[[], web.StreamResponse]:
    return lambda: web.json_response(body, status=status)


def raw_answer(
    body: bytes, status: int = 200, content_type: str = "application/json"
) -> Callable[[], web.StreamResponse]:
    return lambda: web.Response(body=body, status=status, content_type=content_type)


@pytest.fixture
async def fc(server: ScriptedServer, no_sleep: NoSleep) -> Any:
    async with AsyncFluidCloud(KEY, base_url=server.origin, timeout=5) as client:
        yield client


async def outcome(call: Call, fc: AsyncFluidCloud) -> Any:
    """Run ``call`` under a hard deadline; a non-SDK exception fails the test with its type."""
    with anyio.fail_after(15):
        try:
            return await call(fc)
        except FluidCloudError as exc:
            return exc
        except Exception as exc:  # the bug this suite exists to catch
            pytest.fail(f"raw {type(exc).__module__}.{type(exc).__name__} escaped: {exc!r}")


# -- sanity: the table's good answers parse, so every failure below is the body's fault ---


@pytest.mark.parametrize("name", list(CALLS))
async def test_well_formed_answers_parse(name: str, server: ScriptedServer, fc: Any) -> None:
    call, model, good, is_list = CALLS[name]
    server.answer(json_answer(good))
    result = await outcome(call, fc)
    if is_list:
        assert isinstance(result, list) and len(result) == 1
        assert isinstance(result[0], model)  # type: ignore[arg-type]
    elif model is None:
        assert result == "u"
    else:
        assert isinstance(result, model)
    assert server.keys_seen() == [KEY]


# -- malformed bodies -----------------------------------------------------------------------

MALFORMED: dict[str, bytes] = {
    "truncated": b'{"id": "x", "name": ',
    "not_json": b"hello, world",
    "trailing_garbage": b'{"id": "x"} {"id": "y"}',
    "html": b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>",
    "invalid_utf8": b'{"id": "\xff\xfe", "name": "\xc3"}',
    "deep_nesting": b"[" * 100_000 + b"]" * 100_000,
    "deep_nesting_unclosed": b'{"a":' * 50_000,
    "string": b'"just a string"',
    "number": b"42",
    "huge_number": b"1e400",
    "true": b"true",
    "nan": b"NaN",
}


@pytest.mark.parametrize("body_name", list(MALFORMED))
@pytest.mark.parametrize("name", list(CALLS))
async def test_malformed_json_is_a_typed_error(
    name: str, body_name: str, server: ScriptedServer, fc: Any
) -> None:
    call, _, _, _ = CALLS[name]
    server.answer(raw_answer(MALFORMED[body_name]))
    result = await outcome(call, fc)
    assert isinstance(result, ProtocolError), result
    assert getattr(result, "status", 200) == 200  # the real status, or none (a shape error)


@pytest.mark.parametrize("name", OBJECT_CALLS)
@pytest.mark.parametrize("body", [b"", b"   \n", b"null", b"[]", b"{}"])
async def test_empty_answers_to_object_calls(
    name: str, body: bytes, server: ScriptedServer, fc: Any
) -> None:
    call, _, _, _ = CALLS[name]
    server.answer(raw_answer(body))
    result = await outcome(call, fc)
    assert isinstance(result, ProtocolError), result


async def test_empty_answers_to_deletes_mean_no_body(server: ScriptedServer, fc: Any) -> None:
    # Deletes document both a 204 and a trashed record; an empty 200 is the former.
    server.answer(raw_answer(b""))
    assert await outcome(lambda c: c.files.delete(FID), fc) is None
    assert await outcome(lambda c: c.folders.delete(FOLDER_ID), fc) is None
    assert await outcome(lambda c: c.shares.revoke("share-1"), fc) is None
    server.answer(lambda: web.Response(status=204))
    assert await outcome(lambda c: c.files.delete(FID), fc) is None


@pytest.mark.parametrize("name", [n for n in OBJECT_CALLS if CALLS[n][1] is not None])
async def test_missing_required_fields(name: str, server: ScriptedServer, fc: Any) -> None:
    call, model, good, _ = CALLS[name]
    assert model is not None
    required = [f for f, info in model.model_fields.items() if info.is_required()]
    assert required, f"{model.__name__} has no required field to drop"
    for field_name in required:
        broken = {k: v for k, v in good.items() if k != field_name}
        server.answer(json_answer(broken))
        result = await outcome(call, fc)
        assert isinstance(result, ProtocolError), (field_name, result)
        assert field_name in str(result)


WRONG_VALUES: list[Any] = [{"nested": [1, {"x": None}]}, [["list"]]]


@pytest.mark.parametrize("name", OBJECT_CALLS)
async def test_wrong_types_in_every_field(name: str, server: ScriptedServer, fc: Any) -> None:
    # No documented field is an object or a list of lists: each replacement must be refused
    # as a contract break (and must not surface as a pydantic ValidationError).
    call, _, good, _ = CALLS[name]
    for field_name in good:
        for wrong in WRONG_VALUES:
            server.answer(json_answer({**good, field_name: wrong}))
            result = await outcome(call, fc)
            assert isinstance(result, ProtocolError), (field_name, wrong, result)


async def test_scalar_type_confusion_is_refused_or_coerced(server: ScriptedServer, fc: Any) -> None:
    # Lax scalars ("3" for 3) may be coerced; what cannot be coerced is a typed error.
    for size, expected in [("3", 3), (3.0, 3), (None, None)]:
        server.answer(json_answer({**FILE, "size": size}))
        result = await outcome(lambda c: c.files.get(FID), fc)
        assert isinstance(result, File) and result.size == expected
    for size in ["three", 3.5, True, -1e400]:
        server.answer(json_answer({**FILE, "size": size}))
        result = await outcome(lambda c: c.files.get(FID), fc)
        if isinstance(result, File):
            # bool -> int coercion is pydantic's lax mode; anything else must not parse.
            assert size is True and result.size == 1
        else:
            assert isinstance(result, ProtocolError)
    server.answer(json_answer({**FILE, "id": 12345}))
    assert isinstance(await outcome(lambda c: c.files.get(FID), fc), ProtocolError)
    server.answer(json_answer({**FILE, "created_at": "yesterday-ish"}))
    assert isinstance(await outcome(lambda c: c.files.get(FID), fc), ProtocolError)


# -- forward compatibility ------------------------------------------------------------------


async def test_unknown_enum_values_and_fields_parse(server: ScriptedServer, fc: Any) -> None:
    server.answer(
        json_answer(
            {
                **FILE,
                "scan_status": "rescanning",
                "status": "archived",
                "brand_new_field": {"anything": [1, 2]},
            }
        )
    )
    file = await outcome(lambda c: c.files.get(FID), fc)
    assert isinstance(file, File)
    assert file.scan_status == "rescanning"
    assert not file.is_clean and not file.is_infected
    assert file.status == "archived"

    server.answer(json_answer({**LINK, "permission": "edit"}))
    link = await outcome(lambda c: c.shares.create(FID), fc)
    assert isinstance(link, Link) and link.permission == "edit"

    server.answer(json_answer({**PREVIEW, "kind": "hologram"}))
    preview = await outcome(lambda c: c.files.preview(FID), fc)
    assert isinstance(preview, Preview) and preview.kind == "hologram"

    server.answer(json_answer({**TICKET, "mode": "streaming"}))
    ticket = await outcome(_initiate, fc)
    assert isinstance(ticket, UploadTicket)
    assert ticket.mode == "streaming" and not ticket.is_multipart


async def test_json_with_a_wrong_content_type_still_parses(server: ScriptedServer, fc: Any) -> None:
    import json

    server.answer(raw_answer(json.dumps(SPACE).encode(), content_type="text/html"))
    space = await outcome(lambda c: c.spaces.create("n"), fc)
    assert isinstance(space, Space) and space.id == SID


# -- error pages and error bodies -----------------------------------------------------------


async def test_html_error_page_from_a_proxy(
    server: ScriptedServer, fc: Any, no_sleep: NoSleep
) -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    server.answer(raw_answer(page, status=502, content_type="text/html"))
    result = await outcome(lambda c: c.quota.usage(), fc)
    assert isinstance(result, ServerError) and result.status == 502
    assert "Bad Gateway" in str(result.detail)
    assert len(server.seen) == 4 and len(no_sleep.calls) == 3  # GET: 1 + 3 retries

    server.seen.clear()
    server.answer(raw_answer(page, status=404, content_type="text/html"))
    result = await outcome(lambda c: c.files.get(FID), fc)
    assert isinstance(result, NotFoundError) and len(server.seen) == 1

    server.answer(raw_answer(page, status=200, content_type="text/html"))
    assert isinstance(await outcome(lambda c: c.quota.usage(), fc), ProtocolError)


@pytest.mark.parametrize(
    "detail",
    [
        [{"loc": 5, "msg": "bad"}],
        [{"loc": "body", "msg": "bad"}],
        [{"loc": None}],
        [{"loc": [{"deep": 1}], "msg": {"nested": True}}],
        ["plain", 3, None],
        [],
        {"message": {"not": "a string"}, "error": 7},
        {"error": None, "code": ["x"]},
        12,
        None,
        "",
        "x" * 100_000,
    ],
)
@pytest.mark.parametrize("status", [400, 404, 422, 500, 599, 418])
async def test_odd_error_details_are_typed(
    detail: Any, status: int, server: ScriptedServer, fc: Any
) -> None:
    server.answer(json_answer({"detail": detail}, status=status))
    result = await outcome(lambda c: c.spaces.create("n"), fc)
    assert isinstance(result, ApiError) and result.status == status
    if status >= 500:
        assert isinstance(result, ServerError)
    elif status == 422:
        assert isinstance(result, UnprocessableEntityError)
    elif status == 400:
        assert isinstance(result, BadRequestError)
    text = str(result)  # rendering the message must not raise either
    assert str(status) in text


async def test_validation_message_keeps_string_locations_whole(
    server: ScriptedServer, fc: Any
) -> None:
    # FastAPI sends loc as a list; a bare string must not be spelled out letter by letter.
    server.answer(json_answer({"detail": [{"loc": "name", "msg": "too long"}]}, status=422))
    result = await outcome(lambda c: c.spaces.create("n"), fc)
    assert isinstance(result, UnprocessableEntityError)
    assert "n.a.m.e" not in result.message
    assert "too long" in result.message


async def test_rate_limit_with_garbage_or_huge_retry_after(
    server: ScriptedServer, fc: Any, no_sleep: NoSleep
) -> None:
    server.answer(
        lambda: web.json_response(
            {"detail": "slow down"}, status=429, headers={"Retry-After": "soon-ish"}
        )
    )
    result = await outcome(lambda c: c.quota.usage(), fc)
    assert isinstance(result, RateLimitError) and result.retry_after is None
    assert len(no_sleep.calls) == 3
    assert all(0 < s <= 8 for s in no_sleep.calls)  # backoff, bounded by BACKOFF_MAX

    no_sleep.calls.clear()
    server.seen.clear()
    server.answer(
        lambda: web.json_response(
            {"detail": "come back tomorrow"}, status=429, headers={"Retry-After": "86400"}
        )
    )
    result = await outcome(lambda c: c.quota.usage(), fc)
    assert isinstance(result, RateLimitError) and result.retry_after == 86400
    assert no_sleep.calls == [] and len(server.seen) == 1  # not slept through


# -- pagination ------------------------------------------------------------------------------


async def test_pagination_contract_breaks(server: ScriptedServer, fc: Any) -> None:
    server.answer(json_answer({"items": [SPACE], "next_cursor": "same"}))
    result = await outcome(lambda c: c.spaces.list(), fc)
    assert isinstance(result, ProtocolError) and "loop" in str(result)

    for body in [{"items": {"a": 1}}, {"results": []}, {"items": [SPACE, "x"]}, {"items": [1]}]:
        server.answer(json_answer(body))
        assert isinstance(await outcome(lambda c: c.spaces.list(), fc), ProtocolError), body


# -- redirects ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_to_another_host_is_not_followed(
    status: int, server: ScriptedServer, other_host: ScriptedServer, fc: Any
) -> None:
    target = other_host.origin + "/api/v1/spaces?X-Amz-Signature=secret-sig"
    server.answer(lambda: web.Response(status=status, headers={"Location": target}))
    for call in (lambda c: c.spaces.list(), lambda c: c.spaces.create("n")):
        result = await outcome(call, fc)
        assert isinstance(result, ProtocolError), result
        assert "another origin" in str(result)
        assert "secret-sig" not in str(result)  # the target's query is redacted
    assert other_host.seen == []
    assert other_host.keys_seen() == []


async def test_redirect_to_another_port_or_scheme_of_the_same_host(
    server: ScriptedServer, other_host: ScriptedServer, fc: Any
) -> None:
    port = other_host.origin.rsplit(":", 1)[1]
    for location in (f"http://127.0.0.1:{port}/api/v1/quota", f"https://127.0.0.1:{port}/x"):
        server.answer(lambda loc=location: web.Response(status=307, headers={"Location": loc}))
        assert isinstance(await outcome(lambda c: c.quota.usage(), fc), ProtocolError)
    assert other_host.seen == []


@pytest.mark.parametrize(
    "location",
    ["http://[::1", "http://example.com:99999/", "http://exa mple.com/", "http://:80/", "::::"],
)
async def test_malformed_redirect_location_is_a_typed_error(
    location: str, server: ScriptedServer, fc: Any
) -> None:
    server.answer(lambda: web.Response(status=302, headers={"Location": location}))
    result = await outcome(lambda c: c.quota.usage(), fc)
    assert isinstance(result, ProtocolError), result


async def test_redirect_without_location_and_redirect_loops(
    server: ScriptedServer, fc: Any
) -> None:
    server.answer(lambda: web.Response(status=302))
    assert isinstance(await outcome(lambda c: c.quota.usage(), fc), ProtocolError)

    server.seen.clear()
    server.answer(lambda: web.Response(status=307, headers={"Location": "/api/v1/quota"}))
    result = await outcome(lambda c: c.quota.usage(), fc)
    assert isinstance(result, ProtocolError) and "redirect" in str(result)
    assert len(server.seen) <= 6  # MAX_REDIRECTS + 1, not an endless chase


async def test_same_origin_redirect_is_followed_with_the_key(
    server: ScriptedServer, fc: Any
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/api/v1/quota":
            return web.Response(status=307, headers={"Location": "/api/v1/moved"})
        return web.json_response(QUOTA)

    server.handler = handler
    quota = await outcome(lambda c: c.quota.usage(), fc)
    assert isinstance(quota, Quota)
    assert [s.path_qs for s in server.seen] == ["/api/v1/quota", "/api/v1/moved"]
    assert server.keys_seen() == [KEY, KEY]


# -- oversized and encoded bodies -----------------------------------------------------------


async def test_declared_oversized_body_is_refused_unread(server: ScriptedServer, fc: Any) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 50 * MAX_API_BODY
        await response.prepare(request)
        try:
            await response.write(b"[" + b" " * 65536)
            await asyncio.sleep(30)  # the client must not wait for the rest
        except (ConnectionError, asyncio.CancelledError):
            pass
        return response

    server.handler = handler
    started = time.monotonic()
    result = await outcome(lambda c: c.spaces.list(), fc)
    assert isinstance(result, ProtocolError) and "exceeds" in str(result)
    assert time.monotonic() - started < 10


async def test_streamed_oversized_body_is_cut_off(server: ScriptedServer, fc: Any) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b" " * (1024 * 1024)
        try:
            for _ in range(MAX_API_BODY // len(chunk) + 8):
                await response.write(chunk)
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            pass
        return response

    server.handler = handler
    result = await outcome(lambda c: c.spaces.list(), fc)
    assert isinstance(result, ProtocolError) and "exceeds" in str(result)


async def test_gzip_bomb_is_cut_off_by_the_decompressed_size(
    server: ScriptedServer, fc: Any
) -> None:
    bomb = gzip.compress(b"[" + b" " * (4 * MAX_API_BODY) + b"]", compresslevel=9)
    assert len(bomb) < MAX_API_BODY // 16  # small on the wire, huge once inflated
    server.answer(
        lambda: web.Response(
            body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )
    )
    result = await outcome(lambda c: c.spaces.list(), fc)
    assert isinstance(result, ProtocolError) and "exceeds" in str(result)


async def test_corrupt_gzip_is_a_typed_error(server: ScriptedServer, fc: Any) -> None:
    server.answer(
        lambda: web.Response(
            body=b"\x1f\x8b\x08\x00garbage-not-deflate" * 10,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
    )
    result = await outcome(lambda c: c.quota.usage(), fc)
    assert isinstance(result, (ApiConnectionError, ProtocolError)), result


async def test_short_body_against_content_length(server: ScriptedServer, fc: Any) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 1000
        await response.prepare(request)
        await response.write(b'{"bytes_used": 0')
        assert request.transport is not None
        request.transport.close()  # the rest never comes
        return response

    server.handler = handler
    result = await outcome(lambda c: c.quota.usage(), fc)
    assert isinstance(result, ApiConnectionError), result


# -- servers that stall, drop or recycle connections ----------------------------------------


async def _never(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("call", "attempts"),
    [(lambda c: c.quota.usage(), 3), (lambda c: c.spaces.create("n"), 1)],
    ids=["GET retried", "POST not retried"],
)
async def test_server_that_never_answers_times_out(
    call: Call, attempts: int, server: ScriptedServer, no_sleep: NoSleep
) -> None:
    server.handler = _never
    async with AsyncFluidCloud(KEY, base_url=server.origin, timeout=0.3, max_retries=2) as fc:
        started = time.monotonic()
        result = await outcome(call, fc)
        elapsed = time.monotonic() - started
    assert isinstance(result, ApiTimeoutError), result
    assert len(server.seen) == attempts
    # attempts * timeout plus slack: bounded, never a hang (liveness, not a benchmark).
    assert elapsed < attempts * 0.3 + 5


async def test_headers_then_a_stalled_body_times_out(
    server: ScriptedServer, no_sleep: NoSleep
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 100
        await response.prepare(request)
        await response.write(b'{"bytes_used"')
        await asyncio.sleep(3600)
        return response

    server.handler = handler
    async with AsyncFluidCloud(KEY, base_url=server.origin, timeout=0.3, max_retries=0) as fc:
        result = await outcome(lambda c: c.quota.usage(), fc)
    assert isinstance(result, ApiTimeoutError), result


async def test_connection_dropped_before_any_answer(
    server: ScriptedServer, fc: Any, no_sleep: NoSleep
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        raise ConnectionResetError("dropped on purpose")

    server.handler = handler
    result = await outcome(lambda c: c.quota.usage(), fc)
    assert isinstance(result, ApiConnectionError), result
    # A GET is safe to resend: 1 + 3 retries. aiohttp itself also resends an idempotent
    # request once after a disconnect, so each attempt may reach the server twice.
    assert 4 <= len(server.seen) <= 8
    server.seen.clear()
    result = await outcome(lambda c: c.spaces.create("n"), fc)
    assert isinstance(result, ApiConnectionError), result
    assert len(server.seen) == 1  # a create might have happened: never resent


async def test_connection_refused_is_typed_and_bounded(no_sleep: NoSleep) -> None:
    # Bind then close a socket: nothing listens on that port any more.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with AsyncFluidCloud(KEY, base_url=f"http://127.0.0.1:{port}", timeout=2) as fc:
        result = await outcome(lambda c: c.spaces.create("n"), fc)
    assert isinstance(result, ApiConnectionError), result
    assert len(no_sleep.calls) == 3  # nothing was sent: even a POST may be retried


async def test_server_closing_idle_keepalive_connections(no_sleep: NoSleep) -> None:
    # keepalive_timeout makes the server close each idle connection after 50 ms; the client
    # pools connections for longer, so most requests below start on a connection the server
    # has already closed (or is closing right now).
    srv = await ScriptedServer().start(keepalive_timeout=0.05)
    srv.answer(lambda: web.json_response(QUOTA))
    outcomes: list[Any] = []
    try:
        async with AsyncFluidCloud(KEY, base_url=srv.origin, timeout=5) as fc:
            for i in range(24):
                await asyncio.sleep(0.03 + 0.005 * (i % 8))  # straddle the 50 ms boundary
                call: Call = (lambda c: c.quota.usage()) if i % 2 else _post_quota
                outcomes.append(await outcome(call, fc))
    finally:
        await srv.close()
    for i, result in enumerate(outcomes):
        if i % 2:
            assert isinstance(result, Quota), (i, result)  # GETs always recover
        else:
            assert isinstance(result, (Quota, ApiConnectionError)), (i, result)


async def _post_quota(fc: AsyncFluidCloud) -> Any:
    # A non-idempotent POST through the transport (never resent after a dropped connection).
    data = await fc._transport.request("POST", "/quota-like")
    return Quota.model_validate(data)


async def test_server_closing_right_after_each_answer(no_sleep: NoSleep) -> None:
    # Worse than an idle timeout: the server answers with keep-alive and then closes the
    # socket a moment later, so the client's pooled connection is dead on reuse.
    srv = await ScriptedServer().start()

    async def handler(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        assert transport is not None
        asyncio.get_running_loop().call_later(0.002, transport.close)
        return web.json_response(QUOTA)

    srv.handler = handler
    try:
        async with AsyncFluidCloud(KEY, base_url=srv.origin, timeout=5) as fc:
            for i in range(40):
                if i % 3 == 0:
                    await asyncio.sleep(0.005)
                result = await outcome(lambda c: c.quota.usage(), fc)
                assert isinstance(result, Quota), (i, result)
    finally:
        await srv.close()


# -- the upload engine against a misbehaving API and storage --------------------------------


def _engine_server(
    server: ScriptedServer, ticket: dict[str, Any], storage: Callable[[], web.StreamResponse]
) -> list[str]:
    """The scripted server plays the API (initiate/complete) and storage (PUTs)."""
    calls: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        calls.append(f"{request.method} {request.path}")
        if request.path.endswith("/uploads/initiate"):
            return web.json_response(ticket)
        if request.path.endswith("/uploads/complete"):
            return web.json_response(FILE)
        await request.read()
        return storage()

    server.handler = handler
    return calls


EXPIRED_XML = "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"


def _storage_url(server: ScriptedServer, n: int = 0) -> str:
    return f"{server.origin}/bucket/k{n}?X-Amz-Signature=sig{n}"


@pytest.mark.parametrize(
    ("ticket_changes", "storage", "expected_puts"),
    [
        ({"upload_url": "http://[::1"}, lambda: web.Response(), 0),
        ({"upload_url": "not a url at all"}, lambda: web.Response(), 0),
        ({"upload_url": "ftp://storage.test/x"}, lambda: web.Response(), 0),
        (
            {},
            lambda: web.Response(
                status=403,
                text=EXPIRED_XML,
            ),
            1,
        ),
        ({}, lambda: web.Response(status=400, text="<html>bad</html>"), 1),
        ({}, lambda: web.Response(status=307, headers={"Location": "http://elsewhere.test/"}), 1),
        ({}, lambda: web.Response(status=200, body=b"\xff" * 100_000), -1),
    ],
)
async def test_upload_engine_with_broken_tickets_or_storage(
    server: ScriptedServer,
    fc: Any,
    ticket_changes: dict[str, Any],
    storage: Callable[[], web.StreamResponse],
    expected_puts: int,
) -> None:
    ticket = {**TICKET, "upload_url": _storage_url(server), **ticket_changes}
    calls = _engine_server(server, ticket, storage)
    result = await outcome(lambda c: c.files.upload(b"abc", SID, name="a.txt"), fc)
    puts = [c for c in calls if c.startswith("PUT")]
    if expected_puts == -1:  # a 200 with an odd body is still a stored object
        assert isinstance(result, (File, FluidCloudError)), result
        return
    assert isinstance(result, FluidCloudError), result
    assert "sig0" not in str(result)  # the presigned URL stays redacted
    assert len(puts) <= max(expected_puts, 1) * 4  # bounded attempts
    assert not any(c.endswith("/uploads/complete") for c in calls)


@pytest.mark.parametrize(
    "part_changes",
    [
        {"part_urls": None},
        {"part_size": 0},
        {"part_urls": [{"part_number": 2, "url": "u"}]},
        {"upload_id": None},
    ],
)
async def test_upload_engine_refuses_self_contradicting_multipart_tickets(
    server: ScriptedServer, fc: Any, part_changes: dict[str, Any]
) -> None:
    ticket = {
        **TICKET,
        "mode": "multipart",
        "upload_url": None,
        "upload_id": "up-1",
        "part_size": 2,
        "part_urls": [{"part_number": n, "url": _storage_url(server, n)} for n in (1, 2)],
        **part_changes,
    }
    calls = _engine_server(server, ticket, lambda: web.Response(headers={"ETag": '"e"'}))
    result = await outcome(lambda c: c.files.upload(b"abc", SID, name="a.txt"), fc)
    assert isinstance(result, ProtocolError), result
    assert [c for c in calls if c.startswith("PUT")] == []
    assert not any(c.endswith("/uploads/complete") for c in calls)


async def test_multipart_part_without_etag_never_completes(server: ScriptedServer, fc: Any) -> None:
    ticket = {
        **TICKET,
        "mode": "multipart",
        "upload_url": None,
        "upload_id": "up-1",
        "part_size": 2,
        "part_urls": [{"part_number": n, "url": _storage_url(server, n)} for n in (1, 2)],
    }
    calls = _engine_server(server, ticket, lambda: web.Response())  # 200, no ETag
    result = await outcome(lambda c: c.files.upload(b"abc", SID, name="a.txt"), fc)
    assert isinstance(result, FluidCloudError), result
    assert not any(c.endswith("/uploads/complete") for c in calls)
