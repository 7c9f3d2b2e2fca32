"""The raw-link server (``/s/<token>``): public, never looks at an API key."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ._context import CTX_KEY, Context
from ._routes_shares import token_hash
from ._serve import stream_object
from ._storage import content_disposition


def _detail(status: int, detail: str) -> web.Response:
    return web.json_response({"detail": detail}, status=status)


async def serve_link(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX_KEY]
    if request.method == "GET":
        ctx.stats.raw_gets += 1
    if ctx.faults.latency:
        await asyncio.sleep(ctx.faults.latency)
    share = ctx.db.one(
        "SELECT * FROM shares WHERE token_hash = ?", (token_hash(request.match_info["token"]),)
    )
    if share is None:
        return _detail(404, "link not found")
    if share["revoked"]:
        return _detail(410, "link revoked")
    now = ctx.clock.now()
    if share["expires_at"] is not None and now >= share["expires_at"]:
        return _detail(410, "link expired")
    file = ctx.db.one("SELECT * FROM files WHERE id = ?", (share["file_id"],))
    if file is None or file["deleted_at"] is not None:
        return _detail(404, "file not found")
    if file["scan_status"] != "clean":
        return _detail(409, "file is not ready: scan_status must be clean")
    cap = share["max_downloads"]
    if cap is not None and share["download_count"] >= cap:
        return _detail(410, "download limit reached")
    size = await ctx.store.stat(file["key"])
    if size is None:
        return _detail(404, "file bytes not found")
    range_header = request.headers.get("Range", "")
    # A download is a GET from byte 0: resumed or seeking range reads of the same
    # download do not use up max_downloads.
    if request.method == "GET" and (not range_header or range_header.startswith("bytes=0-")):
        ctx.db.run(
            "UPDATE shares SET download_count = download_count + 1 WHERE id = ?", (share["id"],)
        )
    disposition = "inline" if share["permission"] == "view" else "attachment"
    headers = {
        "Content-Type": file["mime"] or "application/octet-stream",
        "Content-Disposition": content_disposition(disposition, file["original_name"]),
        "Cache-Control": "public, max-age=3600"
        if share["expires_at"] is None
        else "private, max-age=0",
    }
    return await stream_object(
        request, ctx.store, file["key"], size, headers, ctx.faults.storage_bandwidth
    )


def build_raw_app(ctx: Context) -> web.Application:
    """aiohttp app serving GET/HEAD ``/s/{token}``."""
    app = web.Application()
    app[CTX_KEY] = ctx
    app.router.add_get("/s/{token}", serve_link)
    return app
