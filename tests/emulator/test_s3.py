"""S3 mode against moto's standalone server on loopback (plain aiohttp, no SDK)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from fluidcloud_async.emulator import Emulator, EmulatorConfig, S3Storage

from .conftest import Api

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

MiB = 1024 * 1024
BUCKET = "fc-emulator-test"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    client.close()
    try:
        yield endpoint
    finally:
        server.stop()
        if server._server is not None:  # stop() leaves the listening socket open
            server._server.server_close()


@pytest_asyncio.fixture
async def s3_emu(moto_endpoint: str) -> AsyncIterator[Emulator]:
    config = EmulatorConfig(
        scan_delay=0.01,
        multipart_threshold=6 * MiB,
        part_size=5 * MiB,  # S3's minimum for non-final parts; moto enforces it
        storage_backend=S3Storage(
            endpoint_url=moto_endpoint,
            bucket=BUCKET,
            access_key="testing",
            secret_key="testing",
        ),
    )
    async with Emulator(config) as emu:
        yield emu


async def _put(session: aiohttp.ClientSession, url: str, data: bytes, ctype: str | None) -> str:
    import io

    headers = {"Content-Type": ctype} if ctype else {}
    async with session.put(
        url, data=io.BytesIO(data), headers=headers, skip_auto_headers=["Content-Type"]
    ) as resp:
        assert resp.status == 200, await resp.text()
        return resp.headers["ETag"]


async def _complete(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    file: dict[str, Any] = await api.ok("POST", "/uploads/complete", json=body)
    return file


async def test_single_put_via_s3(s3_emu: Emulator, moto_endpoint: str) -> None:
    data = b"single object through real presigned S3 URLs\n" * 100
    async with aiohttp.ClientSession() as session:
        api = Api(session, s3_emu)
        space = await api.space()
        ticket = await api.ok(
            "POST",
            "/uploads/initiate",
            json={
                "original_name": "notes.txt",
                "size": len(data),
                "space_id": space["id"],
                "content_type": "text/plain",
            },
        )
        assert ticket["mode"] == "single"
        assert ticket["upload_url"].startswith(moto_endpoint)
        assert "X-Amz-Signature=" in ticket["upload_url"]
        await _put(session, ticket["upload_url"], data, "text/plain")
        body = {
            "file_id": ticket["file_id"],
            "key": ticket["key"],
            "original_name": "notes.txt",
            "size": len(data),
            "space_id": space["id"],
        }
        bad = await api.call(
            "POST", "/uploads/complete", json=body | {"sha256": hashlib.sha256(b"x").hexdigest()}
        )
        assert bad[0] == 400
        file = await _complete(api, body | {"sha256": hashlib.sha256(data).hexdigest()})
        await s3_emu.wait_for_scans()
        assert (await api.ok("GET", f"/files/{file['id']}"))["scan_status"] == "clean"
        url = (await api.ok("GET", f"/files/{file['id']}/download"))["url"]
        assert url.startswith(moto_endpoint)
        async with session.get(url) as resp:
            assert resp.status == 200
            assert await resp.read() == data
        share = await api.ok("POST", "/shares", json={"file_id": file["id"]})
        async with session.get(share["url"], headers={"Range": "bytes=7-12"}) as resp:
            assert resp.status == 206
            assert await resp.read() == data[7:13]


async def test_multipart_via_s3(s3_emu: Emulator) -> None:
    data = bytes(range(251)) * (12 * MiB // 251)  # ~12 MiB: parts of 5, 5 and ~2 MiB
    async with aiohttp.ClientSession() as session:
        api = Api(session, s3_emu)
        space = await api.space()
        ticket = await api.ok(
            "POST",
            "/uploads/initiate",
            json={"original_name": "big.bin", "size": len(data), "space_id": space["id"]},
        )
        assert ticket["mode"] == "multipart"
        assert ticket["part_size"] == 5 * MiB
        assert len(ticket["part_urls"]) == 3
        size = ticket["part_size"]
        parts = []
        for p in ticket["part_urls"]:
            n = p["part_number"]
            etag = await _put(session, p["url"], data[(n - 1) * size : n * size], None)
            parts.append({"PartNumber": n, "ETag": etag})
        body = {
            "file_id": ticket["file_id"],
            "key": ticket["key"],
            "original_name": "big.bin",
            "size": len(data),
            "space_id": space["id"],
            "upload_id": ticket["upload_id"],
        }
        status, _, _ = await api.call(
            "POST", "/uploads/complete", json=body | {"parts": [parts[1], parts[0], parts[2]]}
        )
        assert status == 400
        wrong = [parts[0], {"PartNumber": 2, "ETag": '"' + "0" * 32 + '"'}, parts[2]]
        assert (await api.call("POST", "/uploads/complete", json=body | {"parts": wrong}))[0] == 400
        file = await _complete(api, body | {"parts": parts})
        assert file["size"] == len(data)
        s3_emu.mark_clean(file["id"])
        url = (await api.ok("GET", f"/files/{file['id']}/download"))["url"]
        async with session.get(url) as resp:
            assert resp.status == 200
            got = await resp.read()
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
