"""/shares routes: create (the only response with the raw-link url), list, revoke."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from aiohttp import web

from ._errors import (
    ApiError,
    F,
    conflict_not_ready,
    json_response,
    parse_uuid,
    query_bool,
    quota_exceeded,
    read_json,
    validate,
    validation_error,
)
from ._routes_spaces import quota_of
from ._routing import Route, ctx_of, get_file, path_id, principal
from ._shapes import list_response, share_out

PERMISSIONS = ("view", "download")
DAY = 86400.0


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_share(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    body = validate(
        await read_json(request),
        [
            F("file_id", str, required=True, nullable=False),
            F("permission", str, nullable=False),
            F("expires_in_days", int, ge=1, le=365),
            F("max_downloads", int, ge=1),
            F("password", str),
        ],
    )
    permission = body.get("permission", "view")
    if permission not in PERMISSIONS:
        raise validation_error(
            [
                {
                    "loc": ["body", "permission"],
                    "msg": "Input should be 'view' or 'download'",
                    "type": "literal_error",
                    "input": permission,
                }
            ]
        )
    file = get_file(ctx, who.tenant_id, parse_uuid(body["file_id"], "file_id"))
    if file["deleted_at"] is not None:
        raise ApiError(404, "file is in the trash")
    if file["scan_status"] != "clean":
        raise conflict_not_ready()
    quota = quota_of(ctx, who.tenant_id)
    if quota["links_limit"] >= 0 and quota["links_used"] >= quota["links_limit"]:
        raise quota_exceeded()
    now = ctx.clock.now()
    days = body.get("expires_in_days")
    password = body.get("password")
    # Stored, never enforced at serve time: the documented behaviour of the real service.
    password_hash = (
        None
        if password is None
        else hashlib.sha256(b"fc-emulator:" + password.encode()).hexdigest()
    )
    token = secrets.token_urlsafe(16)
    share_id = str(uuid.uuid4())
    ctx.db.run(
        "INSERT INTO shares (id, tenant_id, file_id, token_hash, permission, expires_at,"
        " max_downloads, password_hash, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            share_id,
            who.tenant_id,
            file["id"],
            token_hash(token),
            permission,
            None if days is None else now + days * DAY,
            body.get("max_downloads"),
            password_hash,
            now,
            now,
        ),
    )
    row = ctx.db.one("SELECT * FROM shares WHERE id = ?", (share_id,))
    assert row is not None
    return json_response(share_out(row, url=f"{ctx.raw_origin}/s/{token}"))


async def list_shares(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    sql = "SELECT * FROM shares WHERE tenant_id = ?"
    params: list[object] = [who.tenant_id]
    raw_file = request.query.get("file_id")
    if raw_file:
        file = get_file(ctx, who.tenant_id, parse_uuid(raw_file, "file_id"))
        sql += " AND file_id = ?"
        params.append(file["id"])
    if not query_bool(request, "include_inactive"):
        sql += (
            " AND revoked = 0 AND (expires_at IS NULL OR expires_at > ?)"
            " AND (max_downloads IS NULL OR download_count < max_downloads)"
        )
        params.append(ctx.clock.now())
    rows = ctx.db.all(sql, params)
    return list_response(request, ctx, rows, share_out, lambda r: (r["created_at"], r["id"]))


async def revoke_share(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    share_id = path_id(request, "share_id")
    row = ctx.db.one(
        "SELECT id, revoked FROM shares WHERE id = ? AND tenant_id = ?", (share_id, who.tenant_id)
    )
    if row is None:
        raise ApiError(404, "share not found")
    if not row["revoked"]:
        ctx.db.run(
            "UPDATE shares SET revoked = 1, updated_at = ? WHERE id = ?",
            (ctx.clock.now(), share_id),
        )
    return web.Response(status=204)


ROUTES = [
    Route("POST", "/shares", create_share, ("shares:write",), bucket="share_create"),
    Route("GET", "/shares", list_shares, ("shares:read",)),
    Route("DELETE", "/shares/{share_id}", revoke_share, ("shares:write",)),
]
