"""Hostile input refused before it can hurt: special files swapped in before the open
(the event loop never blocks), names that are not valid UTF-8, content types with control
characters, and resume journals someone else could have written. Real sockets, emulator.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from fluidcloud_async import (
    AsyncFluidCloud,
    NotRegularFileError,
    Space,
    UploadJournal,
)
from fluidcloud_async.emulator import Emulator

from .conftest import fail_after_two_parts

MiB = 1024 * 1024

pytestmark = pytest.mark.fluidcloud_emulator(
    verify_sha256=False, multipart_threshold=2 * MiB, part_size=MiB, scan_delay=0.01
)


# -- special files ------------------------------------------------------------------------


class Unblocker:
    """If a test's code blocks in ``open()`` of a FIFO, open its write end after a few
    seconds from a thread, so the test fails on its assertions instead of hanging."""

    def __init__(self, fifo: Path, after: float = 3.0) -> None:
        self.fifo, self.after = fifo, after
        self.fired = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        if self._stop.wait(self.after):
            return
        self.fired = True
        fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)  # a reader is waiting
        os.close(fd)

    def __enter__(self) -> Unblocker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def test_path_swapped_for_a_fifo_is_a_per_file_error_and_the_loop_runs(
    fc: AsyncFluidCloud, space: Space, fluidcloud_emulator: Emulator, tmp_path: Path
) -> None:
    victim = tmp_path / "report.csv"
    victim.write_bytes(b"a,b\n")
    calm = tmp_path / "calm.txt"
    calm.write_bytes(b"calm\n")
    batch = fc.files.upload_many([victim, calm], space.id, max_files=1)  # described now
    victim.unlink()
    os.mkfifo(victim)  # ... and a FIFO by the time it is opened
    ticks = 0
    longest_gap = 0.0

    async def ticker() -> None:
        nonlocal ticks, longest_gap
        last = time.monotonic()
        while True:
            await anyio.sleep(0.01)
            now = time.monotonic()
            longest_gap, last, ticks = max(longest_gap, now - last), now, ticks + 1

    with Unblocker(victim) as unblocker:
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            with anyio.fail_after(10):
                results = await batch
            tg.cancel_scope.cancel()
    assert not unblocker.fired, "the event loop blocked in open() of the FIFO"
    assert longest_gap < 1.0
    by_source = {r.source: r for r in results}
    error = by_source[victim].error
    assert isinstance(error, NotRegularFileError) and isinstance(error, ValueError)
    assert "FIFO" in str(error) and error.path == str(victim)
    assert by_source[calm].ok
    assert fluidcloud_emulator.stats.count("POST /api/v1/uploads/initiate") == 1  # calm only


async def test_upload_of_a_fifo_path_is_refused_before_any_request(
    fc: AsyncFluidCloud, space: Space, fluidcloud_emulator: Emulator, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with Unblocker(fifo), anyio.fail_after(5), pytest.raises(NotRegularFileError, match="FIFO"):
        await fc.files.upload(fifo, space.id)
    assert fluidcloud_emulator.stats.count("POST /api/v1/uploads/initiate") == 0


# -- names that are not valid UTF-8 --------------------------------------------------------

BAD_NAME = os.fsdecode(b"caf\xe9.txt")  # 'caf\udce9.txt': latin-1 bytes on a UTF-8 system


def _initiates(emu: Emulator) -> int:
    return emu.stats.count("POST /api/v1/uploads/initiate")


async def test_non_utf8_file_names_are_refused_before_any_request(
    fc: AsyncFluidCloud, space: Space, fluidcloud_emulator: Emulator, tmp_path: Path
) -> None:
    src = tmp_path / BAD_NAME
    src.write_bytes(b"latin-1 name\n")
    with pytest.raises(
        ValueError, match=r"the file name \(give another with name=\) .* not valid UTF-8"
    ):
        await fc.files.upload(src, space.id)
    with pytest.raises(ValueError, match="not valid UTF-8"):
        await fc.files.upload(b"data", space.id, name=BAD_NAME)
    with pytest.raises(ValueError, match="not valid UTF-8"):
        await fc.spaces.create(BAD_NAME)
    with pytest.raises(ValueError, match="not valid UTF-8"):
        await fc.files.upload(b"data", space.id, name="ok.txt", client_key=BAD_NAME)
    assert sum(fluidcloud_emulator.stats.requests.values()) == 1  # the space of the fixture
    # With a valid name the same file uploads.
    file = await fc.files.upload(src, space.id, name="cafe.txt")
    assert file.original_name == "cafe.txt"


async def test_upload_many_reports_a_non_utf8_name_per_file(
    fc: AsyncFluidCloud, space: Space, fluidcloud_emulator: Emulator, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / BAD_NAME).write_bytes(b"bad\n")
    (tree / "good.txt").write_bytes(b"good\n")
    results = await fc.files.upload_many(tree, space.id)
    by_name = {os.path.basename(str(r.source)): r for r in results}
    assert isinstance(by_name[BAD_NAME].error, ValueError)
    assert "UTF-8" in str(by_name[BAD_NAME].error)
    assert by_name["good.txt"].ok
    assert _initiates(fluidcloud_emulator) == 1


async def test_emulator_answers_422_for_a_non_utf8_name(
    fc: AsyncFluidCloud, space: Space, fluidcloud_emulator: Emulator
) -> None:
    emu = fluidcloud_emulator
    # What a client that does not check would send: the surrogate as a JSON escape.
    fields = '"original_name": "caf\\udce9.txt", "size": 3, "space_id": '
    body = ("{" + fields + f'"{space.id}"}}').encode()
    async with fc.session.post(
        emu.api_url + "/uploads/initiate",
        data=body,
        headers={"X-API-Key": emu.api_key, "Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 422
        detail = (await resp.json())["detail"]
    assert detail[0]["loc"] == ["body", "original_name"]
    assert detail[0]["type"] == "string_unicode"
    async with fc.session.post(
        emu.api_url + "/spaces",
        data=b'{"name": "\\udce9"}',
        headers={"X-API-Key": emu.api_key, "Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 422


# -- content types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain\r\nX-Injected: 1",
        "text/plain\n",
        "text/plain\x00",
        "text/\x7fplain",
        "tëxt/plain",
    ],
    ids=["crlf", "lf", "nul", "del", "non-ascii"],
)
async def test_content_type_with_control_characters_is_refused_before_any_request(
    fc: AsyncFluidCloud,
    space: Space,
    fluidcloud_emulator: Emulator,
    tmp_path: Path,
    content_type: str,
) -> None:
    src = tmp_path / "a.txt"
    src.write_bytes(b"x" * 10)
    with pytest.raises(ValueError, match="content_type must be printable ASCII"):
        await fc.files.upload(src, space.id, content_type=content_type)
    with pytest.raises(ValueError, match="content_type must be printable ASCII"):
        fc.files.upload_many([(b"x", {"name": "x.txt", "content_type": content_type})], space.id)
    with pytest.raises(ValueError, match="content_type must be printable ASCII"):
        await fc.uploads.initiate(
            original_name="x.txt", size=1, space_id=space.id, content_type=content_type
        )
    assert _initiates(fluidcloud_emulator) == 0
    assert fluidcloud_emulator.stats.storage_puts == 0


async def test_a_plain_content_type_with_parameters_is_fine(
    fc: AsyncFluidCloud, space: Space
) -> None:
    file = await fc.files.upload(
        b"x", space.id, name="x.txt", content_type="text/plain; charset=utf-8"
    )
    assert file.mime == "text/plain; charset=utf-8"


# -- resume journals ---------------------------------------------------------------------------


async def _journaled_failure(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, tmp_path: Path
) -> tuple[Path, Path]:
    """A 4 MiB upload that stopped for good after two parts, its journal kept."""
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(4 * MiB))
    journal = tmp_path / "big.journal"
    await fail_after_two_parts(fc, space, emu, src, journal)
    assert UploadJournal.load(journal).parts_done == 2
    return src, journal


async def test_resume_refuses_a_journal_others_can_write(
    fc: AsyncFluidCloud, space: Space, fluidcloud_emulator: Emulator, tmp_path: Path
) -> None:
    emu = fluidcloud_emulator
    src, journal = await _journaled_failure(fc, space, emu, tmp_path)
    assert journal.stat().st_mode & 0o777 == 0o600
    for mode in (0o620, 0o602, 0o666):
        journal.chmod(mode)
        with pytest.raises(ValueError, match=f"mode {mode:04o} lets others write it"):
            UploadJournal.load(journal)
        emu.stats.reset()
        with pytest.raises(ValueError, match="refusing the resume journal"):
            await fc.files.upload(src, space.id, resume=journal)
        assert sum(emu.stats.requests.values()) == 0 and emu.stats.storage_puts == 0
    journal.chmod(0o644)  # readable by others is not a hole (no secret beyond the URLs)
    file = await fc.files.upload(src, space.id, resume=journal)
    assert file.size == 4 * MiB and not journal.exists()


async def test_resume_refuses_a_journal_owned_by_another_user(
    fc: AsyncFluidCloud,
    space: Space,
    fluidcloud_emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src, journal = await _journaled_failure(fc, space, fluidcloud_emulator, tmp_path)
    me = os.getuid()
    if os.geteuid() == 0:
        os.chown(journal, me + 4242, -1)  # really another owner
    else:  # cannot give a file away: be another user instead
        monkeypatch.setattr(os, "getuid", lambda: me + 4242)
    with pytest.raises(ValueError, match=r"owned by uid \d+, not by this user"):
        await fc.files.upload(src, space.id, resume=journal)
    assert fluidcloud_emulator.stats.completes == 0
