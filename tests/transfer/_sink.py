"""A discarding S3-like sink plus the two upload API calls, for memory tests.

Run as ``python -m tests.transfer._sink PART_SIZE``: prints its origin, serves until
stdin closes. Bodies are received into one reused buffer and only counted.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import Any

_buffer = memoryview(bytearray(1 << 20))


class Sink(asyncio.BufferedProtocol):
    def __init__(self, origin: list[str], part_size: int) -> None:
        self.origin = origin
        self.part_size = part_size
        self.head = bytearray()
        self.left = 0
        self.body: bytearray | None = None
        self.request: tuple[str, str] = ("", "")
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return _buffer

    def buffer_updated(self, nbytes: int) -> None:
        data = _buffer[:nbytes]
        while data:
            if self.left:
                take = min(self.left, len(data))
                if self.body is not None:
                    self.body += data[:take]
                self.left -= take
                data = data[take:]
                if not self.left:
                    self.answer()
                continue
            self.head += data
            data = data[:0]
            cut = self.head.find(b"\r\n\r\n")
            if cut < 0:
                return
            lines = bytes(self.head[:cut]).decode("latin-1").split("\r\n")
            rest = bytes(self.head[cut + 4 :])
            self.head.clear()
            method, target, _ = lines[0].split(" ", 2)
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
            }
            self.request = (method, target)
            self.left = int(headers.get("content-length", "0"))
            self.body = bytearray() if target.startswith("/api/") else None
            if not self.left:
                self.answer()
            data = memoryview(rest)

    def answer(self) -> None:
        _method, target = self.request
        if self.body is None:
            self.reply(200, b"", {"ETag": '"etag-' + target.rsplit("=", 1)[-1] + '"'})
            return
        body = json.loads(bytes(self.body) or b"{}")
        self.body = None
        if target.endswith("/initiate"):
            size = body["size"]
            count = max(1, -(-size // self.part_size))
            fid = str(uuid.uuid4())
            urls = [
                {"part_number": n, "url": f"{self.origin[0]}/b/{fid}?partNumber={n}"}
                for n in range(1, count + 1)
            ]
            out = {
                "file_id": fid,
                "key": f"k/{fid}",
                "mode": "multipart",
                "content_type": None,
                "upload_id": "u",
                "part_size": self.part_size,
                "part_urls": urls,
            }
        else:
            out = {
                "id": body["file_id"],
                "original_name": body["original_name"],
                "size": body["size"],
                "sha256": body.get("sha256"),
                "scan_status": "clean",
            }
        self.reply(200, json.dumps(out).encode(), {"Content-Type": "application/json"})

    def reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        head = f"HTTP/1.1 {status} OK\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.transport.write(head.encode() + b"\r\n" + body)


async def main(part_size: int) -> None:
    loop = asyncio.get_running_loop()
    origin: list[str] = []
    server = await loop.create_server(lambda: Sink(origin, part_size), "127.0.0.1", 0)
    origin.append(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    print(origin[0], flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
