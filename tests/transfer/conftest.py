"""Fixtures of the transfer-engine tests: an emulator with small parts, a client, a space."""

from __future__ import annotations

import contextlib
import hashlib
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from fluidcloud_async import AsyncFluidCloud, File, Space
from fluidcloud_async.emulator import Emulator, EmulatorConfig
from tests.conftest import RetrySleeps as NoSleep
from tests.conftest import replace_retry_sleep

MiB = 1024 * 1024
#: Small parts so modest files exercise many parts.
PART = 1 * MiB
THRESHOLD = 2 * MiB


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(multipart_threshold=THRESHOLD, part_size=PART, scan_delay=0.01)


@pytest.fixture
async def emu(emulator_config: EmulatorConfig) -> AsyncIterator[Emulator]:
    async with Emulator(emulator_config) as emulator:
        yield emulator
        # Stopping mid-scan can leave the emulator's scanner with an open file (reported);
        # letting pending scans finish keeps teardown free of ResourceWarnings.
        await emulator.wait_for_scans()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> NoSleep:
    """Retry sleeps recorded and shortened to 10 ms, so fault tests stay fast."""
    return replace_retry_sleep(monkeypatch, cap=0.01)


@pytest.fixture
async def fc(emu: Emulator, sleeps: NoSleep) -> AsyncIterator[AsyncFluidCloud]:
    async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as client:
        yield client


@pytest.fixture
async def space(fc: AsyncFluidCloud) -> Space:
    return await fc.spaces.create("transfer")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def random_bytes(n: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (fast: repeats a random 64 KiB block, shifted)."""
    block = hashlib.shake_256(str(seed).encode()).digest(65536)
    reps = -(-n // len(block)) + 1
    data = (block * reps)[seed % 4096 : seed % 4096 + n]
    return data if len(data) == n else os.urandom(n)


async def download_bytes(fc: AsyncFluidCloud, file_id: str) -> bytes:
    """The stored bytes through a presigned GET (independent of files.download)."""
    await fc.files.wait_until_clean(file_id, timeout=30)
    url = await fc.files.download_url(file_id)
    async with fc.session.get(url) as resp:
        assert resp.status == 200
        return await resp.read()


def record_storage_calls(monkeypatch: pytest.MonkeyPatch, method: str) -> list[str]:
    """Wrap ``ThreadedStorage.<method>`` (``put`` or ``get``): the URL of every attempt the
    threaded transport sends, in order."""
    from fluidcloud_async._transfer._threaded import ThreadedStorage

    seen: list[str] = []
    original = getattr(ThreadedStorage, method)

    async def spy(self: ThreadedStorage, url: str, *args: object, **kwargs: object) -> object:
        seen.append(url)
        return await original(self, url, *args, **kwargs)

    monkeypatch.setattr(ThreadedStorage, method, spy)
    return seen


def serve_record(
    fc: AsyncFluidCloud, monkeypatch: pytest.MonkeyPatch, url: str, data: bytes
) -> File:
    """Make ``fc`` see one clean file ``f1`` of ``data`` whose presigned URL is ``url``."""
    record = File(id="f1", original_name="x.bin", size=len(data), sha256=sha(data))

    async def get(file_id: str) -> File:
        return record

    async def download_url(file_id: str) -> str:
        return url

    monkeypatch.setattr(fc.files, "get", get)
    monkeypatch.setattr(fc.files, "download_url", download_url)
    return record


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Storage:
    """A one-route storage whose answers each test scripts; records every request."""

    def __init__(self) -> None:
        self.handler: Handler | None = None
        self.requests: list[dict[str, str]] = []
        self.url = ""

    @property
    def ranges(self) -> list[str]:
        """The Range header of every request, in order ("" for none)."""
        return [headers.get("Range", "") for headers in self.requests]

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(dict(request.headers))
        assert self.handler is not None
        return await self.handler(request)


@contextlib.asynccontextmanager
async def serving(
    app: web.Application, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[str]:
    """Run ``app`` on a free loopback port (TLS with ``ssl_context``); yields its origin."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        scheme = "http" if ssl_context is None else "https"
        yield f"{scheme}://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def scripted_storage(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Storage]:
    """A :class:`Storage` served at ``/obj`` (over TLS with ``ssl_context``)."""
    box = Storage()
    app = web.Application()
    app.router.add_get("/obj", box._serve)
    async with serving(app, ssl_context) as origin:
        box.url = f"{origin}/obj?X-Amz-Signature=s"
        yield box


@pytest.fixture
async def storage() -> AsyncIterator[Storage]:
    """A scripted plain-http storage: set ``storage.handler``, GET ``storage.url``."""
    async with scripted_storage() as box:
        yield box
