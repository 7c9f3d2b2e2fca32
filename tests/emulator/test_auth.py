"""Authentication, scopes, plan, tenant isolation and error shapes."""

from __future__ import annotations

import uuid

from fluidcloud_async.emulator import Emulator

from .conftest import Api


async def test_missing_and_unknown_key_are_401(api: Api) -> None:
    status, body, _ = await api.call("GET", "/spaces", key=None)
    assert status == 401
    assert isinstance(body["detail"], str)
    status, body, _ = await api.call("GET", "/spaces", key="fck_test_nope")
    assert status == 401


async def test_bearer_is_accepted(api: Api, emu: Emulator) -> None:
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    status, body, _ = await api.call("GET", "/spaces", key=None, headers=headers)
    assert status == 200
    assert body == {"items": [], "next_cursor": None}


async def test_revoked_key_is_401(api: Api, emu: Emulator) -> None:
    key = emu.add_key(emu.api_key)
    assert (await api.call("GET", "/quota", key=key))[0] == 200
    emu.revoke_key(key)
    assert (await api.call("GET", "/quota", key=key))[0] == 401
    assert (await api.call("GET", "/quota"))[0] == 200


async def test_insufficient_scope_is_structured_403(api: Api, emu: Emulator) -> None:
    key = emu.add_tenant(scopes={"spaces:read"})
    assert (await api.call("GET", "/spaces", key=key))[0] == 200
    status, body, _ = await api.call("POST", "/spaces", key=key, json={"name": "x"})
    assert status == 403
    assert body == {"detail": {"error": "insufficient_scope", "required": ["spaces:write"]}}
    status, body, _ = await api.call("POST", "/uploads/initiate", key=key, json={})
    assert status == 403
    assert body["detail"]["required"] == ["files:write"]


async def test_second_key_with_other_scopes_shares_the_tenant(api: Api, emu: Emulator) -> None:
    space = await api.space()
    reader = emu.add_key(emu.api_key, scopes={"spaces:read"})
    body = await api.ok("GET", "/spaces", key=reader)
    assert [s["id"] for s in body["items"]] == [space["id"]]


async def test_plan_without_api_is_feature_not_in_plan(api: Api, emu: Emulator) -> None:
    key = emu.add_tenant(plan_has_api=False)
    status, body, _ = await api.call("GET", "/quota", key=key)
    assert status == 403
    assert body == {"detail": {"error": "feature_not_in_plan"}}


async def test_cross_tenant_ids_are_404_everywhere(api: Api, emu: Emulator) -> None:
    space = await api.space()
    folder = await api.ok("POST", "/folders", json={"name": "f", "space_id": space["id"]})
    file = await api.upload(space["id"], b"abc", "a.txt", clean=True)
    share = await api.ok("POST", "/shares", json={"file_id": file["id"]})
    other = emu.add_tenant()
    fid, fo = file["id"], folder["id"]
    probes = [
        ("GET", f"/files/{fid}", None),
        ("GET", f"/files/{fid}/download", None),
        ("GET", f"/files/{fid}/preview", None),
        ("PATCH", f"/files/{fid}", {"original_name": "b"}),
        ("DELETE", f"/files/{fid}", None),
        ("POST", f"/files/{fid}/restore", None),
        ("PATCH", f"/folders/{fo}", {"name": "x"}),
        ("DELETE", f"/folders/{fo}", None),
        ("POST", f"/folders/{fo}/restore", None),
        ("DELETE", f"/shares/{share['id']}", None),
        ("POST", "/shares", {"file_id": fid}),
        ("GET", f"/folders?space_id={space['id']}", None),
        ("GET", f"/files?space_id={space['id']}", None),
        ("POST", "/folders", {"name": "x", "space_id": space["id"]}),
        (
            "POST",
            "/uploads/initiate",
            {"original_name": "a", "size": 1, "space_id": space["id"]},
        ),
    ]
    for method, path, body in probes:
        status, detail, _ = await api.call(method, path, key=other, json=body)
        assert status == 404, (method, path, status, detail)
    status, _, _ = await api.call("GET", "/files/resolve?client_key=x", key=other)
    assert status == 404
    # And the owner still sees everything untouched.
    assert (await api.ok("GET", f"/files/{fid}"))["deleted_at"] is None


async def test_unknown_route_and_method_are_json(api: Api) -> None:
    status, body, _ = await api.call("GET", "/nope")
    assert status == 404
    assert "detail" in body
    status, body, headers = await api.call("PUT", "/spaces")
    assert status == 405
    assert "detail" in body
    assert "GET" in headers["Allow"]


async def test_malformed_ids_are_400(api: Api) -> None:
    status, body, _ = await api.call("GET", "/files/not-a-uuid")
    assert status == 400
    assert "UUID" in body["detail"]
    status, _, _ = await api.call("GET", "/files/" + str(uuid.uuid4()))
    assert status == 404


async def test_created_by_never_holds_the_key(api: Api, emu: Emulator) -> None:
    space = await api.space()
    file = await api.upload(space["id"], b"x")
    assert file["created_by"].startswith("fck_test_")
    assert emu.api_key not in file["created_by"]
    assert len(file["created_by"]) < len(emu.api_key)
