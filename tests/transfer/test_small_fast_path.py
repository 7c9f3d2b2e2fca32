"""Small single PUTs: loaded and hashed whole in one step, sent as a memory body."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fluidcloud_async import AsyncFluidCloud, Space
from fluidcloud_async._exceptions import BadRequestError
from fluidcloud_async._transfer import _upload
from fluidcloud_async.emulator import Emulator

from .conftest import download_bytes, random_bytes, sha, write

KiB = 1024


class Spy:
    """Counts calls of the fast path and of the streaming paths it replaces."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, corrupt: bool = False) -> None:
        self.small = self.hashed = self.streamed = 0
        real_load, real_digest, real_body = _upload.load_small, _upload.digest_of, _upload.FileBody

        async def load_small(reader: Any, *, hash_it: bool) -> Any:
            self.small += 1
            view, digest = await real_load(reader, hash_it=hash_it)
            return view, ("0" * 64 if corrupt else digest)

        async def digest_of(reader: Any) -> str:
            self.hashed += 1
            return await real_digest(reader)

        def file_body(*args: Any, **kwargs: Any) -> Any:
            self.streamed += 1
            return real_body(*args, **kwargs)

        monkeypatch.setattr(_upload, "load_small", load_small)
        monkeypatch.setattr(_upload, "digest_of", digest_of)
        monkeypatch.setattr(_upload, "FileBody", file_body)


@pytest.fixture
async def traced(emu: Emulator) -> AsyncIterator[tuple[AsyncFluidCloud, list[Any]]]:
    seen: list[Any] = []

    async def on_headers(session: Any, ctx: Any, params: Any) -> None:
        if str(params.url).startswith(emu.storage_url):
            seen.append(params.headers)

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(on_headers)
    async with (
        aiohttp.ClientSession(trace_configs=[trace]) as session,
        AsyncFluidCloud(emu.api_key, base_url=emu.base_url, session=session) as client,
    ):
        yield client, seen


@pytest.mark.parametrize("source", ["path", "bytes", "fileobj"])
@pytest.mark.parametrize("size", [0, 1, 64 * KiB, _upload.SMALL_BODY])
async def test_small_file_takes_fast_path_and_round_trips(
    fc: AsyncFluidCloud,
    space: Space,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    size: int,
) -> None:
    spy = Spy(monkeypatch)
    data = random_bytes(size, seed=size + 1)
    path = write(tmp_path / "small.bin", data)
    calls: list[tuple[int, int]] = []
    progress = lambda s, t: calls.append((s, t))  # noqa: E731
    if source == "fileobj":
        with path.open("rb") as fobj:
            file = await fc.files.upload(fobj, space.id, progress=progress)
    else:
        src: Any = path if source == "path" else data
        file = await fc.files.upload(src, space.id, progress=progress)
    assert (spy.small, spy.hashed, spy.streamed) == (1, 0, 0)
    assert file.size == size
    assert file.sha256 == sha(data)
    assert calls[-1] == (size, size)
    assert await download_bytes(fc, file.id) == data


async def test_above_threshold_streams(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(monkeypatch)
    data = random_bytes(_upload.SMALL_BODY + 1, seed=5)
    file = await fc.files.upload(write(tmp_path / "big.bin", data), space.id)
    assert (spy.small, spy.hashed, spy.streamed) == (0, 1, 1)
    assert file.sha256 == sha(data)


async def test_fast_path_without_content_type_sends_none(
    traced: tuple[AsyncFluidCloud, list[Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, seen = traced
    spy = Spy(monkeypatch)
    space = await client.spaces.create("h")
    data = random_bytes(64 * KiB, seed=2)
    file = await client.files.upload(write(tmp_path / "x.unknownext", data), space.id)
    assert spy.small == 1
    (headers,) = seen
    assert "Content-Type" not in headers
    assert headers["Content-Length"] == str(len(data))
    assert file.sha256 == sha(data)
    assert await download_bytes(client, file.id) == data


async def test_fast_path_with_content_type_sends_it_exactly(
    traced: tuple[AsyncFluidCloud, list[Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, seen = traced
    Spy(monkeypatch)
    space = await client.spaces.create("h")
    await client.files.upload(write(tmp_path / "doc.pdf", b"%PDF-1.4"), space.id)
    (headers,) = seen
    assert headers["Content-Type"] == "application/pdf"


async def test_fast_path_retries_resend_the_same_bytes(
    fc: AsyncFluidCloud,
    space: Space,
    emu: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("fluidcloud_async._transfer._io.MIN_INTERVAL", 0.0)
    spy = Spy(monkeypatch)
    emu.faults.drop_next_storage_puts = 2
    data = random_bytes(100 * KiB, seed=7)
    calls: list[int] = []
    file = await fc.files.upload(
        write(tmp_path / "r.bin", data), space.id, progress=lambda s, t: calls.append(s)
    )
    assert spy.small == 1  # loaded once, re-sent from memory
    assert file.sha256 == sha(data)
    assert calls[-1] == len(data)
    assert all(0 <= s <= len(data) for s in calls)
    assert await download_bytes(fc, file.id) == data


async def test_fast_path_digest_is_verified(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Spy(monkeypatch, corrupt=True)
    # The fast path's digest is what /complete checks the stored bytes against.
    with pytest.raises(BadRequestError, match="sha256 does not match"):
        await fc.files.upload(write(tmp_path / "c.bin", b"hello"), space.id)


async def test_load_small_reports_a_short_file(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "s.bin", b"x" * 1000)
    reader = _upload.Reader()
    reader.size = 2000  # claims more than the file holds
    fd = os.open(path, os.O_RDONLY)
    try:
        reader.fd = fd
        with pytest.raises(ValueError, match="shrank"):
            await _upload.load_small(reader, hash_it=True)
    finally:
        os.close(fd)
