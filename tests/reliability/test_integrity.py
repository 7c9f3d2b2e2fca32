"""Nothing corrupt is completed: a source that changes while it uploads is refused before
``/uploads/complete``, with or without a checksum, for every upload path.

Every test here runs against the emulator in the mode the API docs describe
(``verify_sha256=False``: the server stores the client's SHA-256 unverified), so no
guarantee leans on the emulator re-hashing what it stored. The file is changed from a
progress callback, i.e. at a known point of the upload (after its first part or its
body went out), never after a sleep.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fluidcloud_async import (
    AsyncFluidCloud,
    SourceChangedError,
    Space,
    UploadError,
    UploadJournal,
)
from fluidcloud_async.emulator import Emulator

from .conftest import fail_after_two_parts

MiB = 1024 * 1024
SIZE = 6 * MiB  # 6 parts of 1 MiB

pytestmark = pytest.mark.fluidcloud_emulator(
    verify_sha256=False, multipart_threshold=2 * MiB, part_size=MiB, scan_delay=0.01
)


def _data(n: int, seed: int) -> bytes:
    block = hashlib.shake_256(str(seed).encode()).digest(64 * 1024)
    return (block * (n // len(block) + 1))[:n]


def _source(path: Path, n: int, seed: int = 1) -> Path:
    path.write_bytes(_data(n, seed))
    # An old mtime: the change the test makes lands in a later timestamp tick for sure.
    old = 1_600_000_000 * 10**9
    os.utime(path, ns=(old, old))
    return path


def rewrite(path: Path) -> None:
    """Same size, other bytes, written in place (the inode stays)."""
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.write(_data(size, seed=99))


def append(path: Path) -> None:
    with open(path, "ab") as fh:
        fh.write(b"appended" * 1000)


def once_after(first: int, change: Callable[[], None]) -> Callable[[int, int], None]:
    """A progress callback that runs ``change`` once, when more than ``first`` bytes went
    out and the upload is not finished yet."""
    done = False

    def progress(sent: int, total: int) -> None:
        nonlocal done
        if not done and sent > first:
            done = True
            change()

    return progress


async def assert_nothing_completed(emu: Emulator, fc: AsyncFluidCloud, space: Space) -> None:
    assert emu.stats.completes == 0
    assert await fc.files.list(space.id) == []


@pytest.mark.parametrize("checksum", [True, False], ids=["checksum", "no-checksum"])
async def test_multipart_rewritten_mid_upload_is_never_completed(
    fc: AsyncFluidCloud, space: Space, fluidcloud_emulator: Emulator, tmp_path: Path, checksum: bool
) -> None:
    src = _source(tmp_path / "six.bin", SIZE)
    with pytest.raises(SourceChangedError) as info:
        await fc.files.upload(
            src,
            space.id,
            checksum=checksum,
            max_concurrency=1,  # parts in order: the rest go out after the rewrite
            progress=once_after(0, lambda: rewrite(src)),
        )
    error = info.value
    assert isinstance(error, UploadError)
    assert error.file_id and error.upload_id
    assert "mtime_ns" in str(error) and "not called" in str(error)
    await assert_nothing_completed(fluidcloud_emulator, fc, space)


async def test_append_mid_upload_is_never_completed(
    fc: AsyncFluidCloud, space: Space, fluidcloud_emulator: Emulator, tmp_path: Path
) -> None:
    src = _source(tmp_path / "grows.log", SIZE)
    with pytest.raises(SourceChangedError, match="size 6291456 -> ") as info:
        await fc.files.upload(
            src, space.id, max_concurrency=1, progress=once_after(0, lambda: append(src))
        )
    assert info.value.upload_id is not None
    await assert_nothing_completed(fluidcloud_emulator, fc, space)


async def test_rename_replace_mid_upload_is_never_completed(
    fc: AsyncFluidCloud, space: Space, fluidcloud_emulator: Emulator, tmp_path: Path
) -> None:
    src = _source(tmp_path / "swap.bin", SIZE)
    other = _source(tmp_path / "other.bin", SIZE, seed=2)
    with pytest.raises(SourceChangedError, match="another file"):
        await fc.files.upload(
            src,
            space.id,
            checksum=False,
            max_concurrency=1,
            progress=once_after(0, lambda: os.replace(other, src)),
        )
    await assert_nothing_completed(fluidcloud_emulator, fc, space)


@pytest.mark.parametrize("checksum", [True, False], ids=["checksum", "no-checksum"])
@pytest.mark.parametrize("size", [MiB, 100 * 1024], ids=["single-put", "small-fast-path"])
async def test_single_put_rewritten_before_complete_is_refused(
    fc: AsyncFluidCloud,
    space: Space,
    fluidcloud_emulator: Emulator,
    tmp_path: Path,
    size: int,
    checksum: bool,
) -> None:
    src = _source(tmp_path / "one.bin", size)
    with pytest.raises(SourceChangedError) as info:
        await fc.files.upload(
            src, space.id, checksum=checksum, progress=once_after(0, lambda: rewrite(src))
        )
    assert info.value.file_id is not None and info.value.upload_id is None
    await assert_nothing_completed(fluidcloud_emulator, fc, space)


async def test_open_file_object_rewritten_mid_upload_is_refused(
    fc: AsyncFluidCloud, space: Space, fluidcloud_emulator: Emulator, tmp_path: Path
) -> None:
    src = _source(tmp_path / "fobj.bin", SIZE)
    with open(src, "rb") as fh, pytest.raises(SourceChangedError):  # noqa: ASYNC230
        await fc.files.upload(
            fh, space.id, max_concurrency=1, progress=once_after(0, lambda: rewrite(src))
        )
    await assert_nothing_completed(fluidcloud_emulator, fc, space)


async def test_unchanged_file_still_uploads_with_its_digest(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path
) -> None:
    src = _source(tmp_path / "calm.bin", SIZE)
    file = await fc.files.upload(src, space.id)
    assert file.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()


async def test_upload_many_reports_the_changed_file_only(
    fc: AsyncFluidCloud, space: Space, fluidcloud_emulator: Emulator, tmp_path: Path
) -> None:
    changing = _source(tmp_path / "changing.bin", SIZE)
    calm = _source(tmp_path / "calm.bin", 300 * 1024, seed=3)
    changed = False

    def on_file(source: Any, sent: int, total: int) -> None:
        nonlocal changed
        if source == changing and sent and not changed:
            changed = True
            rewrite(changing)

    results = await fc.files.upload_many(
        [changing, calm], space.id, max_files=1, max_concurrency=1, file_progress=on_file
    )
    by_source = {r.source: r for r in results}
    assert isinstance(by_source[changing].error, SourceChangedError)
    assert by_source[calm].ok
    assert fluidcloud_emulator.stats.completes == 1
    assert [f.original_name for f in await fc.files.list(space.id)] == ["calm.bin"]


async def test_resumed_upload_whose_source_changes_is_never_completed(
    fc: AsyncFluidCloud, space: Space, fluidcloud_emulator: Emulator, tmp_path: Path
) -> None:
    emu = fluidcloud_emulator
    src = _source(tmp_path / "resume.bin", SIZE)
    journal = tmp_path / "resume.journal"

    await fail_after_two_parts(fc, space, emu, src, journal)
    stored = UploadJournal.load(journal).parts_done
    assert 1 <= stored < 6
    with pytest.raises(SourceChangedError) as info:
        await fc.files.upload(
            src,
            space.id,
            resume=journal,
            max_concurrency=1,
            progress=once_after(stored * MiB, lambda: rewrite(src)),
        )
    assert info.value.file_id == UploadJournal.load(journal).file_id
    assert "delete it and start over" in str(info.value)
    await assert_nothing_completed(emu, fc, space)


async def test_resume_refuses_a_file_changed_between_the_check_and_the_open(
    fc: AsyncFluidCloud, space: Space, fluidcloud_emulator: Emulator, tmp_path: Path
) -> None:
    """The journal's identity is compared with the opened descriptor, not only with a
    ``stat`` of the path taken before opening it."""
    from fluidcloud_async._transfer import _journal

    emu = fluidcloud_emulator
    src = _source(tmp_path / "race.bin", SIZE)
    journal = tmp_path / "race.journal"
    await fail_after_two_parts(fc, space, emu, src, journal)
    existing = _journal._existing

    def existing_then_change(*args: Any) -> Any:
        found = existing(*args)
        rewrite(src)  # after the journal check, before the open
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_journal, "_existing", existing_then_change)
        with pytest.raises(SourceChangedError, match="before the upload could resume"):
            await fc.files.upload(src, space.id, resume=journal, max_concurrency=1)
    await assert_nothing_completed(emu, fc, space)


async def test_docs_faithful_emulator_stores_the_clients_sha256_unverified(
    fc: AsyncFluidCloud, space: Space
) -> None:
    """The mode these tests run in: a wrong digest is stored as sent, as the docs say."""
    kind = "application/octet-stream"
    ticket = await fc.uploads.initiate(
        original_name="x.bin", size=0, space_id=space.id, content_type=kind
    )
    assert ticket.upload_url is not None
    async with fc.session.put(ticket.upload_url, data=b"", headers={"Content-Type": kind}) as resp:
        assert resp.status == 200
    wrong = "ab" * 32
    file = await fc.uploads.complete(
        file_id=ticket.file_id,
        key=ticket.key,
        original_name="x.bin",
        size=0,
        space_id=space.id,
        sha256=wrong,
    )
    assert file.sha256 == wrong
