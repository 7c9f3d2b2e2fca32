"""Bad arguments raise TypeError/ValueError before any request reaches the server."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from fluidcloud_async import AsyncFluidCloud, Space
from fluidcloud_async.emulator import Emulator


def _requests(emu: Emulator) -> int:
    return sum(emu.stats.requests.values()) + emu.stats.storage_puts + emu.stats.storage_gets


class TextLike(io.StringIO):
    pass


@pytest.mark.parametrize(
    ("source", "kwargs", "error"),
    [
        (None, {}, TypeError),
        (True, {}, TypeError),
        (12, {}, TypeError),
        (1.5, {}, TypeError),
        ({"a": 1}, {}, TypeError),
        ([b"a", b"b"], {}, TypeError),
        ("", {}, ValueError),
        (TextLike("text"), {}, TypeError),
        (b"data", {"size": -1}, ValueError),
        (b"data", {"size": 5}, ValueError),
        (b"data", {"size": True}, TypeError),
        (b"data", {"size": "4"}, TypeError),
        (b"data", {"name": ""}, ValueError),
        (b"data", {"name": 3}, TypeError),
        (b"data", {"content_type": " "}, ValueError),
        (b"data", {"max_concurrency": 0}, ValueError),
        (b"data", {"max_concurrency": True}, TypeError),
        (b"data", {"max_concurrency": 2.0}, TypeError),
        (b"data", {"checksum": "yes"}, TypeError),
        (b"data", {"public": 1}, TypeError),
        (b"data", {"wait_until_clean": None}, TypeError),
        (b"data", {"progress": 42}, TypeError),
        (b"data", {"clean_timeout": -1}, ValueError),
        (b"data", {"clean_timeout": float("inf")}, ValueError),
        (b"data", {"folder_id": ""}, ValueError),
        (b"data", {"client_key": ""}, ValueError),
        (b"data", {"client_key": 7}, TypeError),
    ],
)
async def test_bad_upload_arguments(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, source: Any, kwargs: Any, error: type
) -> None:
    before = _requests(emu)
    with pytest.raises(error):
        await fc.files.upload(source, space.id, **kwargs)
    assert _requests(emu) == before


async def test_bad_paths_and_space(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, tmp_path: Path
) -> None:
    before = _requests(emu)
    with pytest.raises(FileNotFoundError) as missing:
        await fc.files.upload(tmp_path / "nope.bin", space.id)
    assert isinstance(missing.value, ValueError)  # also a ValueError, as documented
    with pytest.raises(ValueError, match="directory"):
        await fc.files.upload(tmp_path, space.id)
    with pytest.raises(ValueError, match="space_id"):
        await fc.files.upload(b"x", "")
    with pytest.raises(TypeError):
        await fc.files.upload(b"x", None)  # type: ignore[arg-type]
    closed = open(tmp_path / "c.bin", "wb+")  # noqa: SIM115, ASYNC230
    closed.close()
    with pytest.raises(ValueError, match="closed"):
        await fc.files.upload(closed, space.id)
    text = open(tmp_path / "t.txt", "w")  # noqa: SIM115, ASYNC230
    with text, pytest.raises(TypeError, match="text mode"):
        await fc.files.upload(text, space.id)
    with pytest.raises(ValueError, match="C-contiguous"):
        await fc.files.upload(memoryview(b"abcdef")[::2], space.id)
    assert _requests(emu) == before
