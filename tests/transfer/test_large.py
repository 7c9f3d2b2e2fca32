"""A ~300 MiB multipart upload (8 MiB parts) and its parallel ranged download."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fluidcloud_async import AsyncFluidCloud
from fluidcloud_async.emulator import Emulator, EmulatorConfig

from .conftest import MiB

SIZE = 300 * MiB + 12345


def _generate(path: Path, size: int) -> str:
    """Non-repeating pseudo-random content (each 1 MiB block differs), and its SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        block = 0
        while fh.tell() < size:
            data = hashlib.shake_256(block.to_bytes(8, "big")).digest(64 * 1024) * 16
            data = data[: size - fh.tell()]
            fh.write(data)
            digest.update(data)
            block += 1
    return digest.hexdigest()


@pytest.mark.slow
async def test_300_mib_multipart_roundtrip(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    expected = _generate(source, SIZE)
    config = EmulatorConfig(part_size=8 * MiB, scan_delay=0.01)  # default 100 MB threshold
    async with (
        Emulator(config) as emu,
        AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as fc,
    ):
        space = await fc.spaces.create("large")
        seen: list[int] = []
        file = await fc.files.upload(
            source,
            space.id,
            max_concurrency=8,
            progress=lambda s, t: seen.append(s),
            wait_until_clean=True,
        )
        assert file.size == SIZE
        assert file.sha256 == expected
        assert emu.stats.storage_puts_ok == 38  # ceil(300 MiB / 8 MiB)
        assert seen[-1] == SIZE
        dest = tmp_path / "back.bin"
        await fc.files.download(file.id, dest, max_concurrency=4)  # ranged, verified
        assert dest.stat().st_size == SIZE
