"""The presigned storage server: signatures, Content-Type, expiry, 411, traversal, Range."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import yarl

from fluidcloud_async.emulator import Emulator, EmulatorConfig

from .conftest import Api


async def ticket(api: Api, size: int = 5, content_type: str | None = None) -> dict[str, Any]:
    space = await api.space()
    body = {"original_name": "a.txt", "size": size, "space_id": space["id"]}
    if content_type:
        body["content_type"] = content_type
    t: dict[str, Any] = await api.ok("POST", "/uploads/initiate", json=body)
    return t


def with_params(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query)) | changes
    return parts._replace(query=urlencode(params)).geturl()


async def test_put_returns_quoted_md5_etag(api: Api) -> None:
    t = await ticket(api)
    status, _, headers = await api.put(t["upload_url"], b"hello")
    assert status == 200
    assert headers["ETag"] == '"5d41402abc4b2a76b9719d911017c592"'


async def test_signature_tampering_is_403(api: Api) -> None:
    t = await ticket(api)
    url = t["upload_url"]
    for bad in (
        with_params(url, **{"X-Amz-Signature": "0" * 64}),
        with_params(url, **{"X-Amz-Expires": "999999"}),
        url.split("?")[0],
        url.replace("/a.txt?", "/b.txt?"),
    ):
        status, text, _ = await api.put(bad, b"hello")
        assert status == 403, text
        assert "<Error>" in text


async def test_content_type_must_match_the_signed_one(api: Api) -> None:
    typed = await ticket(api, content_type="image/png")
    status, text, _ = await api.put(typed["upload_url"], b"hello", "image/jpeg")
    assert status == 403
    assert "SignatureDoesNotMatch" in text
    assert (await api.put(typed["upload_url"], b"hello"))[0] == 403  # missing
    assert (await api.put(typed["upload_url"], b"hello", "image/png"))[0] == 200
    untyped = await ticket(api)
    status, text, _ = await api.put(untyped["upload_url"], b"hello", "application/octet-stream")
    assert status == 403
    assert "SignatureDoesNotMatch" in text


@pytest.mark.parametrize("emu_config", [EmulatorConfig(scan_delay=None, url_ttl=1)])
async def test_expired_url_is_403_access_denied(api: Api, emu: Emulator) -> None:
    t = await ticket(api)
    emu.advance_time(2)
    status, text, headers = await api.put(t["upload_url"], b"hello")
    assert status == 403
    assert "<Code>AccessDenied</Code><Message>Request has expired</Message>" in text
    assert headers["Content-Type"].startswith("application/xml")


async def test_chunked_body_is_411(api: Api) -> None:
    t = await ticket(api)

    async def gen() -> AsyncIterator[bytes]:
        yield b"hel"
        yield b"lo"

    async with api.session.put(
        t["upload_url"], data=gen(), skip_auto_headers=["Content-Type"]
    ) as resp:
        assert resp.status == 411
        assert "MissingContentLength" in await resp.text()


@pytest.mark.parametrize(
    "path",
    [
        "/fluidcloud-emulator/a/../../etc/passwd",
        "/fluidcloud-emulator/a/%2e%2e/%2e%2e/x",
        "/fluidcloud-emulator/%2Fetc%2Fpasswd",
        "/fluidcloud-emulator/a%00b",
        "/fluidcloud-emulator/a%5C..%5Cb",
    ],
)
async def test_path_traversal_is_400(api: Api, emu: Emulator, path: str) -> None:
    url = yarl.URL(emu.storage_url + path + "?X-Amz-Signature=x", encoded=True)
    async with api.session.put(url, data=b"x") as resp:
        assert resp.status == 400
        assert "InvalidArgument" in await resp.text()


async def test_unknown_bucket_and_upload_id(api: Api, emu: Emulator) -> None:
    t = await ticket(api)
    url = t["upload_url"].replace("/fluidcloud-emulator/", "/other-bucket/")
    assert (await api.put(url, b"hello"))[0] == 404
    # A signed part URL of an upload that does not exist (the signature is checked first,
    # so build a genuine one through the emulator's own signer).
    signed = emu.ctx.signer.presign(
        emu.storage_url,
        "PUT",
        f"/fluidcloud-emulator/{t['key']}",
        ttl=60,
        extra={"uploadId": "nope", "partNumber": "1"},
    )
    status, text, _ = await api.put(signed, b"hello")
    assert status == 404
    assert "NoSuchUpload" in text


async def test_get_range_head_and_416(api: Api, emu: Emulator) -> None:
    space = await api.space()
    data = bytes(range(200))
    file = await api.upload(space["id"], data, "r.bin", clean=True)
    url = (await api.ok("GET", f"/files/{file['id']}/download"))["url"]
    s = api.session
    async with s.get(url, headers={"Range": "bytes=10-19"}) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == "bytes 10-19/200"
        assert await resp.read() == data[10:20]
    async with s.get(url, headers={"Range": "bytes=-5"}) as resp:
        assert resp.status == 206
        assert await resp.read() == data[-5:]
    async with s.get(url, headers={"Range": "bytes=190-"}) as resp:
        assert await resp.read() == data[190:]
    async with s.get(url, headers={"Range": "bytes=500-"}) as resp:
        assert resp.status == 416
        assert resp.headers["Content-Range"] == "bytes */200"
    async with s.head(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == "200"
    async with s.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0")) as resp:
        assert resp.status == 403
    emu.advance_time(3601)
    async with s.get(url) as resp:
        assert resp.status == 403
        assert "Request has expired" in await resp.text()


async def test_concurrent_puts_of_different_objects(api: Api) -> None:
    space = await api.space()
    datas = [bytes([i]) * (50_000 + i) for i in range(8)]
    files = await asyncio.gather(
        *(api.upload(space["id"], d, f"{i}.bin") for i, d in enumerate(datas))
    )
    assert [f["size"] for f in files] == [len(d) for d in datas]
