"""Spaces, folders and quota routes."""

from __future__ import annotations

import uuid

from aiohttp import web

from ._context import Context
from ._errors import (
    F,
    bad_request,
    json_response,
    opt_uuid,
    parse_uuid,
    query_bool,
    quota_exceeded,
    read_json,
    require_query,
    validate,
)
from ._routing import Route, ctx_of, get_folder, get_space, path_id, principal
from ._shapes import folder_out, list_response, space_out

NAME = F("name", str, required=True, nullable=False, min_length=1, max_length=255)


async def list_spaces(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    rows = ctx.db.all("SELECT * FROM spaces WHERE tenant_id = ?", (who.tenant_id,))
    return list_response(request, ctx, rows, space_out, lambda r: (r["created_at"], r["id"]))


async def create_space(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    body = validate(await read_json(request), [NAME])
    now = ctx.clock.now()
    space_id = str(uuid.uuid4())
    ctx.db.run(
        "INSERT INTO spaces (id, tenant_id, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        (space_id, who.tenant_id, body["name"], now, now),
    )
    return json_response(space_out(get_space(ctx, who.tenant_id, space_id)))


async def list_folders(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    space_id = parse_uuid(require_query(request, "space_id"), "space_id")
    trash = query_bool(request, "trash")
    get_space(ctx, who.tenant_id, space_id)
    if trash:
        # Trash shows folders deleted on their own; swept sub-folders come back with them.
        rows = ctx.db.all(
            "SELECT * FROM folders WHERE tenant_id = ? AND space_id = ?"
            " AND deleted_at IS NOT NULL AND swept_by IS NULL",
            (who.tenant_id, space_id),
        )
    else:
        parent = request.query.get("parent_id")
        parent_id = parse_uuid(parent, "parent_id") if parent else None
        if parent_id is not None:
            get_folder(ctx, who.tenant_id, parent_id)
        rows = ctx.db.all(
            "SELECT * FROM folders WHERE tenant_id = ? AND space_id = ? AND deleted_at IS NULL"
            " AND parent_id IS ?",
            (who.tenant_id, space_id, parent_id),
        )
    return list_response(request, ctx, rows, folder_out, lambda r: (r["name"], r["id"]))


def _check_parent(request: web.Request, space_id: str, parent_id: str | None) -> None:
    if parent_id is None:
        return
    ctx, who = ctx_of(request), principal(request)
    parent = get_folder(ctx, who.tenant_id, parent_id, live=True)
    if parent["space_id"] != space_id:
        raise bad_request("parent folder is in another space")


async def create_folder(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    body = validate(
        await read_json(request),
        [NAME, F("space_id", str, required=True, nullable=False), F("parent_id", str)],
    )
    space_id = parse_uuid(body["space_id"], "space_id")
    parent_id = opt_uuid(body.get("parent_id"), "parent_id")
    get_space(ctx, who.tenant_id, space_id)
    _check_parent(request, space_id, parent_id)
    folder_id = str(uuid.uuid4())
    now = ctx.clock.now()
    ctx.db.run(
        "INSERT INTO folders (id, tenant_id, space_id, parent_id, name, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (folder_id, who.tenant_id, space_id, parent_id, body["name"], now, now),
    )
    return json_response(folder_out(get_folder(ctx, who.tenant_id, folder_id)))


def _descendants(request: web.Request, folder_id: str) -> list[str]:
    """``folder_id`` and every folder below it, live or not."""
    ctx = ctx_of(request)
    found = [folder_id]
    frontier = [folder_id]
    while frontier:
        marks = ",".join("?" * len(frontier))
        frontier = [
            r["id"]
            for r in ctx.db.all(f"SELECT id FROM folders WHERE parent_id IN ({marks})", frontier)
        ]
        found.extend(frontier)
    return found


async def update_folder(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    folder = get_folder(ctx, who.tenant_id, path_id(request, "folder_id"))
    body = validate(
        await read_json(request),
        [F("name", str, nullable=False, min_length=1, max_length=255), F("parent_id", str)],
    )
    now = ctx.clock.now()
    if "parent_id" in body:
        parent_id = opt_uuid(body["parent_id"], "parent_id")
        _check_parent(request, folder["space_id"], parent_id)
        if parent_id is not None and parent_id in _descendants(request, folder["id"]):
            raise bad_request("cannot move a folder into itself or one of its descendants")
        ctx.db.run(
            "UPDATE folders SET parent_id = ?, updated_at = ? WHERE id = ?",
            (parent_id, now, folder["id"]),
        )
    if "name" in body:
        ctx.db.run(
            "UPDATE folders SET name = ?, updated_at = ? WHERE id = ?",
            (body["name"], now, folder["id"]),
        )
    return json_response(folder_out(get_folder(ctx, who.tenant_id, folder["id"])))


async def delete_folder(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    folder = get_folder(ctx, who.tenant_id, path_id(request, "folder_id"))
    if folder["deleted_at"] is None:
        now = ctx.clock.now()
        tree = _descendants(request, folder["id"])
        below = tree[1:]
        with ctx.db.tx():
            ctx.db.run(
                "UPDATE folders SET deleted_at = ?, updated_at = ? WHERE id = ?",
                (now, now, folder["id"]),
            )
            if below:
                marks = ",".join("?" * len(below))
                ctx.db.run(
                    f"UPDATE folders SET deleted_at = ?, swept_by = ? WHERE id IN ({marks})"
                    " AND deleted_at IS NULL",
                    (now, folder["id"], *below),
                )
            marks = ",".join("?" * len(tree))
            ctx.db.run(
                f"UPDATE files SET deleted_at = ?, swept_by = ? WHERE folder_id IN ({marks})"
                " AND deleted_at IS NULL",
                (now, folder["id"], *tree),
            )
    return json_response(folder_out(get_folder(ctx, who.tenant_id, folder["id"])))


async def restore_folder(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    folder = get_folder(ctx, who.tenant_id, path_id(request, "folder_id"))
    if folder["deleted_at"] is not None:
        now = ctx.clock.now()
        parent_id = folder["parent_id"]
        if parent_id is not None:
            parent = ctx.db.one("SELECT deleted_at FROM folders WHERE id = ?", (parent_id,))
            if parent is None or parent["deleted_at"] is not None:
                parent_id = None  # its parent is still in the trash: restore to the space root
        with ctx.db.tx():
            ctx.db.run(
                "UPDATE folders SET deleted_at = NULL, swept_by = NULL, parent_id = ?,"
                " updated_at = ? WHERE id = ?",
                (parent_id, now, folder["id"]),
            )
            ctx.db.run(
                "UPDATE folders SET deleted_at = NULL, swept_by = NULL WHERE swept_by = ?",
                (folder["id"],),
            )
            ctx.db.run(
                "UPDATE files SET deleted_at = NULL, swept_by = NULL WHERE swept_by = ?",
                (folder["id"],),
            )
    return json_response(folder_out(get_folder(ctx, who.tenant_id, folder["id"])))


async def get_quota(request: web.Request) -> web.Response:
    return json_response(quota_of(ctx_of(request), principal(request).tenant_id))


def quota_of(ctx: Context, tenant_id: str) -> dict[str, int]:
    """The tenant's Quota object (-1 limits mean unlimited)."""
    tenant = ctx.db.one("SELECT * FROM tenants WHERE id = ?", (tenant_id,))
    assert tenant is not None
    # Soft-deleted files do not count: trash is free in the emulator (see README).
    bytes_used = ctx.db.scalar(
        "SELECT COALESCE(SUM(size), 0) FROM files WHERE tenant_id = ? AND deleted_at IS NULL",
        (tenant_id,),
    )
    now = ctx.clock.now()
    links_used = ctx.db.scalar(
        "SELECT COUNT(*) FROM shares WHERE tenant_id = ? AND revoked = 0"
        " AND (expires_at IS NULL OR expires_at > ?)"
        " AND (max_downloads IS NULL OR download_count < max_downloads)",
        (tenant_id, now),
    )
    return {
        "bytes_used": int(bytes_used),
        "bytes_limit": int(tenant["bytes_limit"]),
        "links_used": int(links_used),
        "links_limit": int(tenant["links_limit"]),
    }


ROUTES = [
    Route("GET", "/spaces", list_spaces, ("spaces:read",)),
    Route("POST", "/spaces", create_space, ("spaces:write",)),
    Route("GET", "/folders", list_folders, ("folders:read",)),
    Route("POST", "/folders", create_folder, ("folders:write",)),
    Route("PATCH", "/folders/{folder_id}", update_folder, ("folders:write",)),
    Route("DELETE", "/folders/{folder_id}", delete_folder, ("folders:write",)),
    Route("POST", "/folders/{folder_id}/restore", restore_folder, ("folders:write",)),
    Route("GET", "/quota", get_quota, ("quota:read",)),
]


def check_bytes_quota(ctx: Context, tenant_id: str, extra: int) -> None:
    """402 quota_exceeded when ``extra`` more bytes would pass the storage limit."""
    quota = quota_of(ctx, tenant_id)
    if quota["bytes_limit"] >= 0 and quota["bytes_used"] + extra > quota["bytes_limit"]:
        raise quota_exceeded()
