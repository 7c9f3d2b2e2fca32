"""The machine's ceiling: raw TCP, ``os.sendfile`` over several sockets to the same sink.

Each socket runs in a thread (``sendfile`` and ``recv`` release the GIL) and sends a minimal
HTTP/1.1 PUT head before each part, so the sink treats it exactly like the other clients;
no byte of the body passes through user space on the sending side.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

from ._measure import Meter

RESPONSE_LIMIT = 64 * 1024


def _read_response(sock: socket.socket) -> bytes:
    """One response head (the sink's PUT answers have an empty body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk or len(data) > RESPONSE_LIMIT:
            raise ConnectionError(f"bad response: {data[:200]!r}")
        data += chunk
    return data


def _send_parts(
    host: str, port: int, fd: int, parts: list[tuple[str, int, int]], errors: list[BaseException]
) -> None:
    try:
        with socket.create_connection((host, port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for target, offset, length in parts:
                head = f"PUT {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n\r\n"
                sock.sendall(head.encode())
                sent = 0
                while sent < length:  # bounded: each call sends > 0 bytes or raises
                    n = os.sendfile(sock.fileno(), fd, offset + sent, length - sent)
                    if n == 0:
                        raise ConnectionError("sendfile sent nothing (file shorter than part?)")
                    sent += n
                status = _read_response(sock).split(b" ", 2)[1]
                if status != b"200":
                    raise ConnectionError(f"PUT {target} answered {status!r}")
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)


def raw_sendfile(args: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """args: ``path``, ``parts`` ([url, offset, length]...), ``sockets``."""
    parts = [(str(u), int(o), int(n)) for u, o, n in args["parts"]]
    first = urlsplit(parts[0][0])
    host, port = first.hostname or "127.0.0.1", first.port or 80
    targets = [(urlsplit(u).path + "?" + urlsplit(u).query, o, n) for u, o, n in parts]
    sockets = max(1, min(int(args["sockets"]), len(targets)))
    shares = [targets[i::sockets] for i in range(sockets)]
    errors: list[BaseException] = []
    fd = os.open(args["path"], os.O_RDONLY)
    try:
        threads = [
            threading.Thread(target=_send_parts, args=(host, port, fd, share, errors))
            for share in shares
        ]
        meter.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        meter.stop()
    finally:
        os.close(fd)
    if errors:
        raise errors[0]
    return {"bytes": sum(n for _, _, n in targets), "sockets": sockets}
