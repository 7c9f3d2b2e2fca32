"""/uploads: initiate validation, single and multipart completion rules, EICAR, import-url."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from fluidcloud_async.emulator import EICAR, Emulator, EmulatorConfig

from .conftest import Api, sha

PART = 64 * 1024
MP_CONFIG = EmulatorConfig(scan_delay=None, multipart_threshold=100_000, part_size=PART)


def init_body(space_id: str, size: int, **extra: Any) -> dict[str, Any]:
    return {"original_name": "f.bin", "size": size, "space_id": space_id, **extra}


async def test_initiate_single_ticket(api: Api) -> None:
    space = await api.space()
    ticket = await api.ok("POST", "/uploads/initiate", json=init_body(space["id"], 10))
    assert ticket["mode"] == "single"
    assert ticket["content_type"] is None
    assert ticket["upload_id"] is None and ticket["part_urls"] is None
    assert "/incoming/" in ticket["key"]
    assert "X-Amz-SignedHeaders=host" in ticket["upload_url"]
    typed = await api.ok(
        "POST", "/uploads/initiate", json=init_body(space["id"], 10, content_type="image/png")
    )
    assert typed["content_type"] == "image/png"
    assert "content-type" in typed["upload_url"]


async def test_zero_byte_upload_is_single(api: Api) -> None:
    space = await api.space()
    file = await api.upload(space["id"], b"", "empty.txt")
    assert file["size"] == 0
    assert file["sha256"] == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"size": 1}, "original_name"),
        ({"original_name": "a", "size": -1}, "size"),
        ({"original_name": "a", "size": "12"}, "size"),
        ({"original_name": "a", "size": 1.5}, "size"),
        ({"original_name": "a", "size": True}, "size"),
        ({"original_name": "", "size": 1}, "original_name"),
        ({"original_name": "a"}, "size"),
        ({"original_name": "a", "size": 1, "content_type": 5}, "content_type"),
    ],
)
async def test_initiate_validation_is_422(api: Api, body: dict[str, Any], loc: str) -> None:
    space = await api.space()
    status, detail, _ = await api.call(
        "POST", "/uploads/initiate", json={"space_id": space["id"], **body}
    )
    assert status == 422
    assert ["body", loc] in [e["loc"] for e in detail["detail"]]


async def test_initiate_bad_ids_and_missing_space(api: Api) -> None:
    space = await api.space()
    assert (await api.call("POST", "/uploads/initiate", json=init_body("nope", 1)))[0] == 400
    bad_folder = init_body(space["id"], 1, folder_id="nope")
    assert (await api.call("POST", "/uploads/initiate", json=bad_folder))[0] == 400
    missing = "00000000-0000-4000-8000-000000000000"
    assert (await api.call("POST", "/uploads/initiate", json=init_body(missing, 1)))[0] == 404
    no_folder = init_body(space["id"], 1, folder_id=missing)
    assert (await api.call("POST", "/uploads/initiate", json=no_folder))[0] == 404


async def test_quota_402_at_initiate_and_complete(api: Api, emu: Emulator) -> None:
    key = emu.add_tenant(bytes_limit=10)
    space = await api.space(key=key)
    status, body, _ = await api.call(
        "POST", "/uploads/initiate", key=key, json=init_body(space["id"], 11)
    )
    assert (status, body) == (402, {"detail": "quota_exceeded"})
    # Two uploads initiated within quota; the second completion crosses it.
    tickets = [
        await api.ok("POST", "/uploads/initiate", key=key, json=init_body(space["id"], 6))
        for _ in range(2)
    ]
    for t in tickets:
        assert (await api.put(t["upload_url"], b"123456"))[0] == 200
    done = [
        await api.call(
            "POST",
            "/uploads/complete",
            key=key,
            json={
                "file_id": t["file_id"],
                "key": t["key"],
                "original_name": "f",
                "size": 6,
                "space_id": space["id"],
            },
        )
        for t in tickets
    ]
    assert [d[0] for d in done] == [200, 402]
    assert done[1][1] == {"detail": "quota_exceeded"}


@pytest.mark.parametrize("emu_config", [EmulatorConfig(max_object_size=1000, scan_delay=None)])
async def test_too_large_is_413(api: Api) -> None:
    space = await api.space()
    assert (await api.call("POST", "/uploads/initiate", json=init_body(space["id"], 1001)))[
        0
    ] == 413
    assert (await api.call("POST", "/uploads/initiate", json=init_body(space["id"], 1000)))[
        0
    ] == 200


async def _single(api: Api, space_id: str, data: bytes) -> dict[str, Any]:
    ticket = await api.ok("POST", "/uploads/initiate", json=init_body(space_id, len(data)))
    assert (await api.put(ticket["upload_url"], data))[0] == 200
    return {
        "file_id": ticket["file_id"],
        "key": ticket["key"],
        "original_name": "f.bin",
        "size": len(data),
        "space_id": space_id,
    }


async def test_complete_single_checks(api: Api, emu: Emulator) -> None:
    space = await api.space()
    body = await _single(api, space["id"], b"abc")
    for bad in (
        {"size": 4},
        {"key": body["key"].replace("f.bin", "g.bin")},
        {"key": "tenants/x/incoming/y/z"},
        {"sha256": sha(b"abd")},
        {"sha256": "zz"},
        {"upload_id": "u", "parts": [{"PartNumber": 1, "ETag": "e"}]},
    ):
        status, detail, _ = await api.call("POST", "/uploads/complete", json=body | bad)
        assert status == 400, (bad, detail)
    # Never PUT: the object does not exist.
    ticket = await api.ok("POST", "/uploads/initiate", json=init_body(space["id"], 3))
    empty = body | {"file_id": ticket["file_id"], "key": ticket["key"]}
    assert (await api.call("POST", "/uploads/complete", json=empty))[0] == 400
    # Another tenant cannot complete it (its space is not theirs).
    other = emu.add_tenant()
    assert (await api.call("POST", "/uploads/complete", key=other, json=body))[0] == 404
    file = await api.ok("POST", "/uploads/complete", json=body | {"sha256": sha(b"abc")})
    assert file["sha256"] == sha(b"abc")
    # A retry of a completed upload answers the same file (the response may have been lost).
    again = await api.ok("POST", "/uploads/complete", json=body)
    assert again["id"] == file["id"]
    assert emu.stats.completes == 10


@pytest.mark.parametrize("emu_config", [MP_CONFIG])
async def test_multipart_round_trip(api: Api, emu: Emulator) -> None:
    space = await api.space()
    data = bytes(range(256)) * 1000  # 256_000 bytes: 4 parts of 64 KiB
    file = await api.upload(space["id"], data, "big.bin", clean=True)
    assert file["size"] == len(data)
    assert emu.stats.storage_puts == 4
    url = (await api.ok("GET", f"/files/{file['id']}/download"))["url"]
    async with api.session.get(url) as resp:
        assert await resp.read() == data
    async with api.session.get(url, headers={"Range": f"bytes={PART - 5}-{PART + 4}"}) as resp:
        assert resp.status == 206
        assert await resp.read() == data[PART - 5 : PART + 5]


async def _multipart(api: Api, space_id: str, data: bytes) -> tuple[dict[str, Any], list[Any]]:
    ticket = await api.ok("POST", "/uploads/initiate", json=init_body(space_id, len(data)))
    assert ticket["mode"] == "multipart"
    assert ticket["content_type"] is None
    parts = []
    for p in ticket["part_urls"]:
        n = p["part_number"]
        status, _, headers = await api.put(p["url"], data[(n - 1) * PART : n * PART])
        assert status == 200
        parts.append({"PartNumber": n, "ETag": headers["ETag"]})
    body = {
        "file_id": ticket["file_id"],
        "key": ticket["key"],
        "original_name": "f.bin",
        "size": len(data),
        "space_id": space_id,
        "upload_id": ticket["upload_id"],
    }
    return body, parts


@pytest.mark.parametrize("emu_config", [MP_CONFIG])
async def test_multipart_validation(api: Api) -> None:
    space = await api.space()
    data = b"z" * (PART * 2 + 100)
    body, parts = await _multipart(api, space["id"], data)
    assert len(parts) == 3
    wrong_etag = [parts[0], {"PartNumber": 2, "ETag": '"' + "0" * 32 + '"'}, parts[2]]
    cases = {
        "no parts": {"parts": None},
        "empty parts": {"parts": []},
        "missing part": {"parts": [parts[0], parts[2]]},
        "unordered": {"parts": [parts[1], parts[0], parts[2]]},
        "duplicate": {"parts": [parts[0], parts[0], parts[1], parts[2]]},
        "wrong etag": {"parts": wrong_etag},
        "no upload_id": {"upload_id": None, "parts": parts},
        "other upload_id": {"upload_id": "x", "parts": parts},
    }
    for name, change in cases.items():
        status, detail, _ = await api.call("POST", "/uploads/complete", json=body | change)
        assert status == 400, (name, detail)
    bad_shape = body | {"parts": [{"PartNumber": 0, "ETag": "x"}]}
    assert (await api.call("POST", "/uploads/complete", json=bad_shape))[0] == 422
    # Unquoted ETags are accepted like S3 does.
    unquoted = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"].strip('"')} for p in parts]
    file = await api.ok("POST", "/uploads/complete", json=body | {"parts": unquoted})
    assert file["size"] == len(data)


@pytest.mark.parametrize("emu_config", [MP_CONFIG])
async def test_multipart_wrong_part_size(api: Api) -> None:
    space = await api.space()
    data = b"q" * (PART * 2 + 10)
    ticket = await api.ok("POST", "/uploads/initiate", json=init_body(space["id"], len(data)))
    urls = [p["url"] for p in ticket["part_urls"]]
    # Slice at the wrong boundaries: same total, but part 1 is short.
    chunks = [data[: PART - 1], data[PART - 1 : 2 * PART], data[2 * PART :]]
    parts = []
    for n, (url, chunk) in enumerate(zip(urls, chunks, strict=True), start=1):
        status, _, headers = await api.put(url, chunk)
        assert status == 200
        parts.append({"PartNumber": n, "ETag": headers["ETag"]})
    body = {
        "file_id": ticket["file_id"],
        "key": ticket["key"],
        "original_name": "f",
        "size": len(data),
        "space_id": space["id"],
        "upload_id": ticket["upload_id"],
        "parts": parts,
    }
    status, detail, _ = await api.call("POST", "/uploads/complete", json=body)
    assert status == 400
    assert "part_size" in detail["detail"]
    # Re-uploading the part with the right bytes fixes it (a retried part replaces the old).
    status, _, headers = await api.put(urls[0], data[:PART])
    parts[0]["ETag"] = headers["ETag"]
    status, _, headers = await api.put(urls[1], data[PART : 2 * PART])
    parts[1]["ETag"] = headers["ETag"]
    assert (await api.call("POST", "/uploads/complete", json=body))[0] == 200


@pytest.mark.parametrize(
    "emu_config", [EmulatorConfig(scan_delay=None, multipart_threshold=1, part_size=16)]
)
async def test_part_size_is_raised_to_stay_within_10000_parts(api: Api) -> None:
    space = await api.space()
    ticket = await api.ok("POST", "/uploads/initiate", json=init_body(space["id"], 1_000_000))
    assert ticket["part_size"] == 100
    assert len(ticket["part_urls"]) == 10_000
    assert ticket["part_urls"][-1]["part_number"] == 10_000


@pytest.mark.parametrize("emu_config", [EmulatorConfig(scan_delay=0.05)])
async def test_scan_verdicts_and_eicar(api: Api, emu: Emulator) -> None:
    space = await api.space()
    clean = await api.upload(space["id"], b"harmless", "ok.txt")
    # The signature straddles the scanner's 1 MiB read boundary.
    padding = b"\0" * (1024 * 1024 - 10)
    bad = await api.upload(space["id"], padding + EICAR + b"tail", "eicar.com")
    bad_no_sha = await api.upload(space["id"], EICAR, "eicar2.com")
    assert bad["scan_status"] == "pending"
    await emu.wait_for_scans()
    got = await api.ok("GET", f"/files/{clean['id']}")
    assert (got["scan_status"], got["status"]) == ("clean", "ready")
    for f in (bad, bad_no_sha):
        got = await api.ok("GET", f"/files/{f['id']}")
        assert got["scan_status"] == "infected"
        assert (await api.call("POST", "/shares", json={"file_id": f["id"]}))[0] == 409
        assert (await api.call("GET", f"/files/{f['id']}/download"))[0] == 409


# -- import-url ---------------------------------------------------------------------------
@pytest_asyncio.fixture
async def source() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A loopback HTTP server to import from; records the headers it received."""
    seen: list[dict[str, str]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(dict(request.headers))
        name = request.match_info["name"]
        if name == "missing":
            return web.Response(status=404)
        if name == "empty":
            return web.Response(body=b"")
        if name == "hop":
            raise web.HTTPFound("/files/photo.jpg")
        headers = {}
        if name == "cd":
            headers["Content-Disposition"] = 'attachment; filename="report.pdf"'
        return web.Response(
            body=b"imported bytes " * 100, headers=headers, content_type="image/jpeg"
        )

    app = web.Application()
    app.router.add_get("/files/{name}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_import_url(
    api: Api, emu: Emulator, source: tuple[str, list[dict[str, str]]]
) -> None:
    origin, seen = source
    space = await api.space()
    file = await api.ok(
        "POST",
        "/uploads/import-url",
        json={"url": f"{origin}/files/photo.jpg", "space_id": space["id"]},
    )
    assert file["original_name"] == "photo.jpg"
    assert file["size"] == 1500
    assert file["mime"] == "image/jpeg"
    assert file["scan_status"] == "pending"
    named = await api.ok(
        "POST",
        "/uploads/import-url",
        json={"url": f"{origin}/files/hop", "space_id": space["id"], "name": "mine.jpg"},
    )
    assert named["original_name"] == "mine.jpg"
    cd = await api.ok(
        "POST", "/uploads/import-url", json={"url": f"{origin}/files/cd", "space_id": space["id"]}
    )
    assert cd["original_name"] == "report.pdf"
    for headers in seen:
        assert emu.api_key not in " ".join(headers.values())
        assert "X-API-Key" not in headers and "Authorization" not in headers
    assert (await api.ok("GET", "/quota"))["bytes_used"] == 4500


async def test_import_url_errors(
    api: Api, emu: Emulator, source: tuple[str, list[dict[str, str]]]
) -> None:
    origin, _ = source
    space = await api.space()
    sid = space["id"]
    for url in (
        "ftp://example.com/x",
        "file:///etc/passwd",
        f"{origin}/files/missing",
        f"{origin}/files/empty",
        "http://127.0.0.1:1/unreachable",
    ):
        status, body, _ = await api.call(
            "POST", "/uploads/import-url", json={"url": url, "space_id": sid}
        )
        assert status == 400, (url, body)
    assert (await api.call("POST", "/uploads/import-url", json={"space_id": sid}))[0] == 422
    emu.config.import_max_bytes = 100
    status, _, _ = await api.call(
        "POST", "/uploads/import-url", json={"url": f"{origin}/files/a.jpg", "space_id": sid}
    )
    assert status == 413
    emu.config.import_max_bytes = 10**9
    emu.set_limits(emu.api_key, bytes_limit=10)
    status, body, _ = await api.call(
        "POST", "/uploads/import-url", json={"url": f"{origin}/files/a.jpg", "space_id": sid}
    )
    assert (status, body) == (402, {"detail": "quota_exceeded"})
    await asyncio.sleep(0)
