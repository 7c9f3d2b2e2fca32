"""Every source kind, single and multipart, byte-exact through the emulator."""

from __future__ import annotations

import array
import io
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiofiles
import pytest

from fluidcloud_async import AsyncFluidCloud, Space
from fluidcloud_async.emulator import Emulator

from .conftest import MiB, download_bytes, random_bytes, sha, write

SMALL = 300_000  # single PUT
LARGE = 5 * MiB + 321  # multipart (threshold 2 MiB, 1 MiB parts)


async def _check(fc: AsyncFluidCloud, file: Any, data: bytes, name: str = "upload.bin") -> None:
    assert file.size == len(data)
    assert file.sha256 == sha(data)
    assert file.original_name == name
    assert await download_bytes(fc, file.id) == data


class NoFileno(io.RawIOBase):
    """A seekable binary object with no OS descriptor (locked seek+readinto path)."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()

    def readinto(self, buf: Any) -> int:
        return self._inner.readinto(buf)


class Unseekable:
    """A read()-only object, as a socket or pipe wrapper would be."""

    def __init__(self, data: bytes, step: int = 70_000) -> None:
        self._data = data
        self._pos = 0
        self._step = step

    def read(self, n: int = -1) -> bytes:
        n = min(n if n >= 0 else len(self._data), self._step)
        out = self._data[self._pos : self._pos + n]
        self._pos += len(out)
        return out


async def agen(data: bytes, step: int = 100_003) -> AsyncIterator[bytes]:
    for i in range(0, len(data), step):
        yield data[i : i + step]


@pytest.mark.parametrize("size", [SMALL, LARGE])
async def test_path_kinds(fc: AsyncFluidCloud, space: Space, tmp_path: Path, size: int) -> None:
    data = random_bytes(size, seed=1)
    path = write(tmp_path / "data.bin", data)
    await _check(fc, await fc.files.upload(str(path), space.id), data, "data.bin")
    await _check(fc, await fc.files.upload(path, space.id, name="other.dat"), data, "other.dat")


@pytest.mark.parametrize("size", [SMALL, LARGE])
@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "slice", "array"])
async def test_bytes_like(fc: AsyncFluidCloud, space: Space, size: int, kind: str) -> None:
    data = random_bytes(size - size % 4, seed=2)
    source: Any = {
        "bytes": lambda: data,
        "bytearray": lambda: bytearray(data),
        "memoryview": lambda: memoryview(data),
        "slice": lambda: memoryview(b"xx" + data + b"yy")[2:-2],
        "array": lambda: array.array("i", data),
    }[kind]()
    await _check(fc, await fc.files.upload(source, space.id), data)


@pytest.mark.parametrize("size", [SMALL, LARGE])
async def test_file_objects(fc: AsyncFluidCloud, space: Space, tmp_path: Path, size: int) -> None:
    data = random_bytes(size, seed=3)
    path = write(tmp_path / "f.bin", b"HEADER" + data)
    # Seekable, with a real descriptor, uploaded from its current position.
    with open(path, "rb") as fh:  # noqa: ASYNC230
        fh.seek(6)
        await _check(fc, await fc.files.upload(fh, space.id), data, "f.bin")
        assert fh.tell() == 6  # positional reads leave the caller's position alone
    with open(path, "rb", buffering=0) as raw:  # noqa: ASYNC230
        raw.seek(6)
        await _check(fc, await fc.files.upload(raw, space.id, name="raw.bin"), data, "raw.bin")
    bio = io.BytesIO(b"HEADER" + data)
    bio.seek(6)
    await _check(fc, await fc.files.upload(bio, space.id), data)
    await _check(fc, await fc.files.upload(NoFileno(data), space.id), data)
    await _check(fc, await fc.files.upload(Unseekable(data), space.id), data)


async def test_pipe_is_spooled(fc: AsyncFluidCloud, space: Space) -> None:
    data = random_bytes(LARGE, seed=4)
    rfd, wfd = os.pipe()

    def feed() -> None:
        with os.fdopen(wfd, "wb") as w:
            w.write(data)

    feeder = threading.Thread(target=feed)
    feeder.start()
    with os.fdopen(rfd, "rb") as pipe:
        file = await fc.files.upload(pipe, space.id, name="pipe.bin")
    feeder.join()
    await _check(fc, file, data, "pipe.bin")


@pytest.mark.parametrize("size", [SMALL, LARGE])
async def test_aiofiles(fc: AsyncFluidCloud, space: Space, tmp_path: Path, size: int) -> None:
    data = random_bytes(size, seed=5)
    path = write(tmp_path / "a.png", data)
    async with aiofiles.open(path, "rb") as afh:
        file = await fc.files.upload(afh, space.id)
    await _check(fc, file, data, "a.png")
    assert file.mime == "image/png"


@pytest.mark.parametrize("size", [0, SMALL, LARGE])
@pytest.mark.parametrize("with_size", [True, False])
async def test_async_iterable(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, size: int, with_size: bool
) -> None:
    data = random_bytes(size, seed=6)
    file = await fc.files.upload(
        agen(data), space.id, size=size if with_size else None, name="s.bin"
    )
    await _check(fc, file, data, "s.bin")


async def test_large_spool_goes_to_disk(fc: AsyncFluidCloud, space: Space) -> None:
    data = random_bytes(9 * MiB + 5, seed=7)  # above the 8 MiB in-memory spool limit
    file = await fc.files.upload(agen(data, step=1 << 20), space.id)
    await _check(fc, file, data)


@pytest.mark.parametrize(("got", "declared"), [(LARGE - 1, LARGE), (LARGE + 1, LARGE)])
async def test_stream_size_mismatch_never_completes(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, got: int, declared: int
) -> None:
    from fluidcloud_async import UploadError

    with pytest.raises(UploadError) as info:
        await fc.files.upload(agen(random_bytes(got)), space.id, size=declared)
    assert isinstance(info.value.cause, ValueError)
    assert emu.stats.completes == 0


async def test_content_type_inference(fc: AsyncFluidCloud, space: Space) -> None:
    file = await fc.files.upload(b"{}", space.id, name="x.json")
    assert file.mime == "application/json"
    file = await fc.files.upload(b"{}", space.id, name="x.json", content_type="text/x-custom")
    assert file.mime == "text/x-custom"
    file = await fc.files.upload(b"\0", space.id)  # upload.bin: unknown type, none signed
    assert file.original_name == "upload.bin"
