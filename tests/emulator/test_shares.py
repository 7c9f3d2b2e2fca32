"""/shares and the raw-link server: limits, expiry, revoke, disposition, Range, quarantine."""

from __future__ import annotations

from typing import Any

import pytest

from fluidcloud_async.emulator import Emulator

from .conftest import Api

DATA = b"0123456789" * 10


async def clean_file(api: Api, name: str = "pic.png") -> dict[str, Any]:
    space = await api.space()
    return await api.upload(space["id"], DATA, name, clean=True)


async def test_create_list_revoke(api: Api, emu: Emulator) -> None:
    file = await clean_file(api)
    share = await api.ok(
        "POST",
        "/shares",
        json={"file_id": file["id"], "permission": "download", "password": "pw"},
    )
    assert share["url"].startswith(emu.raw_url + "/s/")
    assert share["permission"] == "download"
    assert share["expires_at"] is None and share["max_downloads"] is None
    assert share["download_count"] == 0 and share["revoked"] is False
    listed = await api.ok("GET", "/shares", params={"file_id": file["id"]})
    (item,) = listed["items"]
    assert "url" not in item
    assert item["has_password"] is True
    status, body, _ = await api.call("DELETE", f"/shares/{share['id']}")
    assert (status, body) == (204, "")
    assert (await api.call("DELETE", f"/shares/{share['id']}"))[0] == 204  # idempotent
    assert (await api.ok("GET", "/shares"))["items"] == []
    inactive = await api.ok("GET", "/shares", params={"include_inactive": "true"})
    assert [s["revoked"] for s in inactive["items"]] == [True]
    missing = "00000000-0000-4000-8000-000000000000"
    assert (await api.call("DELETE", f"/shares/{missing}"))[0] == 404
    async with api.session.get(share["url"]) as resp:
        assert resp.status == 410


@pytest.mark.parametrize(
    "body",
    [
        {"expires_in_days": 0},
        {"expires_in_days": 366},
        {"expires_in_days": "7"},
        {"permission": "edit"},
        {"max_downloads": 0},
        {},
    ],
)
async def test_create_validation_is_422(api: Api, body: dict[str, Any]) -> None:
    file = await clean_file(api)
    payload = {"file_id": file["id"], **body} if body else {"permission": "view"}
    status, detail, _ = await api.call("POST", "/shares", json=payload)
    assert status == 422, detail


async def test_not_clean_is_409_and_links_quota_is_402(api: Api, emu: Emulator) -> None:
    key = emu.add_tenant(links_limit=1)
    space = await api.space(key=key)
    pending = await api.upload(space["id"], DATA, key=key)
    status, body, _ = await api.call("POST", "/shares", key=key, json={"file_id": pending["id"]})
    assert status == 409
    emu.mark_clean(pending["id"])
    first = await api.ok("POST", "/shares", key=key, json={"file_id": pending["id"]})
    status, body, _ = await api.call("POST", "/shares", key=key, json={"file_id": pending["id"]})
    assert (status, body) == (402, {"detail": "quota_exceeded"})
    assert (await api.call("DELETE", f"/shares/{first['id']}", key=key))[0] == 204
    assert (await api.call("POST", "/shares", key=key, json={"file_id": pending["id"]}))[0] == 200


async def test_raw_link_disposition_cache_and_range(api: Api) -> None:
    file = await clean_file(api, "photo.png")
    view = await api.ok("POST", "/shares", json={"file_id": file["id"]})
    dl = await api.ok(
        "POST",
        "/shares",
        json={"file_id": file["id"], "permission": "download", "expires_in_days": 7},
    )
    assert dl["expires_at"].endswith("Z")
    s = api.session
    async with s.get(view["url"]) as resp:  # no API key at all
        assert resp.status == 200
        assert await resp.read() == DATA
        assert resp.headers["Content-Disposition"].startswith('inline; filename="photo.png"')
        assert resp.headers["Content-Type"] == "image/png"
        assert resp.headers["Cache-Control"] == "public, max-age=3600"
    async with s.get(dl["url"], headers={"Range": "bytes=5-9"}) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == "bytes 5-9/100"
        assert await resp.read() == DATA[5:10]
        assert resp.headers["Content-Disposition"].startswith("attachment;")
        assert "max-age=3600" not in resp.headers["Cache-Control"]
    async with s.head(view["url"]) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == "100"
    async with s.get(view["url"] + "x") as resp:
        assert resp.status == 404


async def test_raw_link_expiry(api: Api, emu: Emulator) -> None:
    file = await clean_file(api)
    share = await api.ok("POST", "/shares", json={"file_id": file["id"], "expires_in_days": 1})
    async with api.session.get(share["url"]) as resp:
        assert resp.status == 200
    emu.advance_time(86400 + 1)
    async with api.session.get(share["url"]) as resp:
        assert resp.status == 410
    assert (await api.ok("GET", "/quota"))["links_used"] == 0
    assert (await api.ok("GET", "/shares"))["items"] == []


async def test_raw_link_max_downloads(api: Api) -> None:
    file = await clean_file(api)
    share = await api.ok("POST", "/shares", json={"file_id": file["id"], "max_downloads": 2})
    s = api.session
    async with s.head(share["url"]) as resp:  # HEAD is not a download
        assert resp.status == 200
    for _ in range(2):
        async with s.get(share["url"]) as resp:
            assert resp.status == 200
            await resp.read()
    async with s.get(share["url"]) as resp:
        assert resp.status == 410
    (listed,) = (await api.ok("GET", "/shares", params={"include_inactive": "1"}))["items"]
    assert listed["download_count"] == 2


async def test_raw_link_quarantine_and_trash(api: Api, emu: Emulator) -> None:
    file = await clean_file(api)
    share = await api.ok("POST", "/shares", json={"file_id": file["id"]})
    emu.set_scan_result(file["id"], "infected")
    async with api.session.get(share["url"]) as resp:
        assert resp.status == 409
    emu.mark_clean(file["id"])
    await api.ok("DELETE", f"/files/{file['id']}")
    async with api.session.get(share["url"]) as resp:
        assert resp.status == 404
    await api.ok("POST", f"/files/{file['id']}/restore")
    async with api.session.get(share["url"]) as resp:
        assert resp.status == 200
