"""Every resource method: method, path, query, body, headers and parsing."""

from __future__ import annotations

import json
from datetime import timezone
from typing import Any

import pytest
from aioresponses import aioresponses

from fluidcloud_async import AsyncFluidCloud, File, Folder, Link, Quota, Share, Space

from .conftest import API_KEY, ROOT, only_call

TS = "2026-06-23T10:04:11Z"
SPACE = {"id": "s1", "name": "Brand", "created_at": TS, "updated_at": TS}
FOLDER = {"id": "d1", "name": "inbox", "space_id": "s1", "parent_id": None, "created_at": TS}
FILE = {
    "id": "f1",
    "tenant_id": "t1",
    "space_id": "s1",
    "folder_id": None,
    "source_app": None,
    "client_key": "results/out.png",
    "original_name": "out.png",
    "name": "out.png",
    "mime": "image/png",
    "size": 10,
    "sha256": "ab" * 32,
    "scan_status": "clean",
    "status": "ready",
    "created_by": None,
    "deleted_at": None,
    "created_at": TS,
    "updated_at": TS,
    "brand_new_field": {"ignored": True},
}
SHARE = {
    "id": "sh1",
    "file_id": "f1",
    "permission": "view",
    "expires_at": None,
    "max_downloads": None,
    "download_count": 0,
    "revoked": False,
    "created_at": TS,
}
LINK = {**SHARE, "url": "https://files.example/s/tok"}


def body_of(call: Any) -> Any:
    data = call.kwargs.get("data")
    return None if data is None else json.loads(data)


def check(call: Any, *, body: Any = None) -> None:
    headers = call.kwargs["headers"]
    assert headers["X-API-Key"] == API_KEY
    assert body_of(call) == body
    if body is not None:
        assert headers["Content-Type"] == "application/json"


async def test_spaces(client: AsyncFluidCloud, mock: aioresponses) -> None:
    mock.get(f"{ROOT}/spaces", payload=[SPACE])
    spaces = await client.spaces.list()
    assert spaces == [Space.model_validate(SPACE)]
    assert spaces[0].created_at is not None and spaces[0].created_at.tzinfo == timezone.utc
    check(only_call(mock)[2])

    mock.requests.clear()
    mock.post(f"{ROOT}/spaces", payload=SPACE)
    space = await client.spaces.create("Brand")
    assert space.id == "s1"
    check(only_call(mock)[2], body={"name": "Brand"})


async def test_folders(client: AsyncFluidCloud, mock: aioresponses) -> None:
    mock.get(f"{ROOT}/folders?space_id=s1&parent_id=d0&trash=true", payload=[FOLDER])
    assert await client.folders.list("s1", parent_id="d0", trash=True) == [
        Folder.model_validate(FOLDER)
    ]
    mock.requests.clear()
    mock.get(f"{ROOT}/folders?space_id=s1", payload={"items": [FOLDER], "next_cursor": None})
    assert len(await client.folders.list("s1")) == 1

    cases: list[tuple[str, str, Any, Any]] = [
        (
            "post",
            "/folders",
            lambda: client.folders.create("inbox", "s1"),
            {"name": "inbox", "space_id": "s1", "parent_id": None},
        ),
        ("patch", "/folders/d1", lambda: client.folders.rename("d1", "new"), {"name": "new"}),
        ("patch", "/folders/d1", lambda: client.folders.move("d1", None), {"parent_id": None}),
        ("patch", "/folders/d1", lambda: client.folders.move("d1", "d2"), {"parent_id": "d2"}),
        ("post", "/folders/d1/restore", lambda: client.folders.restore("d1"), None),
        ("delete", "/folders/d1", lambda: client.folders.delete("d1"), None),
    ]
    for verb, path, call, body in cases:
        mock.requests.clear()
        getattr(mock, verb)(ROOT + path, payload=FOLDER)
        assert (await call()).id == "d1"
        method, url, recorded = only_call(mock)
        assert (method, str(url)) == (verb.upper(), ROOT + path)
        check(recorded, body=body)


async def test_folder_delete_204(client: AsyncFluidCloud, mock: aioresponses) -> None:
    mock.delete(f"{ROOT}/folders/d1", status=204)
    assert await client.folders.delete("d1") is None


async def test_files_read_methods(client: AsyncFluidCloud, mock: aioresponses) -> None:
    mock.get(f"{ROOT}/files?space_id=s1&folder_id=d1&status=ready&app=acme", payload=[FILE])
    files = await client.files.list("s1", "d1", status="ready", app="acme")
    assert files[0].client_key == "results/out.png" and files[0].is_clean
    mock.get(f"{ROOT}/files?trash=true", payload=[])
    assert await client.files.list(trash=True) == []
    mock.get(f"{ROOT}/files/f1", payload=FILE)
    assert (await client.files.get("f1")).sha256 == "ab" * 32
    mock.get(f"{ROOT}/files/resolve?client_key=results/out.png", payload=FILE)
    assert (await client.files.resolve("results/out.png")).id == "f1"
    mock.get(f"{ROOT}/files/f1/download", payload={"url": "https://storage/x?sig=1"})
    assert await client.files.download_url("f1") == "https://storage/x?sig=1"
    preview = {"url": "https://p/x", "kind": "image", "mime": "image/jpeg", "converted": True}
    mock.get(f"{ROOT}/files/f1/preview", payload=preview)
    pv = await client.files.preview("f1")
    assert (pv.kind, pv.converted, pv.mime) == ("image", True, "image/jpeg")


async def test_files_write_methods(client: AsyncFluidCloud, mock: aioresponses) -> None:
    cases: list[tuple[str, str, Any, Any]] = [
        (
            "patch",
            "/files/f1",
            lambda: client.files.rename("f1", "a.png"),
            {"original_name": "a.png"},
        ),
        ("patch", "/files/f1", lambda: client.files.move("f1", None), {"folder_id": None}),
        ("patch", "/files/f1", lambda: client.files.move("f1", "d1"), {"folder_id": "d1"}),
        (
            "patch",
            "/files/f1",
            lambda: client.files.update("f1", original_name="b", folder_id="d"),
            {"original_name": "b", "folder_id": "d"},
        ),
        ("delete", "/files/f1", lambda: client.files.delete("f1"), None),
        ("post", "/files/f1/restore", lambda: client.files.restore("f1"), None),
    ]
    for verb, path, call, body in cases:
        mock.requests.clear()
        getattr(mock, verb)(ROOT + path, payload=FILE)
        result = await call()
        assert isinstance(result, File)
        check(only_call(mock)[2], body=body)


async def test_file_links(client: AsyncFluidCloud, mock: aioresponses) -> None:
    mock.post(f"{ROOT}/shares", payload=LINK)
    link = await client.files.public_url("f1")
    assert isinstance(link, Link) and link.url == "https://files.example/s/tok"
    check(
        only_call(mock)[2],
        body={
            "file_id": "f1",
            "permission": "view",
            "expires_in_days": None,
            "max_downloads": None,
            "password": None,
        },
    )
    mock.requests.clear()
    mock.post(f"{ROOT}/shares", payload={**LINK, "expires_at": TS})
    link = await client.files.signed_url("f1", expires_in_days=30, permission="download")
    assert link.expires_at is not None
    assert body_of(only_call(mock)[2])["expires_in_days"] == 30
    assert "tok" not in repr(link)


async def test_shares_and_quota(client: AsyncFluidCloud, mock: aioresponses) -> None:
    mock.get(f"{ROOT}/shares?file_id=f1&include_inactive=true", payload=[SHARE])
    shares = await client.shares.list(file_id="f1", include_inactive=True)
    assert shares == [Share.model_validate(SHARE)]
    mock.delete(f"{ROOT}/shares/sh1", status=204)
    assert await client.shares.revoke("sh1") is None
    quota = {"bytes_used": 5, "bytes_limit": -1, "links_used": 3, "links_limit": 10}
    mock.get(f"{ROOT}/quota", payload=quota)
    q = await client.quota.usage()
    assert isinstance(q, Quota)
    assert (q.bytes_unlimited, q.bytes_remaining, q.links_remaining) == (True, None, 7)


async def test_uploads_raw_endpoints(client: AsyncFluidCloud, mock: aioresponses) -> None:
    ticket = {
        "file_id": "f1",
        "key": "t/incoming/f1/big.bin",
        "mode": "multipart",
        "content_type": None,
        "upload_url": None,
        "upload_id": "u1",
        "part_size": 5,
        "part_urls": [
            {"part_number": 1, "url": "https://st/1?sig"},
            {"part_number": 2, "url": "https://st/2?sig"},
        ],
    }
    mock.post(f"{ROOT}/uploads/initiate", payload=ticket)
    t = await client.uploads.initiate(original_name="big.bin", size=8, space_id="s1")
    assert t.is_multipart and [p.part_number for p in t.part_urls or []] == [1, 2]
    assert "sig" not in repr(t)
    check(only_call(mock)[2], body={"original_name": "big.bin", "size": 8, "space_id": "s1"})

    mock.requests.clear()
    mock.post(f"{ROOT}/uploads/complete", payload=FILE)
    parts = [{"PartNumber": 1, "ETag": '"a"'}, {"PartNumber": 2, "ETag": '"b"'}]
    await client.uploads.complete(
        file_id="f1",
        key=t.key,
        original_name="big.bin",
        size=8,
        space_id="s1",
        upload_id="u1",
        parts=parts,
        client_key="k",
        sha256="00",
    )
    check(
        only_call(mock)[2],
        body={
            "file_id": "f1",
            "key": t.key,
            "original_name": "big.bin",
            "size": 8,
            "space_id": "s1",
            "upload_id": "u1",
            "parts": parts,
            "sha256": "00",
            "client_key": "k",
        },
    )

    mock.requests.clear()
    mock.post(f"{ROOT}/uploads/import-url", payload=FILE)
    await client.uploads.import_url(url="https://example.com/a.jpg", space_id="s1", name="a.jpg")
    check(
        only_call(mock)[2],
        body={"url": "https://example.com/a.jpg", "space_id": "s1", "name": "a.jpg"},
    )


async def test_cursor_walk_three_pages(client: AsyncFluidCloud, mock: aioresponses) -> None:
    page = lambda ids, cur: {  # noqa: E731
        "items": [{**FILE, "id": i} for i in ids],
        "next_cursor": cur,
    }
    mock.get(f"{ROOT}/files?space_id=s1&limit=2", payload=page(["a", "b"], "c1"))
    mock.get(f"{ROOT}/files?space_id=s1&limit=2&cursor=c1", payload=page(["c", "d"], "c2"))
    mock.get(f"{ROOT}/files?space_id=s1&limit=2&cursor=c2", payload=page(["e"], None))
    assert [f.id for f in await client.files.list("s1", limit=2)] == ["a", "b", "c", "d", "e"]

    mock.get(f"{ROOT}/files?space_id=s1&limit=2", payload=page(["a", "b"], "c1"))
    mock.get(f"{ROOT}/files?space_id=s1&limit=2&cursor=c1", payload=page(["c"], None))
    streamed = [f.id async for f in client.files.list("s1", limit=2)]
    assert streamed == ["a", "b", "c"]


async def test_unknown_enum_values_and_naive_timestamps(
    client: AsyncFluidCloud, mock: aioresponses
) -> None:
    odd = {
        **FILE,
        "scan_status": "quarantined-v2",
        "status": "archived",
        "created_at": "2026-06-23T10:04:11",
    }
    mock.get(f"{ROOT}/files/f1", payload=odd)
    f = await client.files.get("f1")
    assert f.scan_status == "quarantined-v2" and not f.is_clean
    assert f.created_at is not None and f.created_at.tzinfo is not None


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.files.signed_url("f1", expires_in_days=0),
        lambda c: c.files.signed_url("f1", expires_in_days=366),
        lambda c: c.files.signed_url("f1", permission="edit"),
        lambda c: c.files.get(""),
        lambda c: c.files.get("a/../b"),
        lambda c: c.spaces.create("  "),
        lambda c: c.files.update("f1"),
        lambda c: c.uploads.initiate(original_name="a", size=-1, space_id="s1"),
        lambda c: c.uploads.complete(
            file_id="f", key="k", original_name="a", size=1, space_id="s", upload_id="u"
        ),
        lambda c: c.uploads.import_url(url="ftp://x/y", space_id="s1"),
        lambda c: c.shares.create("f1", max_downloads=0),
    ],
)
async def test_bad_input_fails_before_network(
    client: AsyncFluidCloud, mock: aioresponses, call: Any
) -> None:
    with pytest.raises((ValueError, TypeError)):
        await call(client)
    assert not mock.requests


async def test_list_argument_errors_are_immediate(client: AsyncFluidCloud) -> None:
    with pytest.raises(ValueError, match="space_id"):
        client.files.list()
    with pytest.raises(TypeError):
        await client.files.signed_url("f1", expires_in_days=True)  # type: ignore[arg-type]
