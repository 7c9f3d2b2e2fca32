"""Cancelling an upload at random points stops it, leaks nothing and never completes."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from fluidcloud_async import AsyncFluidCloud, Space
from fluidcloud_async.emulator import Emulator, EmulatorConfig, Faults

from .conftest import PART, THRESHOLD, MiB, random_bytes, write

SIZE = 6 * MiB + 1


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    # A per-connection cap stretches an upload over ~0.2 s, so random delays land in every
    # phase: initiate, reading, mid-part, between parts, /complete, after.
    return EmulatorConfig(
        multipart_threshold=THRESHOLD,
        part_size=PART,
        scan_delay=0.01,
        faults=Faults(storage_bandwidth=12 * MiB),
    )


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _settled(baseline_fds: int, baseline_tasks: int) -> tuple[int, int]:
    """Counts once closing sockets and finishing server handlers have had time to settle."""
    fds = tasks = 0
    for _ in range(200):
        fds, tasks = _fds(), len(asyncio.all_tasks())
        if fds <= baseline_fds and tasks <= baseline_tasks:
            break
        await asyncio.sleep(0.01)
    return fds, tasks


async def _agen(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 256 * 1024):
        await asyncio.sleep(0)
        yield data[i : i + 256 * 1024]


def _source(kind: str, data: bytes, path: Path) -> tuple[Any, dict[str, Any]]:
    if kind == "path":
        return path, {}
    if kind == "bytes":
        return data, {}
    if kind == "stream":
        return _agen(data), {"size": len(data)}
    if kind == "spool":
        return _agen(data), {}
    return data[: THRESHOLD // 2], {}  # single PUT


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_random_cancellation_leaks_nothing(
    emu: Emulator, space: Space, tmp_path: Path
) -> None:
    data = random_bytes(SIZE, seed=5)
    path = write(tmp_path / "c.bin", data)
    rng = random.Random(20240601)
    outcomes = {"cancelled": 0, "finished": 0}
    for _ in range(30):
        kind = rng.choice(["path", "bytes", "stream", "spool", "single"])
        delay = rng.uniform(0.0, 0.3)
        source, extra = _source(kind, data, path)
        base_fds, base_tasks = _fds(), len(asyncio.all_tasks())
        completes = emu.stats.completes
        final_seen = False

        def progress(sent: int, total: int) -> None:
            nonlocal final_seen
            final_seen = final_seen or sent == total

        async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as client:
            with anyio.move_on_after(delay) as scope:
                await client.files.upload(
                    source, space.id, max_concurrency=3, progress=progress, **extra
                )
            connector = client.session.connector
            assert connector is not None
            if scope.cancelled_caught:
                outcomes["cancelled"] += 1
                if not final_seen:  # /complete is only ever called after the last byte
                    assert emu.stats.completes == completes, (kind, delay)
            else:
                outcomes["finished"] += 1
                assert emu.stats.completes == completes + 1
        assert connector.closed
        fds, tasks = await _settled(base_fds, base_tasks)
        assert fds <= base_fds, (kind, delay, "leaked descriptors")
        assert tasks <= base_tasks, (kind, delay, "leaked tasks")
    assert outcomes["cancelled"] >= 10  # the delays really interrupt uploads


async def test_cancel_from_progress_mid_upload(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fluidcloud_async._transfer._io.MIN_INTERVAL", 0.0)
    with anyio.CancelScope() as scope:

        def progress(sent: int, total: int) -> None:
            if 0 < sent < total:
                scope.cancel()

        await fc.files.upload(random_bytes(SIZE), space.id, progress=progress)
    assert scope.cancel_called
    assert emu.stats.completes == 0


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_random_download_cancellation_leaves_nothing(
    emu: Emulator, space: Space, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fluidcloud_async._transfer._download.RANGE_PART", MiB)
    data = random_bytes(SIZE, seed=6)
    async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as client:
        file = await client.files.upload(data, space.id, wait_until_clean=True)
    rng = random.Random(7)
    out = tmp_path / "out"
    out.mkdir()
    for i in range(12):
        base_fds, base_tasks = _fds(), len(asyncio.all_tasks())
        dest = out / f"d{i}.bin"
        async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as client:
            with anyio.move_on_after(rng.uniform(0.0, 0.4)) as scope:
                await client.files.download(file.id, dest, max_concurrency=3)
        if scope.cancelled_caught:
            assert not dest.exists()
        else:
            assert dest.read_bytes() == data
        assert [p.name for p in out.iterdir() if p.name.endswith(".part")] == []
        fds, tasks = await _settled(base_fds, base_tasks)
        assert fds <= base_fds
        assert tasks <= base_tasks
