"""/files: list, resolve + supersede, get, download, preview, update, delete, restore."""

from __future__ import annotations

import aiohttp

from fluidcloud_async.emulator import Emulator

from .conftest import Api

FILE_FIELDS = {
    "id",
    "tenant_id",
    "space_id",
    "folder_id",
    "source_app",
    "client_key",
    "original_name",
    "name",
    "mime",
    "size",
    "sha256",
    "scan_status",
    "status",
    "created_by",
    "deleted_at",
    "created_at",
    "updated_at",
}


async def test_file_out_shape_and_lifecycle(api: Api, emu: Emulator) -> None:
    space = await api.space()
    file = await api.upload(space["id"], b"hello", "hello.txt")
    assert set(file) == FILE_FIELDS
    assert file["scan_status"] == "pending"
    assert file["status"] == "draft"
    assert file["name"] == file["original_name"] == "hello.txt"
    assert file["mime"] == "text/plain"
    assert file["tenant_id"] == emu.tenant_id(emu.api_key)
    emu.mark_clean(file["id"])
    got = await api.ok("GET", f"/files/{file['id']}")
    assert (got["scan_status"], got["status"]) == ("clean", "ready")


async def test_list_orders_by_name_and_filters(api: Api) -> None:
    space = await api.space()
    sid = space["id"]
    for name in ("b.txt", "a.txt", "c.txt"):
        await api.upload(sid, name.encode(), name)
    page = await api.ok("GET", "/files", params={"space_id": sid, "limit": "2"})
    assert [f["name"] for f in page["items"]] == ["a.txt", "b.txt"]
    rest = await api.ok("GET", "/files", params={"space_id": sid, "cursor": page["next_cursor"]})
    assert [f["name"] for f in rest["items"]] == ["c.txt"]
    assert rest["next_cursor"] is None
    drafts = await api.ok("GET", "/files", params={"space_id": sid, "status": "draft"})
    assert len(drafts["items"]) == 3
    ready = await api.ok("GET", "/files", params={"space_id": sid, "status": "ready"})
    assert ready["items"] == []
    assert (await api.call("GET", "/files", params={"space_id": sid, "status": "bogus"}))[0] == 400
    by_app = await api.ok("GET", "/files", params={"space_id": sid, "app": "api"})
    assert len(by_app["items"]) == 3
    other_app = await api.ok("GET", "/files", params={"space_id": sid, "app": "zzz"})
    assert other_app["items"] == []
    assert (await api.call("GET", "/files"))[0] == 422


async def test_resolve_and_supersede(api: Api, emu: Emulator) -> None:
    space = await api.space()
    first = await api.upload(space["id"], b"v1", "out.png", client_key="results/out.png")
    got = await api.ok("GET", "/files/resolve", params={"client_key": "results/out.png"})
    assert got["id"] == first["id"]
    second = await api.upload(space["id"], b"v2", "out.png", client_key="results/out.png")
    got = await api.ok("GET", "/files/resolve", params={"client_key": "results/out.png"})
    assert got["id"] == second["id"]
    old = await api.ok("GET", f"/files/{first['id']}")
    assert old["deleted_at"] is not None  # superseded = soft-deleted
    status, _, _ = await api.call("GET", "/files/resolve", params={"client_key": "nope"})
    assert status == 404
    assert (await api.call("GET", "/files/resolve"))[0] == 422
    # Logical per tenant: another tenant's identical key neither collides nor leaks.
    other = emu.add_tenant()
    other_space = await api.space(key=other)
    mine = await api.upload(other_space["id"], b"o", client_key="results/out.png", key=other)
    got = await api.ok("GET", "/files/resolve", params={"client_key": "results/out.png"}, key=other)
    assert got["id"] == mine["id"]
    got = await api.ok("GET", "/files/resolve", params={"client_key": "results/out.png"})
    assert got["id"] == second["id"]
    await api.ok("DELETE", f"/files/{second['id']}")
    status, _, _ = await api.call("GET", "/files/resolve", params={"client_key": "results/out.png"})
    assert status == 404


async def test_download_requires_clean(
    api: Api, emu: Emulator, session: aiohttp.ClientSession
) -> None:
    space = await api.space()
    data = b"download me" * 1000
    file = await api.upload(space["id"], data, "d.bin")
    status, body, _ = await api.call("GET", f"/files/{file['id']}/download")
    assert status == 409
    assert "not ready" in body["detail"]
    emu.mark_clean(file["id"])
    url = (await api.ok("GET", f"/files/{file['id']}/download"))["url"]
    assert "X-Amz-Signature=" in url
    assert emu.api_key not in url
    async with session.get(url) as resp:
        assert resp.status == 200
        assert await resp.read() == data
        assert resp.headers["Content-Disposition"].startswith("attachment;")
    emu.set_scan_result(file["id"], "infected")
    assert (await api.call("GET", f"/files/{file['id']}/download"))[0] == 409


async def test_preview_kinds(api: Api, emu: Emulator) -> None:
    space = await api.space()
    cases = {
        "a.png": ("image", "image/png", False),
        "a.heic": ("image", "image/jpeg", True),
        "a.tiff": ("image", "image/jpeg", True),
        "a.mp4": ("video", "video/mp4", False),
        "a.mp3": ("audio", "audio/mpeg", False),
        "a.pdf": ("pdf", "application/pdf", False),
        "a.txt": ("text", "text/plain", False),
    }
    for name, (kind, mime, converted) in cases.items():
        ctype = "image/heic" if name.endswith(".heic") else None
        file = await api.upload(space["id"], b"bytes", name, content_type=ctype, clean=True)
        body = await api.ok("GET", f"/files/{file['id']}/preview")
        assert (body["kind"], body["mime"], body["converted"]) == (kind, mime, converted), name
        assert body["url"].startswith(emu.storage_url)
    archive = await api.upload(space["id"], b"PK", "a.zip", clean=True)
    assert (await api.call("GET", f"/files/{archive['id']}/preview"))[0] == 415
    pending = await api.upload(space["id"], b"x", "p.png")
    assert (await api.call("GET", f"/files/{pending['id']}/preview"))[0] == 409


async def test_update_rename_and_move(api: Api) -> None:
    space = await api.space()
    sid = space["id"]
    folder = await api.ok("POST", "/folders", json={"name": "f", "space_id": sid})
    file = await api.upload(sid, b"x", "x.txt")
    fid = file["id"]
    renamed = await api.ok("PATCH", f"/files/{fid}", json={"original_name": "y.txt"})
    assert renamed["name"] == renamed["original_name"] == "y.txt"
    moved = await api.ok("PATCH", f"/files/{fid}", json={"folder_id": folder["id"]})
    assert moved["folder_id"] == folder["id"]
    unchanged = await api.ok("PATCH", f"/files/{fid}", json={"original_name": "z.txt"})
    assert unchanged["folder_id"] == folder["id"]  # absent folder_id = unchanged
    to_root = await api.ok("PATCH", f"/files/{fid}", json={"folder_id": None})
    assert to_root["folder_id"] is None

    other = await api.space("o")
    far = await api.ok("POST", "/folders", json={"name": "far", "space_id": other["id"]})
    assert (await api.call("PATCH", f"/files/{fid}", json={"folder_id": far["id"]}))[0] == 400
    missing = "00000000-0000-4000-8000-000000000000"
    assert (await api.call("PATCH", f"/files/{fid}", json={"folder_id": missing}))[0] == 404
    for bad in ("", "a/b", "..", 5, None):
        status, body, _ = await api.call("PATCH", f"/files/{fid}", json={"original_name": bad})
        assert status == 422, bad
        assert body["detail"][0]["loc"] == ["body", "original_name"]


async def test_delete_restore_and_trash(api: Api, emu: Emulator) -> None:
    space = await api.space()
    other_space = await api.space("two")
    a = await api.upload(space["id"], b"a", "a.txt")
    b = await api.upload(other_space["id"], b"b", "b.txt")
    deleted = await api.ok("DELETE", f"/files/{a['id']}")
    assert deleted["deleted_at"] is not None
    assert (await api.ok("DELETE", f"/files/{a['id']}"))["deleted_at"] == deleted["deleted_at"]
    await api.ok("DELETE", f"/files/{b['id']}")
    trash = await api.ok("GET", "/files", params={"trash": "true"})
    assert [f["id"] for f in trash["items"]] == [a["id"], b["id"]]  # tenant-wide
    live = await api.ok("GET", "/files", params={"space_id": space["id"]})
    assert live["items"] == []
    restored = await api.ok("POST", f"/files/{a['id']}/restore")
    assert restored["deleted_at"] is None
    assert (await api.ok("POST", f"/files/{a['id']}/restore"))["deleted_at"] is None
    missing = "00000000-0000-4000-8000-000000000000"
    assert (await api.call("POST", f"/files/{missing}/restore"))[0] == 404
    # Deleted files free quota; a trashed file cannot be shared or downloaded.
    emu.mark_clean(b["id"])
    assert (await api.call("GET", f"/files/{b['id']}/download"))[0] == 404
    assert (await api.ok("GET", "/quota"))["bytes_used"] == 1
