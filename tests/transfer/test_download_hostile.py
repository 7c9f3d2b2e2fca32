"""files.download against a storage (and a destination) that cannot be trusted.

A small aiohttp server stands in for a misbehaving storage: bodies longer than the record,
ranges with extra bytes or from the wrong offset, gzip bodies although identity was asked.
Each must fail with StorageProtocolError at once (no retry), with never more bytes written
than the record holds and nothing left on disk. Destinations: an existing file is never
replaced without overwrite=True, and temporary names fit the filesystem's name limit.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
from pathlib import Path

import pytest
from aiohttp import web

from fluidcloud_async import (
    AsyncFluidCloud,
    DownloadError,
    File,
    Space,
    StorageProtocolError,
)
from fluidcloud_async._transfer import _download
from fluidcloud_async._transfer._download import local_name, name_max
from fluidcloud_async.emulator import Emulator

from .conftest import MiB, NoSleep, Storage, random_bytes, serve_record


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every positional write to a path destination, as ``(offset, length)``."""
    seen: list[tuple[int, int]] = []
    real = _download._pwritev

    def spy(fd: int, chunks: list[bytes], offset: int) -> None:
        seen.append((offset, sum(len(c) for c in chunks)))
        real(fd, chunks, offset)

    monkeypatch.setattr(_download, "_pwritev", spy)
    return seen


async def stream(
    request: web.Request, body: bytes, *, status: int = 200, **headers: str
) -> web.StreamResponse:
    """Send ``body`` chunked (no Content-Length), stopping quietly when the client hangs up."""
    resp = web.StreamResponse(status=status, headers=headers)
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    try:
        for i in range(0, len(body), 64 * 1024):
            await resp.write(body[i : i + 64 * 1024])
        await resp.write_eof()
    except (ConnectionResetError, ConnectionError):
        pass
    return resp


TEN = b"0123456789"
HUGE = 20 * MiB


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "chunked"])
async def test_oversize_body_to_path(
    fc: AsyncFluidCloud,
    storage: Storage,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sleeps: NoSleep,
    writes: list[tuple[int, int]],
    announced: bool,
) -> None:
    """A 10-byte record served as a 20 MiB body: refused (announced) or cut off as soon as
    the 11th byte arrives; never more than 10 bytes written, nothing kept, no retry."""
    serve_record(fc, monkeypatch, storage.url, TEN)
    body = TEN + b"x" * (HUGE - len(TEN))

    async def handler(request: web.Request) -> web.StreamResponse:
        if announced:
            return web.Response(body=body)
        return await stream(request, body)

    storage.handler = handler
    with pytest.raises(StorageProtocolError) as caught:
        await fc.files.download("f1", tmp_path / "out.bin")
    assert caught.value.file_id == "f1"
    assert len(storage.requests) == 1 and sleeps.calls == []  # permanent: not retried
    assert all(offset + length <= len(TEN) for offset, length in writes)
    assert os.listdir(tmp_path) == []  # the temporary file is gone too


async def test_oversize_body_to_file_object(
    fc: AsyncFluidCloud, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_record(fc, monkeypatch, storage.url, TEN)

    async def handler(request: web.Request) -> web.StreamResponse:
        return await stream(request, TEN * (HUGE // len(TEN)))

    storage.handler = handler
    buf = io.BytesIO()
    with pytest.raises(StorageProtocolError):
        await fc.files.download("f1", buf)
    assert len(buf.getvalue()) <= len(TEN)
    assert len(storage.requests) == 1


async def test_empty_record_served_with_bytes(
    fc: AsyncFluidCloud, storage: Storage, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    serve_record(fc, monkeypatch, storage.url, b"")

    async def handler(request: web.Request) -> web.StreamResponse:
        return await stream(request, b"surprise")

    storage.handler = handler
    with pytest.raises(StorageProtocolError, match="more than the 0 bytes"):
        await fc.files.download("f1", tmp_path / "empty.bin")
    assert os.listdir(tmp_path) == []


async def test_ranges_with_extra_bytes_fail_without_retry(
    fc: AsyncFluidCloud,
    storage: Storage,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sleeps: NoSleep,
    writes: list[tuple[int, int]],
) -> None:
    """Each ranged GET answered with its range plus 1000 bytes (chunked, so only counting
    can tell): no range writes past its end, and no range is asked for twice."""
    monkeypatch.setattr(_download, "RANGE_PART", MiB)
    data = random_bytes(3 * MiB + 5, seed=11)
    serve_record(fc, monkeypatch, storage.url, data)

    async def handler(request: web.Request) -> web.StreamResponse:
        first, _, last = request.headers["Range"].removeprefix("bytes=").partition("-")
        start, end = int(first), int(last)
        return await stream(
            request,
            data[start : end + 1] + b"\0" * 1000,
            status=206,
            **{"Content-Range": f"bytes {start}-{end}/{len(data)}"},
        )

    storage.handler = handler
    with pytest.raises(StorageProtocolError, match="more than"):
        await fc.files.download("f1", tmp_path / "r.bin", max_concurrency=4)
    ranges = [r.get("Range") for r in storage.requests]
    assert len(ranges) == len(set(ranges)) and sleeps.calls == []
    for offset, length in writes:  # every write stays inside the range it belongs to
        assert offset // MiB == (offset + length - 1) // MiB
        assert offset + length <= len(data)
    assert os.listdir(tmp_path) == []


async def test_range_from_another_offset_is_refused(
    fc: AsyncFluidCloud, storage: Storage, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_download, "RANGE_PART", MiB)
    data = random_bytes(2 * MiB, seed=12)
    serve_record(fc, monkeypatch, storage.url, data)

    async def handler(request: web.Request) -> web.StreamResponse:
        # Always the first MiB, honestly labelled: right length, wrong bytes for range 2.
        return web.Response(
            status=206,
            body=data[:MiB],
            headers={"Content-Range": f"bytes 0-{MiB - 1}/{len(data)}"},
        )

    storage.handler = handler
    with pytest.raises(StorageProtocolError, match="asked for bytes"):
        await fc.files.download("f1", tmp_path / "o.bin", max_concurrency=2)
    assert os.listdir(tmp_path) == []


async def test_gzip_body_is_refused_not_inflated(
    fc: AsyncFluidCloud,
    storage: Storage,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sleeps: NoSleep,
) -> None:
    """Identity was asked for; a gzip body is a protocol violation, even one that inflates
    to exactly the recorded bytes (aiohttp would otherwise inflate it silently)."""
    data = random_bytes(4096, seed=13) * 8
    serve_record(fc, monkeypatch, storage.url, data)

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=gzip.compress(data), headers={"Content-Encoding": "gzip"})

    storage.handler = handler
    with pytest.raises(StorageProtocolError, match="gzip"):
        await fc.files.download("f1", tmp_path / "g.bin")
    assert storage.requests[0].get("Accept-Encoding") == "identity"
    assert len(storage.requests) == 1 and sleeps.calls == []
    assert os.listdir(tmp_path) == []
    assert issubclass(StorageProtocolError, DownloadError)


async def _clean_file(fc: AsyncFluidCloud, space: Space, data: bytes) -> File:
    return await fc.files.upload(data, space.id, name="d.bin", wait_until_clean=True)


async def test_existing_file_is_refused_before_any_request(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, tmp_path: Path
) -> None:
    file = await _clean_file(fc, space, b"from the server\n")
    dest = tmp_path / ".bashrc"
    dest.write_bytes(b"mine\n")
    dest.chmod(0o640)
    before = sum(emu.stats.requests.values())
    with pytest.raises(FileExistsError):
        await fc.files.download(file.id, dest)
    assert sum(emu.stats.requests.values()) == before
    assert dest.read_bytes() == b"mine\n"
    link = tmp_path / "link"  # a symlink (even a dangling one) is an existing name too
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError):
        await fc.files.download(file.id, link)
    with pytest.raises(TypeError, match="overwrite"):
        await fc.files.download(file.id, dest, overwrite="yes")  # type: ignore[arg-type]

    await fc.files.download(file.id, dest, overwrite=True)
    assert dest.read_bytes() == b"from the server\n"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640  # a replaced file keeps its mode
    assert sorted(os.listdir(tmp_path)) == [".bashrc", "link"]


async def test_new_file_gets_the_umask_mode(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path
) -> None:
    file = await _clean_file(fc, space, b"data")
    old = os.umask(0o022)
    try:
        await fc.files.download(file.id, tmp_path / "new.bin")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.bin").stat().st_mode) == 0o644  # not mkstemp's 0600


async def test_file_created_during_download_is_not_replaced(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = await _clean_file(fc, space, random_bytes(MiB, seed=14))
    dest = tmp_path / "raced.bin"
    real = _download._pwritev

    def racing_write(fd: int, chunks: list[bytes], offset: int) -> None:
        if not dest.exists():  # another program takes the name mid-download
            dest.write_bytes(b"someone else's")
        real(fd, chunks, offset)

    monkeypatch.setattr(_download, "_pwritev", racing_write)
    with pytest.raises(FileExistsError):
        await fc.files.download(file.id, dest)
    assert dest.read_bytes() == b"someone else's"
    assert os.listdir(tmp_path) == ["raced.bin"]


async def test_name_at_the_limit_still_gets_a_temporary_file(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path
) -> None:
    """The temporary name used to be '.NAME.XXXXXXXX.part': over the limit for long names."""
    data = random_bytes(5000, seed=15)
    file = await _clean_file(fc, space, data)
    limit = name_max(str(tmp_path))
    for name in ("d" * limit, "é" * (limit // 2)):
        dest = tmp_path / name
        await fc.files.download(file.id, dest)
        assert dest.read_bytes() == data
        dest.unlink()
    assert os.listdir(tmp_path) == []


ID = "9f1c2d3e-4a5b-6c7d-8e9f-0a1b2c3d4e5f"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("a b (1).txt", "a b (1).txt"),
        ("日本語.txt", "日本語.txt"),
        (".bashrc", ID),
        ("", ID),
        (" ", ID),
        (".", ID),
        ("..", ID),
        ("../../etc/passwd", ID),
        ("a/b.txt", ID + ".txt"),
        ("a\\b.txt", ID + ".txt"),
        ("x" * 300, ID),
        ("é" * 200 + ".txt", ID + ".txt"),  # 200 characters, 400 bytes
        ("nul\x00.txt", ID + ".txt"),
        ("\x1b]0;pwned\x07\x1b[2J.sh", ID + ".sh"),
        ("tab\there.txt", ID + ".txt"),
        ("c1\x9bhere", ID),
        ("del\x7f.txt", ID + ".txt"),
        ("evil\u202etxt.exe", ID + ".exe"),
        ("ok.tar.gz", "ok.tar.gz"),
        ("weird\x1b.e\x1bxt", ID),
    ],
)
def test_local_name(name: str, expected: str, tmp_path: Path) -> None:
    record = File(id=ID, original_name=name, size=1)
    assert local_name(record, str(tmp_path)) == expected


def test_local_name_never_trusts_a_strange_id(tmp_path: Path) -> None:
    record = File(id="../x", original_name="..", size=1)
    assert local_name(record, str(tmp_path)) == "download"
