"""Server-side fetch for /uploads/import-url.

Unlike the real service, loopback and private addresses are allowed: the emulator is a
local tool and tests serve their sources from 127.0.0.1. The caller's API key is never
forwarded: requests go through a session with no default headers and no cookies.
"""

from __future__ import annotations

import os
import posixpath
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

import aiohttp
from multidict import CIMultiDictProxy

from ._context import Context
from ._errors import ApiError, bad_request, quota_exceeded
from ._routes_spaces import quota_of

CHUNK = 256 * 1024
MAX_REDIRECTS = 5


@dataclass
class Fetched:
    path: Path
    size: int
    name: str
    content_type: str | None


def _open_tmp(tmp_dir: str) -> tuple[Path, IO[bytes]]:
    path = Path(tmp_dir) / f"import-{secrets.token_hex(8)}"
    return path, open(path, "wb")


def _name_from(headers: CIMultiDictProxy[str], url: str) -> str:
    disposition = headers.get("Content-Disposition")
    if disposition:
        for piece in disposition.split(";"):
            k, _, v = piece.strip().partition("=")
            if k.lower() == "filename*" and "''" in v:
                return unquote(v.split("''", 1)[1]).strip()
            if k.lower() == "filename" and v.strip('"'):
                return v.strip().strip('"')
    return unquote(posixpath.basename(urlsplit(url).path)) or "download"


def _usable(name: str) -> str:
    name = os.path.basename(name.replace("\\", "/")).replace("\x00", "")
    return name if name.strip() and name not in {".", ".."} else "download"


async def fetch_to_file(ctx: Context, url: str, tenant_id: str) -> Fetched:
    """Stream ``url`` into a temp file, enforcing the import cap and the tenant quota."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in {"http", "https"}:
        raise bad_request("only http(s) URLs can be imported")
    assert ctx.http is not None
    cap = ctx.config.import_max_bytes
    quota = quota_of(ctx, tenant_id)
    room = None if quota["bytes_limit"] < 0 else quota["bytes_limit"] - quota["bytes_used"]
    path, fh = _open_tmp(ctx.tmp_dir)
    size = 0
    try:
        try:
            async with ctx.http.get(url, allow_redirects=True, max_redirects=MAX_REDIRECTS) as resp:
                if resp.status >= 400:
                    raise bad_request(f"the source answered HTTP {resp.status}")
                declared = resp.content_length
                if declared is not None and declared > cap:
                    raise ApiError(413, f"the import limit is {cap} bytes")
                if declared is not None and room is not None and declared > room:
                    raise quota_exceeded()
                async for chunk in resp.content.iter_chunked(CHUNK):
                    size += len(chunk)
                    if size > cap:
                        raise ApiError(413, f"the import limit is {cap} bytes")
                    fh.write(chunk)
                name = _usable(_name_from(resp.headers, str(resp.url)))
                content_type = resp.headers.get("Content-Type")
        except aiohttp.TooManyRedirects:
            raise bad_request("too many redirects") from None
        except (aiohttp.ClientError, ValueError, OSError) as exc:
            raise bad_request(f"could not fetch the URL: {exc.__class__.__name__}") from None
        finally:
            fh.close()
        if size == 0:
            raise bad_request("the source returned an empty body")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    mime = content_type.split(";")[0].strip() if content_type else None
    return Fetched(path=path, size=size, name=name, content_type=mime)
