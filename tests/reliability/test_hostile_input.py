"""Hostile input refused before it can hurt: special files swapped in before the open
(the event loop never blocks), names that are not valid UTF-8, content types with control
characters, and resume journals someone else could have written. Real sockets, emulator.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from fluidcloud_async import (
    AsyncFluidCloud,
    NotRegularFileError,
    Space,
    UnprocessableEntityError,
    UploadError,
    UploadJournal,
)
from fluidcloud_async.emulator import Emulator

MiB = 1024 * 1024

pytestmark = pytest.mark.fluidcloud_emulator(
    verify_sha256=False, multipart_threshold=2 * MiB, part_size=MiB, scan_delay=0.01
)


async def _no_sleep(seconds: float) -> None:
    await anyio.lowlevel.checkpoint()


@pytest.fixture
async def fc(fluidcloud_emulator: Emulator) -> AsyncIterator[AsyncFluidCloud]:
    emu = fluidcloud_emulator
    async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url, _sleep=_no_sleep) as client:
        yield client
    await emu.wait_for_scans()


@pytest.fixture
async def space(fc: AsyncFluidCloud) -> Space:
    return await fc.spaces.create("hostile")


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
