"""Resumable uploads: the engine's hooks (reuse a ticket, PUT only the parts that are
missing, complete once) and the resume journal built on them (``files.upload(resume=)``),
including a process killed mid-upload and resumed by another."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from fluidcloud_async import (
    AsyncFluidCloud,
    BadRequestError,
    PartUrl,
    Space,
    UploadError,
    UploadExpiredError,
    UploadJournal,
    UploadTicket,
)
from fluidcloud_async._transfer import _journal
from fluidcloud_async._transfer._sources import describe
from fluidcloud_async._transfer._upload import Resume, SlotPool, UploadOptions, upload_file
from fluidcloud_async.emulator import Emulator

from .conftest import MiB, download_bytes, random_bytes, sha, write

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
            fc.files._engine(),
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
        fc.files._engine(),
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


async def test_streams_cannot_resume(fc: AsyncFluidCloud, space: Space, fail_midway: Any) -> None:
    async def gen():  # type: ignore[no-untyped-def]
        yield b"x" * 10

    with pytest.raises(ValueError, match="stream"):
        await upload_file(
            fc.files._engine(),
            describe(gen(), size=10),
            UploadOptions(space_id=space.id),
            pool=SlotPool(1),
            resume=Resume(etags={1: '"e"'}),
        )


# -- the resume journal: files.upload(path, ..., resume=journal) ---------------------------

JOURNAL_SIZE = 8 * MiB + 5  # 9 parts of 1 MiB

#: The child of the kill test: one journaled upload, as a user's script would run it.
CHILD = """
import asyncio, os, sys
from fluidcloud_async import AsyncFluidCloud

async def main() -> None:
    async with AsyncFluidCloud() as fc:  # key and URL from the environment
        await fc.files.upload(sys.argv[1], sys.argv[2], resume=sys.argv[3], max_concurrency=2)

asyncio.run(main())
"""


def _journal_or_none(path: Path) -> UploadJournal | None:
    try:
        return UploadJournal.load(path)
    except FileNotFoundError:
        return None


@pytest.fixture
def fail_midway(
    fc: AsyncFluidCloud, emu: Emulator, space: Space, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """``await fail_midway(src, journal)``: an upload whose fourth part fails for good
    (storage answers 500 past every retry); returns its UploadError."""
    record = UploadJournal.record

    async def record_then_fail(self: UploadJournal, number: int, etag: str) -> None:
        await record(self, number, etag)
        if self.parts_done == 3:
            emu.faults.fail_next_storage_puts = 100

    async def run(src: Path, journal: Path) -> UploadError:
        monkeypatch.setattr(UploadJournal, "record", record_then_fail)
        with pytest.raises(UploadError) as info:
            await fc.files.upload(src, space.id, resume=journal, max_concurrency=1)
        monkeypatch.setattr(UploadJournal, "record", record)
        emu.faults.reset()
        return info.value

    return run


async def test_killed_process_resumes_with_only_the_missing_parts(
    emu: Emulator, space: Space, fc: AsyncFluidCloud, tmp_path: Path
) -> None:
    data = random_bytes(JOURNAL_SIZE, seed=31)
    src = write(tmp_path / "big.bin", data)
    journal = tmp_path / "big.journal"
    # 2 MiB/s per connection: a 1 MiB part takes ~0.5 s, so the kill lands mid-upload.
    emu.faults.storage_bandwidth = 2 * MiB
    env = {**os.environ, "FLUIDCLOUD_API_KEY": emu.api_key, "FLUIDCLOUD_BASE_URL": emu.base_url}
    args = [sys.executable, "-c", CHILD, str(src), space.id, str(journal)]
    async with await anyio.open_process(args, env=env) as child:
        with anyio.fail_after(20):
            while (j := _journal_or_none(journal)) is None or j.parts_done < 1:
                assert child.returncode is None, "the child ended before the kill"
                await anyio.sleep(0.02)
        child.kill()  # SIGKILL: no cleanup, no final journal write
        assert await child.wait() == -signal.SIGKILL
    emu.faults.reset()
    await anyio.sleep(0.2)  # the emulator notices the dead connections
    before = UploadJournal.load(journal)
    assert 1 <= before.parts_done < before.parts_total == 9
    assert emu.stats.completes == 0
    puts = emu.stats.storage_puts

    file = await fc.files.upload(src, space.id, resume=journal)

    assert emu.stats.storage_puts - puts == len(before.missing_parts)
    assert emu.stats.completes == 1
    assert file.id == before.file_id
    assert not journal.exists()
    assert sha(await download_bytes(fc, file.id)) == sha(data)


async def test_journal_format_and_removal_on_success(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path
) -> None:
    src = write(tmp_path / "data.csv", random_bytes(JOURNAL_SIZE, seed=32))
    journal = tmp_path / "data.journal"
    seen: list[dict[str, object]] = []

    def progress(sent: int, total: int) -> None:
        if journal.exists() and not seen:
            assert journal.stat().st_mode & 0o777 == 0o600  # it holds write URLs
            seen.append(json.loads(journal.read_text()))

    file = await fc.files.upload(src, space.id, resume=journal, client_key="k/1", progress=progress)
    assert not journal.exists()
    assert os.listdir(tmp_path) == ["data.csv"]  # no temp file left behind
    doc = seen[0]
    assert doc["format"] == "fluidcloud-upload-journal" and doc["version"] == 1
    st = src.stat()
    assert doc["source"] == {"path": str(src), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    assert doc["upload"] == {
        "space_id": space.id,
        "folder_id": None,
        "name": "data.csv",
        "content_type": "text/csv",
        "client_key": "k/1",
    }
    ticket = doc["ticket"]
    assert isinstance(ticket, dict) and ticket["file_id"] == file.id
    assert ticket["upload_id"] and ticket["part_size"] == MiB and len(ticket["part_urls"]) == 9
    assert doc["parts_total"] == 9 and isinstance(doc["parts"], list)
    assert isinstance(doc["expires_at"], str) and doc["expires_at"].endswith("Z")


async def test_failure_keeps_the_journal_and_resume_finishes(
    fc: AsyncFluidCloud, emu: Emulator, space: Space, tmp_path: Path, fail_midway: Any
) -> None:
    data = random_bytes(JOURNAL_SIZE, seed=33)
    src = write(tmp_path / "f.bin", data)
    journal = tmp_path / "f.journal"
    error = await fail_midway(src, journal)
    kept = UploadJournal.load(journal)
    assert f"the resume journal {journal} was kept" in str(error)
    assert f"({kept.parts_done}/9 parts stored)" in str(error)
    assert kept.parts_done == 3 and kept.missing_parts == [4, 5, 6, 7, 8, 9]
    assert kept.expires_at is not None and not kept.expired
    assert "part_urls" not in repr(kept) and "X-Amz" not in repr(kept)
    puts = emu.stats.storage_puts
    file = await fc.files.upload(src, space.id, resume=journal)
    assert emu.stats.storage_puts - puts == 6
    assert emu.stats.completes == 1
    assert await download_bytes(fc, file.id) == data


async def test_expired_urls_are_refused_before_any_put(
    fc: AsyncFluidCloud,
    emu: Emulator,
    space: Space,
    tmp_path: Path,
    monkeypatch: Any,
    fail_midway: Any,
) -> None:
    src = write(tmp_path / "e.bin", random_bytes(JOURNAL_SIZE, seed=34))
    journal = tmp_path / "e.journal"
    await fail_midway(src, journal)
    expires = UploadJournal.load(journal).expires_at
    assert expires is not None
    monkeypatch.setattr(_journal, "_now", lambda: expires.timestamp() + 1)
    requests = sum(emu.stats.requests.values())
    puts = emu.stats.storage_puts
    with pytest.raises(UploadExpiredError, match=f"delete {journal} to start a new upload"):
        await fc.files.upload(src, space.id, resume=journal)
    assert (sum(emu.stats.requests.values()), emu.stats.storage_puts) == (requests, puts)
    assert journal.exists()


async def test_urls_the_server_calls_expired_keep_the_journal(
    fc: AsyncFluidCloud, emu: Emulator, space: Space, tmp_path: Path, fail_midway: Any
) -> None:
    src = write(tmp_path / "s.bin", random_bytes(JOURNAL_SIZE, seed=35))
    journal = tmp_path / "s.journal"
    await fail_midway(src, journal)
    emu.advance_time(4000)  # past the URLs' hour by the server's clock only
    with pytest.raises(UploadExpiredError) as info:
        await fc.files.upload(src, space.id, resume=journal)
    assert "was kept, but its URLs cannot finish this upload: delete it" in str(info.value)
    assert journal.exists()
    assert emu.stats.completes == 0


async def test_all_parts_stored_completes_even_after_expiry(
    fc: AsyncFluidCloud, emu: Emulator, space: Space, tmp_path: Path, monkeypatch: Any
) -> None:
    data = random_bytes(JOURNAL_SIZE, seed=36)
    src = write(tmp_path / "c.bin", data)
    journal = tmp_path / "c.journal"
    emu.faults.fail_next_api_status = 400
    emu.faults.fail_next_api_requests = 0

    def fail_complete(sent: int, total: int) -> None:
        if sent == total:  # every part stored: the next API request is /complete
            emu.faults.fail_next_api_requests = 1

    with pytest.raises(BadRequestError, match=r"the resume journal .* was kept \(9/9"):
        await fc.files.upload(src, space.id, resume=journal, progress=fail_complete)
    emu.faults.reset()
    assert UploadJournal.load(journal).missing_parts == []
    monkeypatch.setattr(_journal, "_now", lambda: time.time() + 10 * 3600)  # /complete needs no URL
    puts = emu.stats.storage_puts
    file = await fc.files.upload(src, space.id, resume=journal)
    assert emu.stats.storage_puts == puts
    assert not journal.exists()
    assert await download_bytes(fc, file.id) == data


async def test_a_changed_source_is_refused(
    fc: AsyncFluidCloud, emu: Emulator, space: Space, tmp_path: Path, fail_midway: Any
) -> None:
    src = write(tmp_path / "m.bin", random_bytes(JOURNAL_SIZE, seed=37))
    journal = tmp_path / "m.journal"
    await fail_midway(src, journal)
    requests = sum(emu.stats.requests.values())
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # same size, touched
    with pytest.raises(ValueError, match=r"changed since the upload .* delete"):
        await fc.files.upload(src, space.id, resume=journal)
    src.write_bytes(b"shorter")
    with pytest.raises(ValueError, match="changed since"):
        await fc.files.upload(src, space.id, resume=journal)
    other = write(tmp_path / "other.bin", b"x")
    with pytest.raises(ValueError, match="belongs to"):
        await fc.files.upload(other, space.id, resume=journal)
    assert sum(emu.stats.requests.values()) == requests
    assert journal.exists()


async def test_other_options_and_broken_journals_are_refused(
    fc: AsyncFluidCloud, emu: Emulator, space: Space, tmp_path: Path, fail_midway: Any
) -> None:
    src = write(tmp_path / "o.bin", random_bytes(JOURNAL_SIZE, seed=38))
    journal = tmp_path / "o.journal"
    await fail_midway(src, journal)
    with pytest.raises(
        ValueError, match=re.escape("was written for name='o.bin' (this call: 'x.bin')")
    ):
        await fc.files.upload(src, space.id, resume=journal, name="x.bin")
    with pytest.raises(ValueError, match="client_key"):
        await fc.files.upload(src, space.id, resume=journal, client_key="k")
    for broken in ("", "{}", "[1]", '{"format": "fluidcloud-upload-journal", "version": 9}'):
        journal.write_text(broken)
        with pytest.raises(ValueError, match=r"not a usable upload journal.*delete it"):
            await fc.files.upload(src, space.id, resume=journal)


async def test_resume_needs_a_path_source(
    fc: AsyncFluidCloud, emu: Emulator, space: Space, tmp_path: Path
) -> None:
    journal = tmp_path / "n.journal"
    requests = sum(emu.stats.requests.values())
    with (tmp_path / "f").open("wb+") as fh:
        for source in (b"bytes", io.BytesIO(b"x"), fh):
            with pytest.raises(TypeError, match="resume= needs a path source"):
                await fc.files.upload(source, space.id, resume=journal)
    with pytest.raises(TypeError, match="resume must be a path"):
        await fc.files.upload(write(tmp_path / "p", b"x"), space.id, resume=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is a directory"):
        await fc.files.upload(tmp_path / "p", space.id, resume=tmp_path)
    assert sum(emu.stats.requests.values()) == requests
    assert not journal.exists()


async def test_single_put_uploads_write_no_journal(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path
) -> None:
    src = write(tmp_path / "small.bin", b"x" * 1000)  # below the multipart threshold
    journal = tmp_path / "small.journal"
    file = await fc.files.upload(src, space.id, resume=journal)
    assert file.size == 1000
    assert not journal.exists()


async def test_parts_finishing_together_are_coalesced(tmp_path: Path, monkeypatch: Any) -> None:
    ticket = UploadTicket(
        file_id="f",
        key="k",
        mode="multipart",
        upload_id="u",
        part_size=1,
        part_urls=[PartUrl(part_number=n, url=f"http://s/{n}") for n in range(1, 41)],
    )
    options: dict[str, str | None] = {
        "space_id": "s",
        "folder_id": None,
        "name": "n",
        "content_type": None,
        "client_key": None,
    }
    journal = UploadJournal(
        str(tmp_path / "j"), source=("/x", 40, 1), options=options, ticket=ticket
    )
    monkeypatch.setattr(_journal, "MIN_INTERVAL", 0.05)
    started = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(journal.keep_writing)
        for n in range(1, 41):
            await journal.record(n, f'"e{n}"')
            await anyio.sleep(0.002)
        await anyio.sleep(0.1)
        tg.cancel_scope.cancel()
    # At most one write per 50 ms (plus the first and the last), however slow a loaded
    # machine makes the 40 records: ~180 ms on a quiet one, so ~5 writes, never one each.
    elapsed = anyio.current_time() - started
    assert 2 <= journal.writes <= min(elapsed / 0.05 + 2, 20)
    loaded = UploadJournal.load(tmp_path / "j")
    assert loaded.parts_done == 40 and loaded.etags[40] == '"e40"'
    assert loaded.expires_at is None  # these URLs carry no X-Amz-Date


async def test_cancellation_keeps_every_stored_part_in_the_journal(
    fc: AsyncFluidCloud, emu: Emulator, space: Space, tmp_path: Path
) -> None:
    data = random_bytes(JOURNAL_SIZE, seed=39)
    src = write(tmp_path / "x.bin", data)
    journal = tmp_path / "x.journal"
    emu.faults.storage_bandwidth = 4 * MiB  # ~0.25 s a part, two at a time
    stored: list[int] = []
    record = UploadJournal.record

    async def counting(self: UploadJournal, number: int, etag: str) -> None:
        stored.append(number)
        await record(self, number, etag)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(UploadJournal, "record", counting)
        with anyio.move_on_after(0.6):
            await fc.files.upload(src, space.id, resume=journal, max_concurrency=2)
    emu.faults.reset()
    kept = UploadJournal.load(journal)
    # The final flush wrote every part stored, even one recorded just before the cancel.
    assert stored and sorted(kept.etags) == sorted(stored)
    assert sorted(os.listdir(tmp_path)) == ["x.bin", "x.journal"]  # no temp file left
    assert emu.stats.completes == 0
    file = await fc.files.upload(src, space.id, resume=journal)
    assert await download_bytes(fc, file.id) == data


class BytesPath:
    """An ``os.PathLike[bytes]`` (part of ``UploadSource``)."""

    def __init__(self, path: Path) -> None:
        self._path = os.fsencode(path)

    def __fspath__(self) -> bytes:
        return self._path


async def test_a_bytes_path_source_resumes_with_a_str_journal(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path
) -> None:
    data = random_bytes(SIZE)
    source = write(tmp_path / "b.bin", data)
    journal = tmp_path / "b.journal"
    file = await fc.files.upload(BytesPath(source), space.id, resume=journal)
    assert file.sha256 == sha(data) and file.original_name == "b.bin"
    assert not journal.exists()  # completed: nothing left to resume
