"""What a user would otherwise write: curl ``--parallel``, sequential httpx, naive gather.

Part uploads (groups 1 and 2) get the presigned part URLs from the parent and only PUT the
bytes; ingest baselines (group 3) run the whole initiate -> PUT -> complete per file.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import urllib.request
from pathlib import Path
from typing import Any

from ._measure import Meter

API_TIMEOUT = 60.0
NO_TYPE = ("Content-Type",)


# -- the parent's own API calls (not timed) ------------------------------------------------
def api_post(api_url: str, api_key: str, path: str, body: dict[str, Any]) -> Any:
    """One JSON POST to ``{api_url}{path}`` with the partner key."""
    request = urllib.request.Request(
        api_url + path,
        data=json.dumps(body).encode(),
        headers={"X-API-Key": api_key, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=API_TIMEOUT) as response:
        return json.loads(response.read() or b"null")


def part_layout(ticket: dict[str, Any], size: int) -> list[tuple[str, int, int]]:
    """``(url, offset, length)`` for each part of a multipart ticket."""
    part_size = int(ticket["part_size"])
    out = []
    for part in ticket["part_urls"]:
        offset = (int(part["part_number"]) - 1) * part_size
        out.append((str(part["url"]), offset, min(part_size, size - offset)))
    return out


# -- curl --------------------------------------------------------------------------------
def curl_path() -> str | None:
    return shutil.which("curl")


def split_parts(path: Path, parts: list[tuple[str, int, int]], out_dir: Path) -> list[Path]:
    """Copy each part into its own file: curl can upload a file, not a byte range of one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    with open(path, "rb") as src:
        for i, (_url, offset, length) in enumerate(parts, start=1):
            dest = out_dir / f"part-{i:05d}"
            if not dest.exists() or dest.stat().st_size != length:
                with open(dest, "wb") as out:
                    os.copy_file_range(src.fileno(), out.fileno(), length, offset, 0)
            files.append(dest)
    return files


def curl_argv(
    parts: list[tuple[str, int, int]], part_files: list[Path], parallel: int, config: Path
) -> list[str]:
    """``curl --parallel`` uploading every part file to its URL (listed in a config file)."""
    lines = []
    for (url, _offset, _length), part_file in zip(parts, part_files, strict=True):
        lines.append(f'upload-file = "{part_file}"')
        lines.append(f'url = "{url}"')
        lines.append("output = /dev/null")
    config.write_text("\n".join(lines) + "\n")
    curl = curl_path() or "curl"
    return [
        curl,
        "--silent",
        "--show-error",
        "--fail",
        "--parallel",
        "--parallel-max",
        str(parallel),
        "--write-out",
        "%{http_code}\\n",
        "--config",
        str(config),
    ]


# Runs curl and the hash at once; fails when either does. $1 is the file, the rest curl.
_CURL_AND_HASH = (
    'f="$1"; shift; openssl dgst -sha256 "$f" >/dev/null & h=$!; '
    '"$@"; c=$?; wait "$h" || exit 97; exit "$c"'
)


def curl_and_hash_argv(path: Path, curl: list[str]) -> list[str] | None:
    """The ``curl ‖ openssl dgst -sha256`` baseline: ``curl`` (an argv) running beside a
    SHA-256 of ``path``, what a checksummed upload must at least do; None without openssl."""
    if shutil.which("openssl") is None:
        return None
    return ["sh", "-c", _CURL_AND_HASH, "sh", str(path), *curl]


def curl_ok(stdout: str, expected: int) -> bool:
    """True when every transfer answered 200."""
    return stdout.split().count("200") == expected


# -- httpx, one part after another (the sync-SDK style) -------------------------------------
def httpx_sequential(args: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """args: ``path``, ``parts``. Each part read whole into ``bytes``, then PUT."""
    import httpx

    with httpx.Client(timeout=httpx.Timeout(300.0)) as client, open(args["path"], "rb") as fh:
        meter.start()
        for url, offset, length in args["parts"]:
            fh.seek(offset)
            data = fh.read(length)
            response = client.put(url, content=data)
            response.raise_for_status()
            if not response.headers.get("etag"):
                raise RuntimeError("no ETag in the part answer")
        meter.stop()
    return {"bytes": sum(n for _, _, n in args["parts"])}


# -- the naive async pattern ----------------------------------------------------------------
async def naive_gather(args: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """args: ``path``, ``parts``, ``concurrency``.

    ``asyncio.gather`` of aiohttp PUTs, each whole part read as ``bytes`` (a plain blocking
    read on the event loop, as such code usually does), at most ``concurrency`` in flight.
    """
    import aiohttp

    limit = asyncio.Semaphore(int(args["concurrency"]))

    async def put(session: aiohttp.ClientSession, url: str, offset: int, length: int) -> str:
        async with limit:
            with open(args["path"], "rb") as fh:  # noqa: ASYNC230 (naive on purpose)
                fh.seek(offset)
                data = fh.read(length)
            # Presigned URLs that signed no Content-Type reject aiohttp's default one.
            async with session.put(url, data=data, skip_auto_headers=NO_TYPE) as response:
                response.raise_for_status()
                return response.headers["ETag"]

    timeout = aiohttp.ClientTimeout(total=None, sock_read=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        meter.start()
        etags = await asyncio.gather(*(put(session, u, o, n) for u, o, n in args["parts"]))
        meter.stop()
    return {"bytes": sum(n for _, _, n in args["parts"]), "etags": len(etags)}


# -- ingest baselines: initiate -> PUT -> complete per file ---------------------------------
def _complete_body(ticket: dict[str, Any], name: str, size: int, space_id: str) -> dict[str, Any]:
    return {
        "file_id": ticket["file_id"],
        "key": ticket["key"],
        "original_name": name,
        "size": size,
        "space_id": space_id,
    }


def httpx_ingest(args: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """args: ``api_url``, ``api_key``, ``space_id``, ``files``. One file after another;
    single-PUT tickets only (files below the multipart threshold)."""
    import httpx

    headers = {"X-API-Key": args["api_key"]}
    total = 0
    with httpx.Client(base_url=args["api_url"], headers=headers, timeout=60.0) as client:
        meter.start()
        for path in args["files"]:
            name, data = os.path.basename(path), Path(path).read_bytes()
            body = {"original_name": name, "size": len(data), "space_id": args["space_id"]}
            ticket = client.post("/uploads/initiate", json=body).raise_for_status().json()
            put_headers = {}
            if ticket.get("content_type"):
                put_headers["Content-Type"] = ticket["content_type"]
            client.put(ticket["upload_url"], content=data, headers=put_headers).raise_for_status()
            done = _complete_body(ticket, name, len(data), args["space_id"])
            client.post("/uploads/complete", json=done).raise_for_status()
            total += len(data)
        meter.stop()
    return {"bytes": total, "files": len(args["files"])}


async def naive_gather_ingest(args: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """The same with ``asyncio.gather`` over every file at once (aiohttp's default pool of
    100 connections is the only bound), each file read whole as ``bytes``."""
    import aiohttp

    headers = {"X-API-Key": args["api_key"]}
    api = args["api_url"]

    async def one(session: aiohttp.ClientSession, path: str) -> int:
        name, size = os.path.basename(path), os.path.getsize(path)  # noqa: ASYNC240
        body = {"original_name": name, "size": size, "space_id": args["space_id"]}
        async with session.post(f"{api}/uploads/initiate", json=body, headers=headers) as r:
            r.raise_for_status()
            ticket = await r.json()
        with open(path, "rb") as fh:  # noqa: ASYNC230 (naive on purpose)
            data = fh.read()
        signed = ticket.get("content_type")
        put = {"headers": {"Content-Type": signed}} if signed else {"skip_auto_headers": NO_TYPE}
        async with session.put(ticket["upload_url"], data=data, **put) as r:
            r.raise_for_status()
        done = _complete_body(ticket, name, size, args["space_id"])
        async with session.post(f"{api}/uploads/complete", json=done, headers=headers) as r:
            r.raise_for_status()
        return size

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        meter.start()
        sizes = await asyncio.gather(*(one(session, p) for p in args["files"]))
        meter.stop()
    return {"bytes": sum(sizes), "files": len(sizes)}
