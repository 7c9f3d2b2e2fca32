"""The presigned-URL storage server (local backend), answering like S3."""

from __future__ import annotations

import asyncio
import secrets
from xml.sax.saxutils import escape

from aiohttp import web

from ._context import CTX_KEY, Context
from ._serve import CHUNK, Pacer, stream_object
from ._signing import SignatureProblem
from ._storage import MAX_PARTS, validate_key
from ._storage_local import LocalStorage, PartWriter, UnsafeKey


def s3_error(status: int, code: str, message: str) -> web.Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>"
    )
    return web.Response(status=status, text=body, content_type="application/xml")


def _local(ctx: Context) -> LocalStorage:
    assert ctx.local is not None
    return ctx.local


def _check_target(ctx: Context, request: web.Request) -> tuple[str, web.Response | None]:
    bucket = request.match_info["bucket"]
    key = request.match_info["key"]
    if bucket != ctx.config.bucket:
        return key, s3_error(404, "NoSuchBucket", "The specified bucket does not exist")
    problem = validate_key(key)
    if problem is None:
        try:
            _local(ctx).object_path(key)
        except UnsafeKey as exc:
            problem = str(exc)
    if problem is not None:
        return key, s3_error(400, "InvalidArgument", f"Invalid object key: {problem}")
    return key, None


async def _drain(request: web.Request) -> None:
    while await request.content.read(CHUNK):
        pass


async def put_object(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX_KEY]
    faults, stats = ctx.faults, ctx.stats
    stats.storage_puts += 1
    if faults.latency:
        await asyncio.sleep(faults.latency)
    key, error = _check_target(ctx, request)
    if error is not None:
        return error
    params = dict(request.query)
    try:
        ctx.signer.verify(
            "PUT", f"/{ctx.config.bucket}/{key}", params, request.headers.get("Content-Type")
        )
    except SignatureProblem as exc:
        return s3_error(exc.status, exc.code, exc.message)
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    length = request.content_length
    if chunked or length is None:
        return s3_error(411, "MissingContentLength", "You must provide the Content-Length header.")
    store = _local(ctx)
    upload_id = params.get("uploadId")
    part_number = 0
    if upload_id is not None or "partNumber" in params:
        if store.upload_key(upload_id or "") != key:
            return s3_error(404, "NoSuchUpload", "The specified upload does not exist.")
        try:
            part_number = int(params.get("partNumber", ""))
        except ValueError:
            part_number = 0
        if not 1 <= part_number <= MAX_PARTS:
            return s3_error(400, "InvalidArgument", "partNumber must be 1..10000")

    if faults.take("drop_next_storage_puts") or faults.roll(faults.storage_drop_rate):
        stats.faults["storage_drop"] += 1
        await request.content.read(max(1, length // 2) if length else 0)
        if request.transport is not None:
            request.transport.abort()
        # aiohttp takes a CancelledError from a handler as "client went away": it answers
        # nothing and logs nothing, which is exactly a dropped connection.
        raise asyncio.CancelledError
    if faults.take("fail_next_storage_puts") or faults.roll(faults.storage_error_rate):
        stats.faults["storage_error"] += 1
        await _drain(request)
        status = faults.choice((500, 503))
        code = "InternalError" if status == 500 else "SlowDown"
        return s3_error(status, code, "Injected storage fault")

    writer = store.new_writer()
    etag = await _receive(request, writer, faults.storage_bandwidth)
    if etag is None:
        return s3_error(400, "IncompleteBody", "The request body ended before Content-Length.")
    if writer.size != length:
        writer.abort()
        return s3_error(400, "IncompleteBody", "Body length does not match Content-Length.")
    if part_number:
        store.commit_part(upload_id or "", part_number, writer, etag)
    else:
        store.commit_object(key, writer, etag)
    stats.storage_puts_ok += 1
    stats.storage_put_bytes += writer.size
    stall = faults.storage_stall
    if faults.take("stall_next_storage_puts"):
        stall = max(stall, faults.stall_next_seconds)
    if stall:
        stats.faults["storage_stall"] += 1
        await asyncio.sleep(stall)
    return web.Response(status=200, headers={"ETag": f'"{etag}"'})


async def _receive(request: web.Request, writer: PartWriter, bandwidth: float | None) -> str | None:
    """Stream the body into ``writer``; the MD5 hex, or None if the body was cut short."""
    pacer = Pacer(bandwidth)
    try:
        while True:
            chunk = await request.content.read(pacer.chunk_size(CHUNK))
            if not chunk:
                break
            writer.write(chunk)
            await pacer.pace(len(chunk))
    except asyncio.CancelledError:
        writer.abort()
        raise
    except Exception:
        writer.abort()
        return None
    return writer.finish()


async def get_object(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX_KEY]
    ctx.stats.storage_gets += 1
    if ctx.faults.latency:
        await asyncio.sleep(ctx.faults.latency)
    key, error = _check_target(ctx, request)
    if error is not None:
        return error
    params = dict(request.query)
    try:
        ctx.signer.verify("GET", f"/{ctx.config.bucket}/{key}", params, None)
    except SignatureProblem as exc:
        return s3_error(exc.status, exc.code, exc.message)
    size = await _local(ctx).stat(key)
    if size is None:
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    headers = {
        "Content-Type": params.get("response-content-type", "application/octet-stream"),
    }
    if "response-content-disposition" in params:
        headers["Content-Disposition"] = params["response-content-disposition"]
    return await stream_object(
        request, _local(ctx), key, size, headers, ctx.faults.storage_bandwidth
    )


def build_storage_app(ctx: Context) -> web.Application:
    """aiohttp app serving ``/{bucket}/{key}`` presigned PUT/GET/HEAD."""
    app = web.Application()
    app[CTX_KEY] = ctx
    app.router.add_put("/{bucket}/{key:.+}", put_object)
    app.router.add_get("/{bucket}/{key:.+}", get_object)  # also registers HEAD
    return app
