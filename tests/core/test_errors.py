"""Every documented status maps to its exception; odd bodies still map cleanly."""

from __future__ import annotations

import builtins

import pytest
from aioresponses import aioresponses

from fluidcloud_async import (
    ApiError,
    ApiResponseError,
    AsyncFluidCloud,
    AuthError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PermissionError,
    ProtocolError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
)

from .conftest import ROOT


@pytest.mark.parametrize(
    ("status", "body", "exc", "code"),
    [
        (400, {"detail": "invalid status filter"}, BadRequestError, None),
        (401, {"detail": "Invalid API key"}, AuthError, None),
        (402, {"detail": "quota_exceeded"}, QuotaExceededError, "quota_exceeded"),
        (402, {"detail": {"error": "quota_exceeded"}}, QuotaExceededError, "quota_exceeded"),
        (
            403,
            {"detail": {"error": "insufficient_scope", "required": ["files:read"]}},
            PermissionError,
            "insufficient_scope",
        ),
        (403, {"detail": {"error": "feature_not_in_plan"}}, PermissionError, "feature_not_in_plan"),
        (404, {"detail": "not found"}, NotFoundError, None),
        (409, {"detail": "file is not ready"}, ConflictError, None),
        (413, {"detail": "too large"}, PayloadTooLargeError, None),
        (415, {"detail": "no preview"}, UnsupportedMediaTypeError, None),
        (
            422,
            {"detail": [{"loc": ["body", "size"], "msg": "must be >= 0", "type": "x"}]},
            UnprocessableEntityError,
            None,
        ),
        (418, {"detail": "teapot"}, ApiError, "teapot"),
    ],
)
async def test_status_maps_to_exception(
    client: AsyncFluidCloud,
    mock: aioresponses,
    status: int,
    body: object,
    exc: type[ApiError],
    code: str | None,
) -> None:
    mock.get(f"{ROOT}/files/f1", status=status, payload=body)
    with pytest.raises(exc) as info:
        await client.files.get("f1")
    err = info.value
    assert isinstance(err, ApiError)
    assert err.status == status
    assert err.code == code
    assert err.method == "GET" and err.url == f"{ROOT}/files/f1"
    assert err.detail == body["detail"]  # type: ignore[index]
    if status == 422:
        assert "size: must be >= 0" in str(err)


async def test_permission_error_aliases() -> None:
    assert PermissionDeniedError is PermissionError
    assert issubclass(PermissionError, ApiError)
    assert issubclass(PermissionError, builtins.PermissionError)


async def test_html_502_maps_cleanly(client: AsyncFluidCloud, mock: aioresponses) -> None:
    html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    mock.post(f"{ROOT}/spaces", status=502, body=html, content_type="text/html")
    with pytest.raises(ServerError) as info:
        await client.spaces.create("x")
    assert info.value.status == 502
    assert "502 Bad Gateway" in str(info.value.detail)


async def test_empty_error_body(client: AsyncFluidCloud, mock: aioresponses) -> None:
    mock.post(f"{ROOT}/spaces", status=500, body="")
    with pytest.raises(ServerError, match="HTTP 500"):
        await client.spaces.create("x")


async def test_rate_limit_error_carries_retry_after(
    client: AsyncFluidCloud, mock: aioresponses
) -> None:
    mock.get(
        f"{ROOT}/quota",
        status=429,
        payload={"detail": "slow down"},
        headers={"Retry-After": "3600"},
    )
    with pytest.raises(RateLimitError) as info:
        await client.quota.usage()
    assert info.value.retry_after == 3600
    assert info.value.headers["Retry-After"] == "3600"


@pytest.mark.parametrize(
    "body",
    ["not json at all", '{"id": 5}', "[1, 2", '{"bytes_used": "many"}', '"a string"'],
)
async def test_malformed_success_bodies_raise_typed(
    client: AsyncFluidCloud, mock: aioresponses, body: str
) -> None:
    mock.get(f"{ROOT}/quota", status=200, body=body)
    with pytest.raises(ProtocolError):
        await client.quota.usage()


async def test_empty_200_for_object_raises_typed(
    client: AsyncFluidCloud, mock: aioresponses
) -> None:
    mock.get(f"{ROOT}/files/f1", status=200, body="")
    with pytest.raises(ProtocolError):
        await client.files.get("f1")


async def test_malformed_page_raises_typed(client: AsyncFluidCloud, mock: aioresponses) -> None:
    mock.get(f"{ROOT}/spaces", payload={"data": []})
    with pytest.raises(ProtocolError):
        await client.spaces.list()


async def test_cursor_loop_is_detected(client: AsyncFluidCloud, mock: aioresponses) -> None:
    page = {"items": [], "next_cursor": "same"}
    mock.get(f"{ROOT}/spaces", payload=page)
    mock.get(f"{ROOT}/spaces?cursor=same", payload=page, repeat=True)
    with pytest.raises(ProtocolError, match="loop"):
        await client.spaces.list()


async def test_contract_breaks_are_status_less_protocol_errors(
    client: AsyncFluidCloud, mock: aioresponses
) -> None:
    """A record of the wrong shape is a ProtocolError without an invented HTTP status; a
    body that is not JSON at all is an ApiResponseError with the answer's real status."""
    mock.get(f"{ROOT}/quota", status=200, payload={"bytes_used": "many"})
    with pytest.raises(ProtocolError) as shape:
        await client.quota.usage()
    assert not isinstance(shape.value, ApiError) and not hasattr(shape.value, "status")
    mock.get(f"{ROOT}/quota", status=201, body="not json")
    with pytest.raises(ApiResponseError) as body:
        await client.quota.usage()
    assert isinstance(body.value, ProtocolError) and body.value.status == 201
