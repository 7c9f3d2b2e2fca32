"""/uploads routes: initiate, complete, import-url."""

from __future__ import annotations

import asyncio
import mimetypes
import re
import uuid

from aiohttp import web

from ._context import Context
from ._db import Row
from ._errors import (
    JSON,
    ApiError,
    F,
    bad_request,
    check_value,
    json_response,
    opt_uuid,
    parse_uuid,
    read_json,
    validate,
    validation_error,
)
from ._imports import fetch_to_file
from ._routes_files import check_name
from ._routes_spaces import check_bytes_quota
from ._routing import Route, ctx_of, get_folder, get_space, principal
from ._scan import hash_object
from ._shapes import file_out
from ._storage import MAX_PARTS, StorageError

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def storage_key(tenant_id: str, space_id: str, file_id: str, name: str) -> str:
    """Server-built key under the tenant's quarantine prefix (the name is sanitised)."""
    safe = _SAFE.sub("_", name).lstrip(".")[:120] or "file"
    return f"tenants/{tenant_id}/incoming/{space_id}/{file_id}/{safe}"


def _key_prefix(tenant_id: str, space_id: str) -> str:
    return f"tenants/{tenant_id}/incoming/{space_id}/"


def _target_folder(ctx: Context, tenant_id: str, space_id: str, folder_id: str | None) -> None:
    if folder_id is None:
        return
    folder = get_folder(ctx, tenant_id, folder_id, live=True)
    if folder["space_id"] != space_id:
        raise bad_request("folder is in another space")


def multipart_layout(size: int, part_size: int) -> tuple[int, int]:
    """(part size, part count), raising the part size to stay within 10,000 parts."""
    part_size = max(part_size, -(-size // MAX_PARTS))
    return part_size, -(-size // part_size)


async def initiate(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    body = validate(
        await read_json(request),
        [
            F("original_name", str, required=True, nullable=False, min_length=1),
            F("size", int, required=True, nullable=False, ge=0),
            F("space_id", str, required=True, nullable=False),
            F("content_type", str),
            F("folder_id", str),
        ],
    )
    check_name(body["original_name"])
    space_id = parse_uuid(body["space_id"], "space_id")
    folder_id = opt_uuid(body.get("folder_id"), "folder_id")
    get_space(ctx, who.tenant_id, space_id)
    _target_folder(ctx, who.tenant_id, space_id, folder_id)
    size: int = body["size"]
    if size > ctx.config.max_object_size:
        raise ApiError(413, f"file too large: the limit is {ctx.config.max_object_size} bytes")
    check_bytes_quota(ctx, who.tenant_id, size)
    file_id = str(uuid.uuid4())
    key = storage_key(who.tenant_id, space_id, file_id, body["original_name"])
    content_type: str | None = body.get("content_type") or None
    out: JSON = {
        "file_id": file_id,
        "key": key,
        "mode": "single",
        "content_type": content_type,
        "upload_url": None,
        "upload_id": None,
        "part_size": None,
        "part_urls": None,
    }
    upload_id = None
    part_size = None
    if size > 0 and size >= ctx.config.multipart_threshold:
        part_size, count = multipart_layout(size, ctx.config.part_size)
        upload_id = await ctx.store.start_multipart(key)
        urls = await ctx.store.presign_parts(key, upload_id, count)
        out.update(
            mode="multipart",
            content_type=None,
            upload_id=upload_id,
            part_size=part_size,
            part_urls=[{"part_number": n, "url": u} for n, u in enumerate(urls, start=1)],
        )
    else:
        out["upload_url"] = await ctx.store.presign_put(key, content_type)
    ctx.db.run(
        "INSERT INTO uploads (file_id, tenant_id, space_id, folder_id, key, mode, size,"
        " content_type, upload_id, part_size, original_name, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            file_id,
            who.tenant_id,
            space_id,
            folder_id,
            key,
            out["mode"],
            size,
            content_type,
            upload_id,
            part_size,
            body["original_name"],
            ctx.clock.now(),
        ),
    )
    return json_response(out)


_PART_NUMBER = F("PartNumber", int, required=True, nullable=False, ge=1)
_ETAG = F("ETag", str, required=True, nullable=False, min_length=1)


def _parse_parts(raw: object) -> list[tuple[int, str]] | None:
    if raw is None:
        return None
    errors: list[JSON] = []
    parts: list[tuple[int, str]] = []
    assert isinstance(raw, list)
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            errors.append(
                {
                    "loc": ["body", "parts", i],
                    "msg": "Input should be a valid dictionary",
                    "type": "dict_type",
                    "input": item,
                }
            )
            continue
        for spec in (_PART_NUMBER, _ETAG):
            loc: list[str | int] = ["body", "parts", i, spec.name]
            if spec.name not in item:
                errors.append({"loc": loc, "msg": "Field required", "type": "missing"})
            elif (err := check_value(loc, spec, item[spec.name])) is not None:
                errors.append(err)
        if not errors:
            parts.append((item["PartNumber"], item["ETag"]))
    if errors:
        raise validation_error(errors)
    return parts


async def complete(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    ctx.stats.completes += 1
    body = validate(
        await read_json(request),
        [
            F("file_id", str, required=True, nullable=False),
            F("key", str, required=True, nullable=False, min_length=1),
            F("original_name", str, required=True, nullable=False, min_length=1),
            F("size", int, required=True, nullable=False, ge=0),
            F("space_id", str, required=True, nullable=False),
            F("upload_id", str),
            F("parts", list),
            F("mime", str),
            F("sha256", str),
            F("folder_id", str),
            F("client_key", str),
        ],
    )
    parts = _parse_parts(body.get("parts"))
    check_name(body["original_name"])
    file_id = parse_uuid(body["file_id"], "file_id")
    space_id = parse_uuid(body["space_id"], "space_id")
    folder_id = opt_uuid(body.get("folder_id"), "folder_id")
    get_space(ctx, who.tenant_id, space_id)
    _target_folder(ctx, who.tenant_id, space_id, folder_id)
    sha = body.get("sha256")
    if sha is not None and not _HEX64.match(sha):
        raise bad_request("sha256 must be 64 hex characters")
    async with ctx.file_lock(file_id):
        done = ctx.db.one(
            "SELECT * FROM files WHERE id = ? AND tenant_id = ?", (file_id, who.tenant_id)
        )
        if done is not None:
            # A retry after a lost response: answer with the file that was created.
            if done["key"] != body["key"]:
                raise bad_request("key does not match this file_id")
            row = done
        else:
            row = await _finish(ctx, request, body, parts, file_id, space_id, folder_id)
    response = json_response(file_out(row))
    if ctx.faults.take("drop_next_complete_responses"):
        ctx.stats.faults["complete_drop"] += 1
        if request.transport is not None:
            request.transport.abort()
        # aiohttp takes a CancelledError from a handler as "client went away": it answers
        # nothing and logs nothing, which is exactly a dropped connection.
        raise asyncio.CancelledError
    return response


async def _finish(
    ctx: Context,
    request: web.Request,
    body: JSON,
    parts: list[tuple[int, str]] | None,
    file_id: str,
    space_id: str,
    folder_id: str | None,
) -> Row:
    who = principal(request)
    upload = ctx.db.one(
        "SELECT * FROM uploads WHERE file_id = ? AND tenant_id = ?", (file_id, who.tenant_id)
    )
    key: str = body["key"]
    if upload is None or not key.startswith(_key_prefix(who.tenant_id, space_id)):
        raise bad_request("key does not belong to this tenant/space, or unknown file_id")
    if upload["key"] != key or upload["space_id"] != space_id:
        raise bad_request("key/space_id do not match the initiated upload")
    size: int = body["size"]
    if size != upload["size"]:
        raise bad_request(f"size {size} differs from the initiated size {upload['size']}")
    if "folder_id" not in body:
        folder_id = upload["folder_id"]
        if (
            folder_id is not None
            and ctx.db.one(
                "SELECT 1 FROM folders WHERE id = ? AND deleted_at IS NULL", (folder_id,)
            )
            is None
        ):
            folder_id = None
    try:
        if upload["mode"] == "multipart":
            if not body.get("upload_id"):
                raise bad_request("multipart upload: upload_id is required")
            if body["upload_id"] != upload["upload_id"]:
                raise bad_request("upload_id does not match the initiated upload")
            if not parts:
                raise bad_request("multipart completion requires parts")
            await ctx.store.finish_multipart(
                key, upload["upload_id"], parts, upload["part_size"], size
            )
        else:
            if body.get("upload_id") or parts:
                raise bad_request("this upload is single-part: send no upload_id/parts")
            await ctx.store.finish_single(key, size)
    except StorageError as exc:
        raise bad_request(str(exc)) from None
    check_bytes_quota(ctx, who.tenant_id, size)
    sha = body.get("sha256")
    if sha is not None and not ctx.config.verify_sha256:
        sha = sha.lower()  # the documented server: "stored as metadata", unverified
    elif sha is not None:
        actual, _ = await hash_object(ctx.store, key)
        if actual != sha.lower():
            raise bad_request("sha256 does not match the uploaded bytes")
        sha = actual
    mime = body.get("mime") or upload["content_type"] or _guess(body["original_name"])
    return create_file(
        ctx,
        tenant_id=who.tenant_id,
        file_id=file_id,
        space_id=space_id,
        folder_id=folder_id,
        key=key,
        name=body["original_name"],
        mime=mime,
        size=size,
        sha256=sha,
        client_key=body.get("client_key"),
        created_by=who.created_by,
    )


def _guess(name: str) -> str | None:
    return mimetypes.guess_type(name, strict=False)[0]


def create_file(
    ctx: Context,
    *,
    tenant_id: str,
    file_id: str,
    space_id: str,
    folder_id: str | None,
    key: str,
    name: str,
    mime: str | None,
    size: int,
    sha256: str | None,
    client_key: str | None,
    created_by: str,
) -> Row:
    """Insert a pending file (superseding older live files with its client_key) and scan it."""
    now = ctx.clock.now()
    with ctx.db.tx():
        if client_key is not None:
            ctx.db.run(
                "UPDATE files SET deleted_at = ?, updated_at = ? WHERE tenant_id = ?"
                " AND space_id = ? AND client_key = ? AND deleted_at IS NULL",
                (now, now, tenant_id, space_id, client_key),
            )
        ctx.db.run(
            "INSERT INTO files (id, tenant_id, space_id, folder_id, source_app, client_key,"
            " original_name, mime, size, sha256, scan_status, status, created_by, key,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 'draft',"
            " ?, ?, ?, ?)",
            (
                file_id,
                tenant_id,
                space_id,
                folder_id,
                ctx.config.source_app,
                client_key,
                name,
                mime,
                size,
                sha256,
                created_by,
                key,
                now,
                now,
            ),
        )
    ctx.scanner.schedule(file_id)
    row = ctx.db.one("SELECT * FROM files WHERE id = ?", (file_id,))
    assert row is not None
    return row


async def import_url(request: web.Request) -> web.Response:
    ctx, who = ctx_of(request), principal(request)
    body = validate(
        await read_json(request),
        [
            F("url", str, required=True, nullable=False, min_length=1),
            F("space_id", str, required=True, nullable=False),
            F("folder_id", str),
            F("name", str),
        ],
    )
    space_id = parse_uuid(body["space_id"], "space_id")
    folder_id = opt_uuid(body.get("folder_id"), "folder_id")
    get_space(ctx, who.tenant_id, space_id)
    _target_folder(ctx, who.tenant_id, space_id, folder_id)
    if body.get("name") is not None:
        check_name(body["name"], "name")
    fetched = await fetch_to_file(ctx, body["url"], who.tenant_id)
    try:
        name = body.get("name") or fetched.name
        check_bytes_quota(ctx, who.tenant_id, fetched.size)
        file_id = str(uuid.uuid4())
        key = storage_key(who.tenant_id, space_id, file_id, name)
        await ctx.store.put_file(key, fetched.path)
    finally:
        fetched.path.unlink(missing_ok=True)
    row = create_file(
        ctx,
        tenant_id=who.tenant_id,
        file_id=file_id,
        space_id=space_id,
        folder_id=folder_id,
        key=key,
        name=name,
        mime=fetched.content_type or _guess(name),
        size=fetched.size,
        sha256=None,
        client_key=None,
        created_by=who.created_by,
    )
    return json_response(file_out(row))


ROUTES = [
    Route("POST", "/uploads/initiate", initiate, ("files:write",), bucket="initiate"),
    Route("POST", "/uploads/complete", complete, ("files:write",)),
    Route("POST", "/uploads/import-url", import_url, ("files:write",), bucket="import"),
]
