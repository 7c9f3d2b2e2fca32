"""Rows -> JSON response objects, and list responses (paged or bare arrays)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from ._clock import iso
from ._context import Context
from ._db import Row
from ._errors import JSON, bad_request, query_int


def space_out(row: Row) -> JSON:
    return {
        "id": row["id"],
        "name": row["name"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def folder_out(row: Row) -> JSON:
    return {
        "id": row["id"],
        "space_id": row["space_id"],
        "parent_id": row["parent_id"],
        "name": row["name"],
        "deleted_at": iso(row["deleted_at"]),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def file_out(row: Row) -> JSON:
    return {
        "id": row["id"],
        "tenant_id": row["tenant_id"],
        "space_id": row["space_id"],
        "folder_id": row["folder_id"],
        "source_app": row["source_app"],
        "client_key": row["client_key"],
        "original_name": row["original_name"],
        "name": row["original_name"],
        "mime": row["mime"],
        "size": row["size"],
        "sha256": row["sha256"],
        "scan_status": row["scan_status"],
        "status": row["status"],
        "created_by": row["created_by"],
        "deleted_at": iso(row["deleted_at"]),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def share_out(row: Row, url: str | None = None) -> JSON:
    out: JSON = {
        "id": row["id"],
        "file_id": row["file_id"],
        "permission": row["permission"],
        "expires_at": iso(row["expires_at"]),
        "max_downloads": row["max_downloads"],
        "download_count": row["download_count"],
        "revoked": bool(row["revoked"]),
        "has_password": row["password_hash"] is not None,
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }
    if url is not None:
        out = {"id": out["id"], "file_id": out["file_id"], "url": url, **out}
    return out


def _encode_cursor(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad_request("invalid cursor") from None
    if not isinstance(values, list):
        raise bad_request("invalid cursor")
    return values


def list_response(
    request: web.Request,
    ctx: Context,
    rows: Sequence[Row],
    shape: Callable[[Row], JSON],
    sort_key: Callable[[Row], tuple[Any, ...]],
) -> web.Response:
    """Keyset pagination over ``rows`` by ``sort_key`` (which must end with a unique id)."""
    limit = query_int(request, "limit", ge=1, le=ctx.config.list_max_limit)
    ordered = sorted(rows, key=sort_key)
    if ctx.config.list_style == "array":
        return web.json_response([shape(r) for r in ordered])
    cursor = request.query.get("cursor")
    if cursor:
        after = _decode_cursor(cursor)
        try:
            ordered = [r for r in ordered if list(sort_key(r)) > after]
        except TypeError:
            raise bad_request("invalid cursor") from None
    page_size = limit or ctx.config.list_page_size
    page = ordered[:page_size]
    next_cursor = _encode_cursor(sort_key(page[-1])) if len(ordered) > page_size else None
    return web.json_response({"items": [shape(r) for r in page], "next_cursor": next_cursor})
