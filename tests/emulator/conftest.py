"""Fixtures for the emulator's own tests: a running emulator and a plain aiohttp client."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from fluidcloud_async.emulator import Emulator, EmulatorConfig


class Api:
    """Calls the emulator with plain aiohttp; answers (status, json-or-text, headers)."""

    def __init__(self, session: aiohttp.ClientSession, emu: Emulator) -> None:
        self.session = session
        self.emu = emu

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = "default",
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any, Mapping[str, str]]:
        hdrs = dict(headers or {})
        if key == "default":
            key = self.emu.api_key
        if key is not None:
            hdrs["X-API-Key"] = key
        async with self.session.request(
            method, self.emu.api_url + path, json=json, params=params, headers=hdrs
        ) as resp:
            if resp.content_type == "application/json":
                body: Any = await resp.json()
            else:
                body = await resp.text()
            return resp.status, body, resp.headers

    async def ok(self, method: str, path: str, **kw: Any) -> Any:
        status, body, _ = await self.call(method, path, **kw)
        assert status == 200, (status, body)
        return body

    async def space(self, name: str = "space", *, key: str = "default") -> dict[str, Any]:
        space: dict[str, Any] = await self.ok("POST", "/spaces", json={"name": name}, key=key)
        return space

    async def put(
        self, url: str, data: bytes, content_type: str | None = None
    ) -> tuple[int, str, Mapping[str, str]]:
        headers = {"Content-Type": content_type} if content_type else {}
        # BytesIO: aiohttp warns (ResourceWarning) about large raw-bytes bodies.
        async with self.session.put(
            url, data=io.BytesIO(data), headers=headers, skip_auto_headers=["Content-Type"]
        ) as resp:
            return resp.status, await resp.text(), resp.headers

    async def upload(
        self,
        space_id: str,
        data: bytes,
        name: str = "blob.bin",
        *,
        key: str = "default",
        content_type: str | None = None,
        folder_id: str | None = None,
        client_key: str | None = None,
        clean: bool = False,
    ) -> dict[str, Any]:
        """initiate -> PUT(s) -> complete; ``clean`` forces the scan verdict."""
        ticket = await self.ok(
            "POST",
            "/uploads/initiate",
            key=key,
            json={
                "original_name": name,
                "size": len(data),
                "space_id": space_id,
                "content_type": content_type,
                "folder_id": folder_id,
            },
        )
        body: dict[str, Any] = {
            "file_id": ticket["file_id"],
            "key": ticket["key"],
            "original_name": name,
            "size": len(data),
            "space_id": space_id,
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        if client_key is not None:
            body["client_key"] = client_key
        if folder_id is not None:
            body["folder_id"] = folder_id
        if ticket["mode"] == "single":
            status, text, _ = await self.put(ticket["upload_url"], data, ticket["content_type"])
            assert status == 200, text
        else:
            size = ticket["part_size"]
            parts = []
            for part in ticket["part_urls"]:
                n = part["part_number"]
                chunk = data[(n - 1) * size : n * size]
                status, text, headers = await self.put(part["url"], chunk)
                assert status == 200, text
                parts.append({"PartNumber": n, "ETag": headers["ETag"]})
            body.update(upload_id=ticket["upload_id"], parts=parts)
        file: dict[str, Any] = await self.ok("POST", "/uploads/complete", key=key, json=body)
        if clean:
            self.emu.mark_clean(file["id"])
            file["scan_status"] = "clean"
        return file


@pytest.fixture
def emu_config() -> EmulatorConfig:
    """Override in a module to change the emulator's settings."""
    return EmulatorConfig(scan_delay=None)


@pytest_asyncio.fixture
async def emu(emu_config: EmulatorConfig) -> AsyncIterator[Emulator]:
    async with Emulator(emu_config) as emulator:
        yield emulator


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def api(session: aiohttp.ClientSession, emu: Emulator) -> Api:
    return Api(session, emu)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
