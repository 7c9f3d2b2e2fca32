"""A discarding storage sink that answers like presigned S3, plus the two API calls of an upload.

One raw ``asyncio.BufferedProtocol`` server on one port:

* ``PUT <anything>`` with a ``Content-Length``: the body is received into one reusable
  buffer and counted, never hashed or stored; the answer is ``200`` with a quoted ETag
  (``100 Continue`` first when the client expects it, as curl does). No length: ``411``.
* ``POST /api/v1/uploads/initiate``: a multipart ticket (parts of ``part_size`` bytes, every
  part URL pointing back at this sink) at or above ``multipart_threshold``, else single.
* ``POST /api/v1/uploads/complete``: a FileOut echoing size and sha256, after checking that
  the parts and ETags are the ones handed out.
* ``GET /api/v1/files/{id}``: the completed file, scan ``clean``.

It runs in its own process (see ``_procs``) so that its CPU never counts as the client's,
and it is cheap enough not to be the bottleneck: a body byte costs one ``recv_into``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any
from urllib.parse import urlsplit

MiB = 1024 * 1024
RECV_BUFFER = 4 * MiB
MAX_HEAD = 64 * 1024
MAX_JSON_BODY = 4 * MiB

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 411: "Length Required"}


def etag_for(target: str) -> str:
    """S3-style quoted ETag (hex MD5 of the request target: cheap, stable, distinct per part)."""
    return '"' + hashlib.md5(target.encode(), usedforsecurity=False).hexdigest() + '"'


def _response(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _json(status: int, payload: Any) -> bytes:
    return _response(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


class SinkState:
    """Counters and the uploads handed out; shared by every connection."""

    def __init__(self, origin: str, part_size: int, multipart_threshold: int) -> None:
        self.origin = origin
        self.part_size = part_size
        self.multipart_threshold = multipart_threshold
        # Every connection receives into this one buffer: a read is handled to completion
        # (counted, or head bytes copied out) before the loop can call get_buffer again.
        self.buffer = memoryview(bytearray(RECV_BUFFER))
        self.body_bytes = 0
        self.puts = 0
        self.api_requests = 0
        self.completes = 0
        self.connections = 0
        self.uploads: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, Any]] = {}
        # Storage elsewhere (the TLS group's nginx): part URLs point there and carry the
        # ETag to answer in an ``etag`` query parameter (nginx echoes it, quoted).
        self.storage_origin: str | None = None

    def storage_url(self, key: str, query: str = "") -> str:
        if self.storage_origin is None:
            return f"{self.origin}/bucket/{key}" + (f"?{query}" if query else "")
        path = f"/bucket/{key}"
        etag = "etag=" + etag_for(path).strip('"')
        return f"{self.storage_origin}{path}?" + (f"{query}&{etag}" if query else etag)

    def stats(self) -> dict[str, Any]:
        return {
            "body_bytes": self.body_bytes,
            "puts": self.puts,
            "api_requests": self.api_requests,
            "completes": self.completes,
            "connections": self.connections,
        }

    # -- the fake API ------------------------------------------------------------------
    def initiate(self, body: dict[str, Any]) -> bytes:
        size = body.get("size")
        name = body.get("original_name")
        if not isinstance(size, int) or size < 0 or not isinstance(name, str):
            return _json(400, {"detail": "size and original_name are required"})
        file_id = str(uuid.uuid4())
        key = f"bench/{file_id}/{name}"
        ticket: dict[str, Any] = {
            "file_id": file_id,
            "key": key,
            "mode": "single",
            "content_type": body.get("content_type"),
            "upload_url": None,
            "upload_id": None,
            "part_size": None,
            "part_urls": None,
        }
        if size > 0 and size >= self.multipart_threshold:
            count = -(-size // self.part_size)
            upload_id = uuid.uuid4().hex
            urls = [
                {
                    "part_number": n,
                    "url": self.storage_url(key, f"uploadId={upload_id}&partNumber={n}"),
                }
                for n in range(1, count + 1)
            ]
            ticket.update(
                mode="multipart",
                content_type=None,
                upload_id=upload_id,
                part_size=self.part_size,
                part_urls=urls,
            )
        else:
            ticket["upload_url"] = self.storage_url(key)
        self.uploads[file_id] = {**body, **ticket}
        return _json(200, ticket)

    def complete(self, body: dict[str, Any]) -> bytes:
        self.completes += 1
        upload = self.uploads.pop(str(body.get("file_id")), None)
        if upload is None or body.get("size") != upload["size"]:
            return _json(400, {"detail": "unknown file_id or size mismatch"})
        if upload["mode"] == "multipart":
            expected = [
                {"PartNumber": p["part_number"], "ETag": etag_for(urlsplit(p["url"]).path)}
                for p in upload["part_urls"]
            ]
            # ETags are derived from the path only, so the query string does not matter.
            if body.get("parts") != expected or body.get("upload_id") != upload["upload_id"]:
                return _json(400, {"detail": "parts do not match the ticket"})
        record = {
            "id": upload["file_id"],
            "original_name": upload["original_name"],
            "name": upload["original_name"],
            "space_id": upload.get("space_id"),
            "folder_id": upload.get("folder_id"),
            "client_key": body.get("client_key"),
            "mime": body.get("mime"),
            "size": upload["size"],
            "sha256": body.get("sha256"),
            "scan_status": "clean",
            "status": "active",
            "source_app": "api",
        }
        self.files[record["id"]] = record
        return _json(200, record)

    def api(self, method: str, target: str, body: bytes) -> bytes:
        self.api_requests += 1
        path = urlsplit(target).path
        if method == "GET" and path.startswith("/api/v1/files/"):
            record = self.files.get(path.rsplit("/", 1)[-1])
            return _json(200, record) if record else _json(404, {"detail": "no such file"})
        if method != "POST" or path not in ("/api/v1/uploads/initiate", "/api/v1/uploads/complete"):
            return _json(404, {"detail": f"not served by the sink: {method} {path}"})
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return _json(400, {"detail": "invalid JSON"})
        if not isinstance(payload, dict):
            return _json(400, {"detail": "a JSON object is required"})
        if path.endswith("/initiate"):
            return self.initiate(payload)
        return self.complete(payload)


class SinkProtocol(asyncio.BufferedProtocol):
    """One keep-alive HTTP/1.1 connection: heads are parsed, PUT bodies only counted."""

    def __init__(self, state: SinkState) -> None:
        self.state = state
        self.transport: asyncio.Transport | None = None
        self.head = bytearray()
        self.body_left = 0
        self.collect: bytearray | None = None  # API bodies are kept; PUT bodies are not
        self.request: tuple[str, str, bool] = ("", "", False)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.state.connections += 1

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.state.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._feed(self.state.buffer[:nbytes])

    def _feed(self, data: memoryview) -> None:
        pos, end = 0, len(data)
        while pos < end:  # each pass consumes at least one byte, or returns
            if self.body_left:
                take = min(self.body_left, end - pos)
                if self.collect is not None:
                    self.collect += data[pos : pos + take]
                else:
                    self.state.body_bytes += take
                self.body_left -= take
                pos += take
                if not self.body_left:
                    self._finish()
                continue
            self.head += data[pos:end]
            pos = end
            cut = self.head.find(b"\r\n\r\n")
            if cut < 0:
                if len(self.head) > MAX_HEAD:
                    self._close()
                return
            rest = bytes(self.head[cut + 4 :])
            head = bytes(self.head[:cut])
            self.head.clear()
            if not self._start(head):
                return
            if rest:
                # Bytes after the head (body, or a pipelined request): feed them again.
                data, pos, end = memoryview(rest), 0, len(rest)

    def _start(self, head: bytes) -> bool:
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            self._close()
            return False
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        keep_alive = headers.get("connection", "").lower() != "close"
        self.request = (method, target, keep_alive)
        length_text = headers.get("content-length")
        if length_text is None or "chunked" in headers.get("transfer-encoding", "").lower():
            if method == "PUT":
                self._reply(_response(411), close=True)
                return False
            length = 0
        else:
            length = int(length_text)
        is_api = target.startswith("/api/")
        if is_api and length > MAX_JSON_BODY:
            self._reply(_json(400, {"detail": "body too large"}), close=True)
            return False
        self.collect = bytearray() if is_api else None
        self.body_left = length
        if length and headers.get("expect", "").lower() == "100-continue":
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if not length:
            self._finish()
        return True

    def _finish(self) -> None:
        method, target, keep_alive = self.request
        if self.collect is not None:
            answer = self.state.api(method, target, bytes(self.collect))
            self.collect = None
        elif method == "PUT":
            self.state.puts += 1
            answer = _response(200, headers={"ETag": etag_for(urlsplit(target).path)})
        else:
            answer = _response(404)
        self._reply(answer, close=not keep_alive)

    def _reply(self, data: bytes, *, close: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(data)
        if close:
            self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


class Sink:
    """The running sink (see :func:`start`)."""

    def __init__(self, server: asyncio.Server, state: SinkState) -> None:
        self._server = server
        self.state = state
        self.info = {"origin": state.origin, "part_size": state.part_size}

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    async def aclose(self) -> None:
        self._server.close()
        await self._server.wait_closed()


async def start(config: dict[str, Any]) -> Sink:
    """Listen on 127.0.0.1 (free port); config: ``part_size``, ``multipart_threshold``,
    optionally ``storage_origin`` (storage URLs point there, see ``SinkState``)."""
    loop = asyncio.get_running_loop()
    state = SinkState("", int(config.get("part_size", 16 * MiB)), 0)
    state.multipart_threshold = int(config.get("multipart_threshold", 100_000_000))
    server = await loop.create_server(lambda: SinkProtocol(state), "127.0.0.1", 0, backlog=512)
    port = server.sockets[0].getsockname()[1]
    state.origin = f"http://127.0.0.1:{port}"
    state.storage_origin = config.get("storage_origin")
    return Sink(server, state)
