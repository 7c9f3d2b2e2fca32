"""files.download: single and ranged-parallel GETs, to paths and file objects, verified."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import aiofiles
import pytest
from aiohttp import web

from fluidcloud_async import AsyncFluidCloud, DownloadError, File, Space
from fluidcloud_async.emulator import Emulator

from .conftest import MiB, Storage, random_bytes, serve_record

BIG = 7 * MiB + 5  # ranged with 1 MiB ranges


@pytest.fixture(autouse=True)
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fluidcloud_async._transfer._download.RANGE_PART", MiB)


async def _uploaded(fc: AsyncFluidCloud, space: Space, data: bytes) -> File:
    return await fc.files.upload(data, space.id, name="d.bin", wait_until_clean=True)


@pytest.mark.parametrize("size", [0, 1000, BIG])
async def test_to_path_byte_exact(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, tmp_path: Path, size: int
) -> None:
    data = random_bytes(size, seed=size)
    file = await _uploaded(fc, space, data)
    gets = emu.stats.storage_gets
    calls: list[tuple[int, int]] = []
    dest = tmp_path / "out.bin"
    record = await fc.files.download(
        file.id, dest, max_concurrency=3, progress=lambda r, t: calls.append((r, t))
    )
    assert record.id == file.id
    assert dest.read_bytes() == data
    assert calls[-1] == (size, size)
    assert os.listdir(tmp_path) == ["out.bin"]  # no temporary left behind
    expected_gets = 8 if size == BIG else 1  # parallel ranges for the big one
    assert emu.stats.storage_gets - gets == expected_gets


async def test_to_file_objects(fc: AsyncFluidCloud, space: Space, tmp_path: Path) -> None:
    data = random_bytes(BIG, seed=1)
    file = await _uploaded(fc, space, data)
    buf = io.BytesIO()
    await fc.files.download(file.id, buf)
    assert buf.getvalue() == data
    async with aiofiles.open(tmp_path / "a.bin", "wb") as afh:
        await fc.files.download(file.id, afh)
    assert (tmp_path / "a.bin").read_bytes() == data


@pytest.mark.parametrize("ranges", [True, False])
async def test_drops_resume_with_range(
    fc: AsyncFluidCloud,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    storage: Storage,
    ranges: bool,
) -> None:
    """A scripted storage that cuts every first response short (the emulator's drop
    faults cover PUTs only); with ``ranges=False`` it ignores Range on the first GET."""
    data = random_bytes(BIG, seed=2)
    served: list[str] = []
    cut: set[int] = set()

    async def handler(request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Range")
        start, end = 0, len(data) - 1
        if header and (ranges or served):
            first, _, last = header.removeprefix("bytes=").partition("-")
            start, end = int(first), int(last) if last else len(data) - 1
        served.append(header or "")
        partial = header is not None and (ranges or len(served) > 1)
        resp = web.StreamResponse(status=206 if partial else 200)
        resp.content_length = end - start + 1
        await resp.prepare(request)
        body = data[start : end + 1]
        # The first response for each start offset dies half-way (keyed by offset, not by
        # arrival order: parallel ranged GETs interleave, and a global "every other
        # response" rule could starve one range until its retries ran out).
        if start not in cut:
            cut.add(start)
            await resp.write(body[: len(body) // 2])
            assert request.transport is not None
            request.transport.abort()
            return resp
        await resp.write(body)
        return resp

    storage.handler = handler
    serve_record(fc, monkeypatch, storage.url, data)
    dest = tmp_path / "r.bin"
    await fc.files.download("f1", dest, max_concurrency=3)
    assert dest.read_bytes() == data
    assert any(h.startswith("bytes=") and not h.endswith("-") for h in served)


async def test_expired_url_is_refreshed(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, tmp_path: Path
) -> None:
    data = random_bytes(1000, seed=3)
    file = await _uploaded(fc, space, data)
    original = fc.files.download_url
    calls = 0

    async def download_url(file_id: str) -> str:
        nonlocal calls
        calls += 1
        url = await original(file_id)
        if calls == 1:
            emu.advance_time(2 * 3600)  # the first URL is dead on arrival
        return url

    fc.files.download_url = download_url  # type: ignore[method-assign]
    await fc.files.download(file.id, tmp_path / "e.bin")
    assert (tmp_path / "e.bin").read_bytes() == data
    assert calls == 2


async def test_mismatch_keeps_nothing(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = await _uploaded(fc, space, random_bytes(BIG, seed=4))
    original = fc.files.get

    async def lying_get(file_id: str) -> Any:
        record = await original(file_id)
        record.sha256 = "0" * 64
        return record

    monkeypatch.setattr(fc.files, "get", lying_get)
    dest = tmp_path / "m.bin"
    with pytest.raises(DownloadError, match="SHA-256"):
        await fc.files.download(file.id, dest)
    assert os.listdir(tmp_path) == []
    await fc.files.download(file.id, dest, verify=False)
    assert dest.exists()


async def test_bad_destinations_before_network(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, tmp_path: Path
) -> None:
    before = sum(emu.stats.requests.values())
    with pytest.raises(ValueError, match="directory"):
        await fc.files.download("abc", tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        await fc.files.download("abc", tmp_path / "no" / "x.bin")
    with pytest.raises(TypeError, match="text mode"):
        await fc.files.download("abc", io.StringIO())
    with pytest.raises(TypeError):
        await fc.files.download("abc", 42)
    with pytest.raises(ValueError, match="file_id"):
        await fc.files.download("", tmp_path / "x")
    with pytest.raises(ValueError, match="max_concurrency"):
        await fc.files.download("abc", tmp_path / "x", max_concurrency=0)
    assert sum(emu.stats.requests.values()) == before
