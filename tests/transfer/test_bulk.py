"""upload_many: trees with client keys, mixed items, shared pool, rate limit, failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fluidcloud_async import (
    AsyncFluidCloud,
    RateLimit,
    Space,
    UploadError,
    UploadResult,
)
from fluidcloud_async.emulator import Emulator, EmulatorConfig

from .conftest import PART, THRESHOLD, MiB, download_bytes, random_bytes, sha


def _tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"alpha",
        "sub/b.json": b"{}",
        "sub/deeper/c.bin": random_bytes(3 * MiB, seed=1),  # multipart
        "z/empty": b"",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


async def test_directory_with_keys(fc: AsyncFluidCloud, space: Space, tmp_path: Path) -> None:
    files = _tree(tmp_path / "out")
    seen: list[UploadResult] = []
    async with fc.files.upload_many(
        tmp_path / "out", space.id, keys_from_paths=True, key_prefix="jobs/7"
    ) as results:
        async for result in results:
            seen.append(result)
    assert all(r.ok for r in seen), [r.error for r in seen]
    assert sorted(r.client_key or "" for r in seen) == sorted(f"jobs/7/{k}" for k in files)
    for rel, data in files.items():
        resolved = await fc.files.resolve(f"jobs/7/{rel}")
        assert resolved.size == len(data)
        assert resolved.original_name == Path(rel).name
    big = await fc.files.resolve("jobs/7/sub/deeper/c.bin")
    assert await download_bytes(fc, big.id) == files["sub/deeper/c.bin"]


async def _agen(data: bytes) -> AsyncIterator[bytes]:
    yield data[:10]
    yield data[10:]


async def test_mixed_items_awaited_in_input_order(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path
) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(b"a,b\n1,2\n")
    data = random_bytes(THRESHOLD + 5, seed=2)
    items: list[Any] = [
        b"raw bytes",
        path,
        (data, {"name": "big.dat", "client_key": "k/big"}),
        (_agen(b"0123456789abcdef"), {"size": 16, "name": "s.txt"}),
        (str(path), {"name": "renamed.csv", "checksum": False}),
    ]
    results = await fc.files.upload_many(items, space.id, max_files=2, max_concurrency=3)
    assert [r.index for r in results] == list(range(5))
    assert all(r.ok for r in results), [r.error for r in results]
    assert [r.file.original_name for r in results if r.file] == [
        "upload.bin",
        "p.csv",
        "big.dat",
        "s.txt",
        "renamed.csv",
    ]
    assert results[2].client_key == "k/big"
    assert results[2].file is not None and results[2].file.sha256 == sha(data)


async def test_failures_are_per_file_unless_fail_fast(
    fc: AsyncFluidCloud, space: Space, emu: Emulator
) -> None:
    items: list[Any] = [b"one", (_agen(b"short"), {"size": 99}), b"three"]
    results = await fc.files.upload_many(items, space.id)
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, UploadError)
    with pytest.raises(UploadError):
        await fc.files.upload_many(
            [(_agen(b"short"), {"size": 99}), *[b"x"] * 20], space.id, fail_fast=True, max_files=1
        )


async def test_leaving_early_cancels_the_rest(
    fc: AsyncFluidCloud, space: Space, emu: Emulator
) -> None:
    emu.faults.storage_bandwidth = 4 * MiB  # keep files in flight long enough
    items = [random_bytes(PART, seed=i) for i in range(12)]
    async with fc.files.upload_many(items, space.id, max_files=2) as results:
        async for _first in results:
            break
    await asyncio.sleep(0.05)
    assert emu.stats.completes < 12
    completes = emu.stats.completes
    await asyncio.sleep(0.3)
    assert emu.stats.completes == completes  # nothing keeps running after the block


async def test_bad_items_raise_before_network(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, tmp_path: Path
) -> None:
    before = sum(emu.stats.requests.values())
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_bytes(b"1")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_bytes(b"2")
    with pytest.raises(ValueError, match="supersede"):  # directories: walked on start
        await fc.files.upload_many([tmp_path / "a", tmp_path / "b"], space.id, keys_from_paths=True)
    with pytest.raises(ValueError, match="supersede"):  # plain items: at once
        fc.files.upload_many(
            [tmp_path / "a" / "x", tmp_path / "b" / "x"], space.id, keys_from_paths=True
        )
    with pytest.raises(TypeError, match="unknown item options"):
        fc.files.upload_many([(b"x", {"colour": "red"})], space.id)
    with pytest.raises(TypeError):
        fc.files.upload_many([(b"x", "not a dict", 3)], space.id)
    with pytest.raises(FileNotFoundError):
        fc.files.upload_many([tmp_path / "missing"], space.id)
    with pytest.raises(TypeError):
        fc.files.upload_many(42, space.id)
    with pytest.raises(ValueError, match="max_files"):
        fc.files.upload_many([b"x"], space.id, max_files=0)
    with pytest.raises(TypeError, match="rate_limit"):
        fc.files.upload_many([b"x"], space.id, rate_limit=600)  # type: ignore[arg-type]
    assert sum(emu.stats.requests.values()) == before


SCALE = 120.0  # emulator "per minute" budgets become per 0.5 s


async def test_thousand_files_shared_pool_and_rate_limit() -> None:
    config = EmulatorConfig(
        multipart_threshold=THRESHOLD,
        part_size=PART,
        scan_delay=0.01,
        rate_limits=True,
        rate_limit_time_scale=SCALE,
    )
    async with Emulator(config) as emu:
        await _thousand_files(emu)


async def _thousand_files(emu: Emulator) -> None:
    in_flight = peak = 0

    async def start(session: Any, ctx: Any, params: Any) -> None:
        nonlocal in_flight, peak
        if str(params.url).startswith(emu.storage_url):
            in_flight += 1
            peak = max(peak, in_flight)

    async def end(session: Any, ctx: Any, params: Any) -> None:
        nonlocal in_flight
        if str(params.url).startswith(emu.storage_url):
            in_flight -= 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(start)
    trace.on_request_end.append(end)
    trace.on_request_exception.append(end)
    items = [(f"file {i}".encode() * 10, {"client_key": f"bulk/{i:04d}"}) for i in range(1000)]
    items.append((random_bytes(3 * MiB, seed=3), {"client_key": "bulk/big"}))  # 3 parts
    totals: list[tuple[int, int]] = []
    async with (
        aiohttp.ClientSession(trace_configs=[trace]) as session,
        AsyncFluidCloud(emu.api_key, base_url=emu.base_url, session=session) as fc,
    ):
        space = await fc.spaces.create("bulk")
        results = await fc.files.upload_many(
            items,
            space.id,
            max_files=32,
            max_concurrency=8,
            rate_limit=RateLimit(window=60.0 / SCALE),
            progress=lambda s, t: totals.append((s, t)),
        )
        await emu.wait_for_scans()  # the emulator's scanner keeps files open until done
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    assert len(results) == 1001
    assert peak <= 8  # one shared pool of part slots across all files
    api_requests = sum(emu.stats.requests.values())
    assert emu.stats.rate_limited <= api_requests // 100  # under 1 % 429s
    total = sum(len(i[0]) for i in items)
    assert totals[-1] == (total, total)


async def test_misuse_is_explained(fc: AsyncFluidCloud, space: Space) -> None:
    batch = fc.files.upload_many([b"x"], space.id)
    with pytest.raises(TypeError, match="async with"):
        async for _ in batch:  # type: ignore[attr-defined]
            pass
    assert len(batch) == 1
    assert [r.ok for r in await batch] == [True]
    with pytest.raises(RuntimeError, match="runs once"):
        await batch
