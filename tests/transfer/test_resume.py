"""Resume hooks of the engine (what issue 7's journal builds on): reuse a ticket, PUT only
the parts that are missing, complete once."""

from __future__ import annotations

import pytest

from fluidcloud_async import AsyncFluidCloud, Space, UploadError, UploadTicket
from fluidcloud_async._transfer._scheduler import SlotPool
from fluidcloud_async._transfer._sources import describe
from fluidcloud_async._transfer._upload import Resume, UploadOptions, upload_file
from fluidcloud_async.emulator import Emulator

from .conftest import MiB, download_bytes, random_bytes, sha

SIZE = 6 * MiB + 7  # 7 parts


class Crash(Exception):
    pass


async def test_resume_puts_only_missing_parts(
    fc: AsyncFluidCloud, space: Space, emu: Emulator
) -> None:
    data = random_bytes(SIZE, seed=21)
    journal: dict[str, object] = {"etags": {}}

    def on_ticket(ticket: UploadTicket) -> None:
        journal["ticket"] = ticket

    async def on_part(number: int, etag: str) -> None:
        etags = journal["etags"]
        assert isinstance(etags, dict)
        etags[number] = etag
        if len(etags) == 3:
            raise Crash("the process dies after three parts")

    options = UploadOptions(space_id=space.id)
    with pytest.raises(UploadError) as info:
        await upload_file(
            fc,
            describe(data),
            options,
            pool=SlotPool(1),
            resume=Resume(on_ticket=on_ticket, on_part=on_part),
        )
    assert isinstance(info.value.cause, Crash)
    assert emu.stats.completes == 0
    stored = dict(journal["etags"])  # type: ignore[call-overload]
    assert len(stored) == 3
    puts = emu.stats.storage_puts
    ticket = journal["ticket"]
    assert isinstance(ticket, UploadTicket)
    seen: list[int] = []
    file = await upload_file(
        fc,
        describe(data),
        UploadOptions(space_id=space.id, progress=lambda s, t: seen.append(s)),
        pool=SlotPool(4),
        resume=Resume(ticket=ticket, etags=stored),
    )
    assert emu.stats.storage_puts - puts == 4  # only the missing parts
    assert emu.stats.completes == 1
    assert file.id == ticket.file_id
    assert file.sha256 == sha(data)
    assert seen[-1] == SIZE
    assert await download_bytes(fc, file.id) == data


async def test_streams_cannot_resume(fc: AsyncFluidCloud, space: Space) -> None:
    async def gen():  # type: ignore[no-untyped-def]
        yield b"x" * 10

    with pytest.raises(ValueError, match="stream"):
        await upload_file(
            fc,
            describe(gen(), size=10),
            UploadOptions(space_id=space.id),
            pool=SlotPool(1),
            resume=Resume(etags={1: '"e"'}),
        )
