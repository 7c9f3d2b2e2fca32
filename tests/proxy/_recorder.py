"""A proxy.py plugin that appends every request the proxy receives to a JSON-lines file.

For a CONNECT it sees only the CONNECT request (the tunnel carries TLS bytes); for a plain
http request it sees the whole request line and headers, as any proxy would.
"""

from __future__ import annotations

import json
import os
from typing import Any

from proxy.http.parser import HttpParser
from proxy.http.proxy import HttpProxyBasePlugin

LOG_ENV = "FLUIDCLOUD_TEST_PROXY_LOG"


def _text(value: bytes | None) -> str:
    return (value or b"").decode("latin-1")


class Recorder(HttpProxyBasePlugin):
    def handle_client_request(self, request: HttpParser) -> HttpParser:
        headers = {_text(k): _text(v) for k, v in (request.headers or {}).values()}
        record: dict[str, Any] = {
            "method": _text(request.method),
            "host": _text(request.host),
            "port": request.port,
            "path": _text(request.path),
            "headers": headers,
        }
        with open(os.environ[LOG_ENV], "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        return request
