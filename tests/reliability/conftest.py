"""Shared pieces of the reliability suites: a scriptable loopback HTTP server that plays a
misbehaving API (or a foreign host), a sleep stand-in so retry waits cost no time, and
``fc``/``space`` fixtures on the plugin's emulator (modules set its mode with the
``fluidcloud_emulator`` mark)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict

from fluidcloud_async import AsyncFluidCloud, Space, UploadError, UploadJournal
from fluidcloud_async.emulator import Emulator
from tests.conftest import RetrySleeps as NoSleep

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path_qs: str
    headers: CIMultiDict[str]


@dataclass
class ScriptedServer:
    """A real aiohttp server on 127.0.0.1 whose answers a test scripts via ``handler``.

    Every request is recorded (with its headers) before the handler runs, so a test can
    assert what reached this host, in particular that no ``X-API-Key`` did.
    """

    handler: Handler | None = None
    seen: list[Seen] = field(default_factory=list)
    runner: web.AppRunner | None = None
    origin: str = ""

    async def start(self, **server_kwargs: Any) -> ScriptedServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # A short shutdown timeout: handlers that never answer are cancelled at cleanup.
        self.runner = web.AppRunner(app, shutdown_timeout=0.1, **server_kwargs)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.origin = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request.method, request.path_qs, CIMultiDict(request.headers)))
        if self.handler is None:
            return web.json_response({"detail": "no handler scripted"}, status=500)
        return await self.handler(request)

    def answer(self, response: Callable[[], web.StreamResponse]) -> None:
        """Answer every request with a fresh ``response()``."""

        async def handler(request: web.Request) -> web.StreamResponse:
            return response()

        self.handler = handler

    def keys_seen(self) -> list[str]:
        """Every ``X-API-Key`` / ``Authorization`` value that reached this server."""
        out: list[str] = []
        for seen in self.seen:
            out += seen.headers.getall("X-API-Key", [])
            out += seen.headers.getall("Authorization", [])
        return out

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    srv = await ScriptedServer().start()
    yield srv
    await srv.close()


@pytest.fixture
async def other_host() -> AsyncIterator[ScriptedServer]:
    """A second origin, standing in for a foreign host that must never see the key."""
    srv = await ScriptedServer().start()
    srv.answer(lambda: web.json_response([]))
    yield srv
    await srv.close()


@pytest.fixture
async def fc(fluidcloud_emulator: Emulator, no_sleep: NoSleep) -> AsyncIterator[AsyncFluidCloud]:
    """A client of the plugin's emulator whose retry waits cost no time."""
    emu = fluidcloud_emulator
    async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as client:
        yield client
    await emu.wait_for_scans()


@pytest.fixture
async def space(fc: AsyncFluidCloud) -> Space:
    return await fc.spaces.create("reliability")


async def fail_after_two_parts(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, src: Path, journal: Path
) -> None:
    """A journaled upload that stops for good after two stored parts (storage answers 500
    past every retry from then on); the journal is kept."""
    record = UploadJournal.record

    async def record_then_fail(self: UploadJournal, number: int, etag: str) -> None:
        await record(self, number, etag)
        if self.parts_done == 2:
            emu.faults.fail_next_storage_puts = 1000

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(UploadJournal, "record", record_then_fail)
        with pytest.raises(UploadError):
            await fc.files.upload(src, space.id, resume=journal, max_concurrency=1)
    emu.faults.reset()
