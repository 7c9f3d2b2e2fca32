"""Streaming object bytes into HTTP responses: Range parsing and bandwidth pacing."""

from __future__ import annotations

import asyncio
import re
import time

from aiohttp import web

from ._storage import BinaryReader, ObjectStore, close_after

CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Byte range ``[start, end)`` for a single-range header, None to serve it all.

    Multi-range and malformed headers are ignored (a full 200), as RFC 9110 allows.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiable
        return max(0, size - suffix), size
    start = int(first)
    if start >= size:
        raise RangeNotSatisfiable
    end = size if not last else min(int(last) + 1, size)
    if end <= start:
        raise RangeNotSatisfiable
    return start, end


class Pacer:
    """Sleeps so that a connection stays under ``rate`` bytes per second."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.started = time.monotonic()
        self.sent = 0

    def chunk_size(self, default: int) -> int:
        if not self.rate:
            return default
        return max(1024, min(default, int(self.rate / 20)))

    async def pace(self, n: int) -> None:
        self.sent += n
        if not self.rate:
            return
        ahead = self.sent / self.rate - (time.monotonic() - self.started)
        if ahead > 0:
            await asyncio.sleep(ahead)


async def stream_object(
    request: web.Request,
    store: ObjectStore,
    key: str,
    size: int,
    headers: dict[str, str],
    bandwidth: float | None,
) -> web.StreamResponse:
    """Answer GET/HEAD for an object, honouring a single ``Range``."""
    headers = {**headers, "Accept-Ranges": "bytes"}
    try:
        byte_range = parse_range(request.headers.get("Range"), size)
    except RangeNotSatisfiable:
        return web.Response(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    status = 200
    start, end = 0, size
    if byte_range is not None:
        start, end = byte_range
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = end - start
    await response.prepare(request)
    if request.method == "HEAD" or end == start:
        await response.write_eof()
        return response
    pacer = Pacer(bandwidth)
    reader: BinaryReader = await store.open_reader(key, start, end)
    read: asyncio.Future[bytes] | None = None
    try:
        while True:
            read = asyncio.ensure_future(asyncio.to_thread(reader.read, pacer.chunk_size(CHUNK)))
            chunk = await asyncio.shield(read)
            if not chunk:
                break
            await response.write(chunk)
            await pacer.pace(len(chunk))
    finally:
        await close_after(reader, read)
    await response.write_eof()
    return response
