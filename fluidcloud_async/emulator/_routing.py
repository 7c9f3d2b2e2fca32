"""Route declarations and tenant-scoped lookups shared by the route modules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._auth import Principal
from ._context import CTX_KEY, Context
from ._db import Row
from ._errors import not_found, parse_uuid

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# aiohttp >= 3.13 warns on plain string request keys; older versions lack RequestKey.
if TYPE_CHECKING or hasattr(web, "RequestKey"):
    PRINCIPAL: Any = web.RequestKey("fluidcloud_principal", Principal)
else:  # pragma: no cover - old aiohttp
    PRINCIPAL = "fluidcloud_principal"


@dataclass(frozen=True)
class Route:
    """One API route: path relative to /api/v1, required scopes, rate-limit bucket."""

    method: str
    path: str
    handler: Handler
    scopes: tuple[str, ...]
    bucket: str | None = None


def ctx_of(request: web.Request) -> Context:
    return request.app[CTX_KEY]


def principal(request: web.Request) -> Principal:
    who: Principal = request[PRINCIPAL]
    return who


def path_id(request: web.Request, name: str) -> str:
    return parse_uuid(request.match_info[name], name)


def get_space(ctx: Context, tenant_id: str, space_id: str) -> Row:
    row = ctx.db.one("SELECT * FROM spaces WHERE id = ? AND tenant_id = ?", (space_id, tenant_id))
    if row is None:
        raise not_found("space not found")
    return row


def get_folder(ctx: Context, tenant_id: str, folder_id: str, *, live: bool = False) -> Row:
    row = ctx.db.one("SELECT * FROM folders WHERE id = ? AND tenant_id = ?", (folder_id, tenant_id))
    if row is None or (live and row["deleted_at"] is not None):
        raise not_found("folder not found")
    return row


def get_file(ctx: Context, tenant_id: str, file_id: str) -> Row:
    row = ctx.db.one("SELECT * FROM files WHERE id = ? AND tenant_id = ?", (file_id, tenant_id))
    if row is None:
        raise not_found("file not found")
    return row
