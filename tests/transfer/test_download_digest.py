"""Verified ranged downloads hash the finished prefix while later ranges still arrive."""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web

from fluidcloud_async import AsyncFluidCloud, DownloadError, Space
from fluidcloud_async._transfer import _download
from fluidcloud_async._transfer._download import _PrefixDigest, _pwritev, _Range
from fluidcloud_async._transfer._io import Progress
from fluidcloud_async.emulator import Emulator

from .conftest import MiB, Storage, random_bytes, serve_record, sha

KiB = 1024


@pytest.fixture(autouse=True)
def small_ranges_and_hash_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_download, "RANGE_PART", MiB)
    monkeypatch.setattr(_download, "HASH_CHUNK", 256 * KiB)


def _record_passes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, bool]]:
    """Spy on the hash passes: (start, end, whether some range was still unfinished)."""
    passes: list[tuple[int, int, bool]] = []
    original = _PrefixDigest._hash_to

    async def hash_to(self: _PrefixDigest, end: int) -> None:
        if end > self._hashed:
            unfinished = any(part.pos != part.end for part in self._ranges)
            passes.append((self._hashed, end, unfinished))
        await original(self, end)

    monkeypatch.setattr(_PrefixDigest, "_hash_to", hash_to)
    return passes


async def test_ranges_finishing_out_of_order(tmp_path: Path) -> None:
    """The prefix stops at the first unfinished range, whatever finished after it."""
    data = random_bytes(2 * MiB + 1000, seed=7)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        digest = _PrefixDigest(fd)
        progress = Progress(None, len(data))

        async def write(chunks: Any, offset: int) -> None:
            _pwritev(fd, chunks, offset)

        spans = [(0, MiB), (MiB, 2 * MiB), (2 * MiB, len(data))]
        parts = [
            _Range(s, e, write, None, progress, ranged=True, file_id="f", moved=digest.moved)
            for s, e in spans
        ]
        for part in reversed(parts):  # tracked in any order
            digest.track(part)

        async def deliver(part: _Range, n: int) -> None:
            await part.deliver([data[part.pos : part.pos + n]], n)
            await anyio.sleep(0.05)  # let the follower look

        async with anyio.create_task_group() as tg:
            tg.start_soon(digest.follow)
            await deliver(parts[2], 1000)  # the last range first: nothing to hash yet
            await deliver(parts[1], MiB)  # the middle one: still nothing
            assert digest._hashed == 0
            await deliver(parts[0], MiB // 2)  # half the first: that half is hashed
            assert digest._hashed == MiB // 2
            await deliver(parts[0], MiB // 2)  # now every range is done
            assert digest._hashed == len(data)
            digest.stop()
        assert await digest.finish(len(data)) == sha(data)
    finally:
        os.close(fd)


async def test_verified_download_hashes_while_ranges_arrive(
    fc: AsyncFluidCloud,
    space: Space,
    emu: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = random_bytes(6 * MiB + 5, seed=8)
    file = await fc.files.upload(data, space.id, name="d.bin", wait_until_clean=True)
    passes = _record_passes(monkeypatch)
    emu.faults.storage_bandwidth = 8 * MiB  # per connection: ~0.1 s a range
    dest = tmp_path / "d.bin"
    await fc.files.download(file.id, dest, max_concurrency=2)
    assert dest.read_bytes() == data
    assert passes[0][0] == 0 and passes[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(passes))  # contiguous
    assert any(unfinished for *_, unfinished in passes)  # overlapped the transfer


async def test_a_corrupt_range_fails_the_prefix_digest(
    fc: AsyncFluidCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: Storage
) -> None:
    """A storage that alters bytes in a late range: the download fails, nothing is kept."""
    data = random_bytes(5 * MiB, seed=9)
    served = bytearray(data)
    served[4 * MiB + 17] ^= 0xFF

    async def handler(request: web.Request) -> web.StreamResponse:
        first, _, last = request.headers["Range"].removeprefix("bytes=").partition("-")
        start, end = int(first), int(last)
        if start == 0:
            await anyio.sleep(0.1)  # the first range finishes last
        resp = web.StreamResponse(status=206)
        resp.content_length = end - start + 1
        resp.headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        await resp.prepare(request)
        await resp.write(bytes(served[start : end + 1]))
        return resp

    storage.handler = handler
    serve_record(fc, monkeypatch, storage.url, data)
    with pytest.raises(DownloadError, match="SHA-256"):
        await fc.files.download("f1", tmp_path / "c.bin", max_concurrency=4)
    assert os.listdir(tmp_path) == []
    await fc.files.download("f1", tmp_path / "c.bin", verify=False)
    assert hashlib.sha256((tmp_path / "c.bin").read_bytes()).hexdigest() != sha(data)


async def test_a_failing_hash_pass_fails_the_download_plainly(
    fc: AsyncFluidCloud,
    space: Space,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An error reading the prefix back ends the download with that error, not a group."""
    data = random_bytes(6 * MiB, seed=10)
    file = await fc.files.upload(data, space.id, name="d.bin", wait_until_clean=True)

    def broken(*args: object) -> None:
        raise OSError(errno.EIO, "I/O error reading the prefix back")

    monkeypatch.setattr(_download, "hash_fd_into", broken)
    with pytest.raises(OSError, match="prefix back"):
        await fc.files.download(file.id, tmp_path / "x.bin", max_concurrency=2)
    assert os.listdir(tmp_path) == []
