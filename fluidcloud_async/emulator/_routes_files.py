"""/files routes: list, resolve, get, download, preview, update, delete, restore."""

from __future__ import annotations

from aiohttp import web

from ._context import Context
from ._db import Row
from ._errors import (
    JSON,
    ApiError,
    F,
    bad_request,
    conflict_not_ready,
    json_response,
    parse_uuid,
    query_bool,
    read_json,
    require_query,
    validate,
    validation_error,
)
from ._routing import Route, ctx_of, get_file, get_folder, get_space, path_id, principal
from ._shapes import file_out, list_response

FILE_STATUSES = frozenset({"draft", "ready", "blocked"})
_CONVERTED = frozenset({"image/heic", "image/heif", "image/tiff", "image/bmp", "image/x-ms-bmp"})


def check_name(name: str, field: str = "original_name") -> None:
    """422 for names a filesystem or URL would choke on."""
    bad = (
        not name.strip()
        or len(name) > 255
        or name in {".", ".."}
        or any(c in name for c in "/\\\x00")
    )
    if bad:
        raise validation_error(
            [
                {
                    "loc": ["body", field],
                    "msg": "Value error, invalid file name",
                    "type": "value_error",
                    "input": name,
                }
            ]
        )


async def list_files(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    trash = query_bool(request, "trash")
    status = request.query.get("status")
    if status is not None and status not in FILE_STATUSES:
        raise bad_request(f"invalid status filter; one of {sorted(FILE_STATUSES)}")
    sql = "SELECT * FROM files WHERE tenant_id = ?"
    params: list[object] = [who.tenant_id]
    if trash:
        # One tenant-wide trash of files deleted on their own (not swept with a folder).
        sql += " AND deleted_at IS NOT NULL AND swept_by IS NULL"
    else:
        space_id = parse_uuid(require_query(request, "space_id"), "space_id")
        folder = request.query.get("folder_id")
        folder_id = parse_uuid(folder, "folder_id") if folder else None
        get_space(ctx, who.tenant_id, space_id)
        if (
            folder_id is not None
            and get_folder(ctx, who.tenant_id, folder_id)["space_id"] != space_id
        ):
            raise bad_request("folder is in another space")
        sql += " AND deleted_at IS NULL AND space_id = ? AND folder_id IS ?"
        params += [space_id, folder_id]
    if status is not None:
        sql += " AND status = ?"
        params.append(status)
    app = request.query.get("app")
    if app:
        sql += " AND source_app = ?"
        params.append(app)
    rows = ctx.db.all(sql, params)
    return list_response(request, ctx, rows, file_out, lambda r: (r["original_name"], r["id"]))


async def resolve_file(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    client_key = require_query(request, "client_key")
    sql = "SELECT * FROM files WHERE tenant_id = ? AND client_key = ? AND deleted_at IS NULL"
    params: list[object] = [who.tenant_id, client_key]
    app = request.query.get("app")
    if app:
        sql += " AND source_app = ?"
        params.append(app)
    row = ctx.db.one(sql + " ORDER BY created_at DESC, rowid DESC LIMIT 1", params)
    if row is None:
        raise ApiError(404, "no live file with this client_key")
    return json_response(file_out(row))


async def read_file(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    return json_response(file_out(get_file(ctx, who.tenant_id, path_id(request, "file_id"))))


def _servable(ctx: Context, tenant_id: str, file_id: str) -> Row:
    row = get_file(ctx, tenant_id, file_id)
    if row["deleted_at"] is not None:
        raise ApiError(404, "file is in the trash")
    if row["scan_status"] != "clean":
        raise conflict_not_ready()
    return row


async def download_file(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    row = _servable(ctx, who.tenant_id, path_id(request, "file_id"))
    url = await ctx.store.presign_get(
        row["key"],
        filename=row["original_name"],
        disposition="attachment",
        content_type=row["mime"],
    )
    return json_response({"url": url})


def preview_kind(mime: str | None) -> tuple[str, str, bool] | None:
    """(kind, served mime, converted) for previewable types, else None."""
    mime = (mime or "").split(";")[0].strip().lower()
    if mime in _CONVERTED:
        return "image", "image/jpeg", True
    for prefix, kind in (("image/", "image"), ("video/", "video"), ("audio/", "audio")):
        if mime.startswith(prefix):
            return kind, mime, False
    if mime == "application/pdf":
        return "pdf", mime, False
    if mime.startswith("text/"):
        return "text", mime, False
    return None


async def preview_file(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    row = _servable(ctx, who.tenant_id, path_id(request, "file_id"))
    found = preview_kind(row["mime"])
    if found is None:
        raise ApiError(415, f"no in-app preview for {row['mime'] or 'this file type'}")
    kind, mime, converted = found
    if converted and not row["size"]:
        raise ApiError(422, "preview could not be built for this image")
    # Conversion is not emulated: the URL serves the original bytes labelled image/jpeg.
    url = await ctx.store.presign_get(
        row["key"], filename=row["original_name"], disposition="inline", content_type=mime
    )
    return json_response({"url": url, "kind": kind, "mime": mime, "converted": converted})


async def update_file(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    row = get_file(ctx, who.tenant_id, path_id(request, "file_id"))
    body = validate(
        await read_json(request),
        [F("original_name", str, nullable=False, min_length=1), F("folder_id", str)],
    )
    changes: JSON = {}
    if "original_name" in body:
        check_name(body["original_name"])
        changes["original_name"] = body["original_name"]
    if "folder_id" in body:
        folder_id = body["folder_id"]
        if folder_id is not None:
            folder = get_folder(ctx, who.tenant_id, parse_uuid(folder_id, "folder_id"), live=True)
            if folder["space_id"] != row["space_id"]:
                raise bad_request("destination folder is in another space")
            folder_id = folder["id"]
        changes["folder_id"] = folder_id
    if changes:
        sets = ", ".join(f"{name} = ?" for name in changes)
        ctx.db.run(
            f"UPDATE files SET {sets}, updated_at = ? WHERE id = ?",
            (*changes.values(), ctx.clock.now(), row["id"]),
        )
    return json_response(file_out(get_file(ctx, who.tenant_id, row["id"])))


async def delete_file(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    row = get_file(ctx, who.tenant_id, path_id(request, "file_id"))
    if row["deleted_at"] is None:
        now = ctx.clock.now()
        ctx.db.run(
            "UPDATE files SET deleted_at = ?, updated_at = ? WHERE id = ?", (now, now, row["id"])
        )
    return json_response(file_out(get_file(ctx, who.tenant_id, row["id"])))


async def restore_file(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    row = get_file(ctx, who.tenant_id, path_id(request, "file_id"))
    if row["deleted_at"] is not None:
        folder_id = row["folder_id"]
        if folder_id is not None:
            folder = ctx.db.one("SELECT deleted_at FROM folders WHERE id = ?", (folder_id,))
            if folder is None or folder["deleted_at"] is not None:
                folder_id = None  # its folder is still in the trash: restore to the space root
        ctx.db.run(
            "UPDATE files SET deleted_at = NULL, swept_by = NULL, folder_id = ?, updated_at = ?"
            " WHERE id = ?",
            (folder_id, ctx.clock.now(), row["id"]),
        )
    return json_response(file_out(get_file(ctx, who.tenant_id, row["id"])))


ROUTES = [
    Route("GET", "/files", list_files, ("files:read",)),
    Route("GET", "/files/resolve", resolve_file, ("files:read",)),
    Route("GET", "/files/{file_id}", read_file, ("files:read",)),
    Route("GET", "/files/{file_id}/download", download_file, ("files:read",)),
    Route("GET", "/files/{file_id}/preview", preview_file, ("files:read",)),
    Route("PATCH", "/files/{file_id}", update_file, ("files:write",)),
    Route("DELETE", "/files/{file_id}", delete_file, ("files:write",)),
    Route("POST", "/files/{file_id}/restore", restore_file, ("files:write",)),
]
