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


async def test_public_waits_for_clean_and_sets_link(
    fc: AsyncFluidCloud, space: Space, emu: Emulator
) -> None:
    file = await fc.files.upload(b"<svg/>", space.id, name="logo.svg", public=True)
    assert file.is_clean
    assert file.public_url is not None
    assert file.public_url.startswith(emu.raw_url)
    async with fc.session.get(file.public_url) as resp:  # served without the API key
        assert await resp.read() == b"<svg/>"


async def test_infected_upload_raises(fc: AsyncFluidCloud, space: Space) -> None:
    from fluidcloud_async import InfectedFileError
    from fluidcloud_async.emulator import EICAR

    with pytest.raises(InfectedFileError) as info:
        await fc.files.upload(EICAR, space.id, name="eicar.com", wait_until_clean=True)
    assert info.value.file.is_infected


async def test_complete_answer_lost_is_retried_once_stored(
    fc: AsyncFluidCloud, space: Space, emu: Emulator
) -> None:
    emu.faults.drop_next_complete_responses = 1  # committed, then the connection drops
    data = random_bytes(3 * MiB, seed=8)
    file = await fc.files.upload(data, space.id, client_key="k/1")
    assert file.sha256 == sha(data)
    assert emu.stats.completes == 2  # the retry found the committed upload
    listed = [f async for f in fc.files.list(space.id)]
    assert [f.id for f in listed] == [file.id]
