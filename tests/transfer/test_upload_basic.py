"""Single and multipart uploads from paths and bytes, end to end over real sockets."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluidcloud_async import AsyncFluidCloud, Space
from fluidcloud_async.emulator import Emulator

from .conftest import PART, MiB, download_bytes, random_bytes, sha, write


@pytest.mark.parametrize("size", [0, 1, 1000, PART - 1, 2 * MiB - 1])
async def test_single_put_bytes(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, size: int
) -> None:
    data = random_bytes(size, seed=size)
    file = await fc.files.upload(data, space.id, wait_until_clean=True)
    assert file.size == size
    assert file.sha256 == sha(data)
    assert file.original_name == "upload.bin"
    assert await download_bytes(fc, file.id) == data
    assert emu.stats.completes == 1


@pytest.mark.parametrize("size", [2 * MiB, 2 * MiB + 1, 5 * MiB, 7 * MiB + 12345])
async def test_multipart_path(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, tmp_path: Path, size: int
) -> None:
    data = random_bytes(size, seed=size)
    path = write(tmp_path / "movie.mp4", data)
    file = await fc.files.upload(path, space.id, max_concurrency=3, wait_until_clean=True)
    assert file.size == size
    assert file.sha256 == sha(data)
    assert file.original_name == "movie.mp4"
    assert file.mime == "video/mp4"
    assert await download_bytes(fc, file.id) == data
    expected_parts = -(-size // PART)
    assert emu.stats.storage_puts_ok == expected_parts
    assert emu.stats.completes == 1


async def test_multipart_bytes_no_checksum(fc: AsyncFluidCloud, space: Space) -> None:
    data = random_bytes(5 * MiB + 7, seed=3)
    file = await fc.files.upload(
        bytearray(data), space.id, checksum=False, name="x.dat", wait_until_clean=True
    )
    assert file.size == len(data)
    assert file.sha256 in (None, sha(data))  # the scanner may fill it in
    assert await download_bytes(fc, file.id) == data
