"""Progress reporting, and the exact headers of storage requests."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from fluidcloud_async import AsyncFluidCloud, Space
from fluidcloud_async.emulator import Emulator

from .conftest import MiB, random_bytes, sha

SIZE = 5 * MiB + 3


async def test_small_upload_reports_once(fc: AsyncFluidCloud, space: Space) -> None:
    calls: list[tuple[int, int]] = []
    await fc.files.upload(b"abc", space.id, progress=lambda s, t: calls.append((s, t)))
    assert calls == [(3, 3)]
    calls.clear()
    await fc.files.upload(b"", space.id, progress=lambda s, t: calls.append((s, t)))
    assert calls == [(0, 0)]


@pytest.mark.parametrize("source", ["bytes", "path"])
async def test_every_chunk_monotonic_and_exact(
    fc: AsyncFluidCloud, space: Space, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    monkeypatch.setattr("fluidcloud_async._transfer._io.MIN_INTERVAL", 0.0)
    data = random_bytes(SIZE, seed=9)
    src: Any = data
    if source == "path":
        src = tmp_path / "p.bin"
        src.write_bytes(data)
    calls: list[tuple[int, int]] = []

    async def progress(sent: int, total: int) -> None:  # async callbacks are awaited
        calls.append((sent, total))

    await fc.files.upload(src, space.id, progress=progress, max_concurrency=3)
    values = [s for s, _ in calls]
    assert all(t == SIZE for _, t in calls)
    assert values == sorted(values)
    assert values[-1] == SIZE
    assert len(values) >= 6  # at least one call per part
    assert values.count(SIZE) <= 2  # the last chunk's call and the final report


async def test_rollback_on_retry_then_exact_total(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fluidcloud_async._transfer._io.MIN_INTERVAL", 0.0)
    emu.faults.drop_next_storage_puts = 3
    calls: list[int] = []
    file = await fc.files.upload(
        random_bytes(SIZE), space.id, progress=lambda s, t: calls.append(s), max_concurrency=2
    )
    assert file.size == SIZE
    assert calls[-1] == SIZE
    assert all(0 <= s <= SIZE for s in calls)


async def test_default_throttle(fc: AsyncFluidCloud, space: Space, emu: Emulator) -> None:
    emu.faults.storage_bandwidth = 8 * MiB  # ~0.3 s at 2 connections
    calls: list[int] = []
    started = time.monotonic()
    await fc.files.upload(
        random_bytes(SIZE), space.id, progress=lambda s, t: calls.append(s), max_concurrency=2
    )
    elapsed = time.monotonic() - started
    assert calls[-1] == SIZE
    assert len(calls) <= elapsed / 0.1 + 2  # at most ~10 calls a second, plus the final one


@pytest.fixture
async def traced(emu: Emulator) -> AsyncIterator[tuple[AsyncFluidCloud, list[tuple[str, Any]]]]:
    seen: list[tuple[str, Any]] = []

    async def on_headers(session: Any, ctx: Any, params: Any) -> None:
        seen.append((str(params.url), params.headers))

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(on_headers)
    async with (
        aiohttp.ClientSession(trace_configs=[trace]) as session,
        AsyncFluidCloud(emu.api_key, base_url=emu.base_url, session=session) as client,
    ):
        yield client, seen


def _storage(seen: list[tuple[str, Any]], emu: Emulator) -> list[Any]:
    return [headers for url, headers in seen if url.startswith(emu.storage_url)]


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("a.pdf", None, "application/pdf"),
        ("a.bin", "text/x-made-up", "text/x-made-up"),
        ("upload.unknownext", None, None),
    ],
)
async def test_single_put_headers(
    traced: tuple[AsyncFluidCloud, list[tuple[str, Any]]],
    emu: Emulator,
    name: str,
    content_type: str | None,
    expected: str | None,
) -> None:
    client, seen = traced
    space = await client.spaces.create("h")
    data = random_bytes(1000)
    file = await client.files.upload(data, space.id, name=name, content_type=content_type)
    assert file.sha256 == sha(data)
    (headers,) = _storage(seen, emu)
    assert headers.get("Content-Type") == expected
    assert headers["Content-Length"] == "1000"
    assert "Transfer-Encoding" not in headers
    assert "X-API-Key" not in headers


async def test_part_headers(
    traced: tuple[AsyncFluidCloud, list[tuple[str, Any]]], emu: Emulator
) -> None:
    client, seen = traced
    space = await client.spaces.create("h")
    await client.files.upload(random_bytes(SIZE), space.id, name="movie.mp4")
    parts = _storage(seen, emu)
    assert len(parts) == 6
    assert sorted(int(h["Content-Length"]) for h in parts) == [3] + [MiB] * 5
    for headers in parts:
        assert "Content-Type" not in headers  # part URLs sign no content type
        assert "Transfer-Encoding" not in headers
        assert "X-API-Key" not in headers
