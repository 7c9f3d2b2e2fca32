"""Spaces, folders (tree, move, trash sweep), quota and list pagination."""

from __future__ import annotations

import pytest

from fluidcloud_async.emulator import Emulator, EmulatorConfig

from .conftest import Api


async def test_spaces_create_and_paginate(api: Api) -> None:
    created = [await api.space(f"s{i}") for i in range(5)]
    assert set(created[0]) == {"id", "name", "created_at", "updated_at"}
    assert created[0]["created_at"].endswith("Z")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = await api.ok("GET", "/spaces", params=params)
        assert len(page["items"]) <= 2
        seen += [s["id"] for s in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [s["id"] for s in created]


async def test_list_bad_limit_and_cursor(api: Api) -> None:
    assert (await api.call("GET", "/spaces", params={"limit": "0"}))[0] == 422
    assert (await api.call("GET", "/spaces", params={"limit": "x"}))[0] == 422
    assert (await api.call("GET", "/spaces", params={"cursor": "!!"}))[0] == 400


async def test_space_name_validation(api: Api) -> None:
    status, body, _ = await api.call("POST", "/spaces", json={"name": ""})
    assert status == 422
    assert body["detail"][0]["loc"] == ["body", "name"]
    status, body, _ = await api.call("POST", "/spaces", json={})
    assert status == 422
    assert body["detail"][0]["type"] == "missing"
    status, body, _ = await api.call("POST", "/spaces", json={"name": 3})
    assert status == 422
    status, _, _ = await api.call(
        "POST", "/spaces", headers={"Content-Type": "application/json"}, json=None
    )
    assert status == 422


async def test_folder_tree_rename_and_move(api: Api) -> None:
    space = await api.space()
    sid = space["id"]
    a = await api.ok("POST", "/folders", json={"name": "a", "space_id": sid})
    b = await api.ok("POST", "/folders", json={"name": "b", "space_id": sid, "parent_id": a["id"]})
    c = await api.ok("POST", "/folders", json={"name": "c", "space_id": sid, "parent_id": b["id"]})
    assert a["parent_id"] is None
    assert b["parent_id"] == a["id"]
    assert set(a) >= {"id", "space_id", "parent_id", "name", "created_at", "updated_at"}
    root = await api.ok("GET", "/folders", params={"space_id": sid})
    assert [f["name"] for f in root["items"]] == ["a"]
    inside = await api.ok("GET", "/folders", params={"space_id": sid, "parent_id": a["id"]})
    assert [f["id"] for f in inside["items"]] == [b["id"]]

    renamed = await api.ok("PATCH", f"/folders/{b['id']}", json={"name": "bee"})
    assert renamed["name"] == "bee"
    # Cycles are refused.
    for target in (a["id"], c["id"]):
        status, _, _ = await api.call("PATCH", f"/folders/{a['id']}", json={"parent_id": target})
        assert status == 400
    moved = await api.ok("PATCH", f"/folders/{c['id']}", json={"parent_id": None})
    assert moved["parent_id"] is None
    # Another space's folder as parent: 400; a missing one: 404.
    other = await api.space("other")
    o = await api.ok("POST", "/folders", json={"name": "o", "space_id": other["id"]})
    status, _, _ = await api.call("PATCH", f"/folders/{c['id']}", json={"parent_id": o["id"]})
    assert status == 400
    status, _, _ = await api.call(
        "POST", "/folders", json={"name": "x", "space_id": sid, "parent_id": o["id"]}
    )
    assert status == 400
    missing = "00000000-0000-4000-8000-000000000000"
    status, _, _ = await api.call("PATCH", f"/folders/{c['id']}", json={"parent_id": missing})
    assert status == 404
    status, _, _ = await api.call("GET", "/folders", params={"space_id": missing})
    assert status == 404
    status, _, _ = await api.call("GET", "/folders")
    assert status == 422


async def test_folder_trash_sweeps_files_and_subfolders(api: Api) -> None:
    space = await api.space()
    sid = space["id"]
    top = await api.ok("POST", "/folders", json={"name": "top", "space_id": sid})
    sub = await api.ok(
        "POST", "/folders", json={"name": "sub", "space_id": sid, "parent_id": top["id"]}
    )
    in_top = await api.upload(sid, b"1", "1.txt", folder_id=top["id"])
    in_sub = await api.upload(sid, b"2", "2.txt", folder_id=sub["id"])
    loose = await api.upload(sid, b"3", "3.txt")
    await api.ok("DELETE", f"/files/{loose['id']}")

    deleted = await api.ok("DELETE", f"/folders/{top['id']}")
    assert deleted["deleted_at"] is not None
    again = await api.ok("DELETE", f"/folders/{top['id']}")  # idempotent
    assert again["deleted_at"] == deleted["deleted_at"]

    assert (await api.ok("GET", "/folders", params={"space_id": sid}))["items"] == []
    trash = await api.ok("GET", "/folders", params={"space_id": sid, "trash": "true"})
    assert [f["id"] for f in trash["items"]] == [top["id"]]  # sub was swept, not listed
    file_trash = await api.ok("GET", "/files", params={"trash": "true"})
    assert [f["id"] for f in file_trash["items"]] == [loose["id"]]  # swept files not listed
    for f in (in_top, in_sub):
        assert (await api.ok("GET", f"/files/{f['id']}"))["deleted_at"] is not None

    restored = await api.ok("POST", f"/folders/{top['id']}/restore")
    assert restored["deleted_at"] is None
    for f in (in_top, in_sub):
        assert (await api.ok("GET", f"/files/{f['id']}"))["deleted_at"] is None
    inside = await api.ok("GET", "/files", params={"space_id": sid, "folder_id": sub["id"]})
    assert [f["id"] for f in inside["items"]] == [in_sub["id"]]
    assert (await api.ok("GET", f"/files/{loose['id']}"))["deleted_at"] is not None


async def test_quota_counts_bytes_and_links(api: Api, emu: Emulator) -> None:
    quota = await api.ok("GET", "/quota")
    assert quota == {"bytes_used": 0, "bytes_limit": -1, "links_used": 0, "links_limit": -1}
    space = await api.space()
    file = await api.upload(space["id"], b"x" * 10, clean=True)
    await api.ok("POST", "/shares", json={"file_id": file["id"]})
    quota = await api.ok("GET", "/quota")
    assert quota["bytes_used"] == 10
    assert quota["links_used"] == 1
    key = emu.add_tenant(bytes_limit=100, links_limit=5)
    assert await api.ok("GET", "/quota", key=key) == {
        "bytes_used": 0,
        "bytes_limit": 100,
        "links_used": 0,
        "links_limit": 5,
    }


@pytest.mark.parametrize("emu_config", [EmulatorConfig(list_style="array")])
async def test_array_list_style(api: Api) -> None:
    for i in range(3):
        await api.space(f"s{i}")
    body = await api.ok("GET", "/spaces", params={"limit": "1"})
    assert isinstance(body, list)
    assert len(body) == 3
