"""Faults injected by the emulator: uploads still end byte-exact or in a typed error,
and /complete is never called with a partial part list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fluidcloud_async import AsyncFluidCloud, Space, UploadError, UploadExpiredError
from fluidcloud_async.emulator import Emulator
from fluidcloud_async.resources import Uploads

from .conftest import MiB, NoSleep, download_bytes, random_bytes, sha, write

SIZE = 6 * MiB + 99  # 7 parts of 1 MiB


@pytest.fixture
async def patient(emu: Emulator, sleeps: NoSleep) -> AsyncIterator[AsyncFluidCloud]:
    """A client with many retries, so seeded fault rates cannot exhaust them."""
    async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url, max_retries=10) as client:
        yield client


@pytest.mark.parametrize("seed", range(4))
async def test_random_storage_and_api_faults_byte_exact(
    patient: AsyncFluidCloud, emu: Emulator, tmp_path: Path, seed: int
) -> None:
    space = await patient.spaces.create("faults")
    emu.faults.reseed(seed)
    emu.faults.storage_error_rate = 0.15
    emu.faults.storage_drop_rate = 0.1
    emu.faults.api_error_rate = 0.1
    emu.faults.api_429_rate = 0.05
    emu.faults.retry_after = 0.01
    data = random_bytes(SIZE, seed=seed)
    seen: list[int] = []
    path = write(tmp_path / "f.bin", data)
    file = await patient.files.upload(
        path, space.id, max_concurrency=4, progress=lambda sent, total: seen.append(sent)
    )
    emu.faults.reset()
    assert file.sha256 == sha(data)
    assert await download_bytes(patient, file.id) == data
    assert seen[-1] == SIZE
    assert emu.stats.completes >= 1


async def test_drops_and_errors_are_retried_with_rollback(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, sleeps: NoSleep
) -> None:
    data = random_bytes(SIZE, seed=11)
    emu.faults.drop_next_storage_puts = 2
    emu.faults.fail_next_storage_puts = 1
    file = await fc.files.upload(data, space.id, max_concurrency=2)
    assert file.sha256 == sha(data)
    assert emu.stats.faults["storage_drop"] == 2
    assert emu.stats.faults["storage_error"] == 1
    # One backoff per failed attempt, except that aiohttp itself re-sends once at once
    # when a reused keep-alive connection turns out dead.
    assert 1 <= len(sleeps.calls) <= 3
    assert await download_bytes(fc, file.id) == data


async def test_single_put_retried_after_drop(
    fc: AsyncFluidCloud, space: Space, emu: Emulator
) -> None:
    data = random_bytes(500_000, seed=12)
    emu.faults.drop_next_storage_puts = 1
    file = await fc.files.upload(data, space.id)
    assert file.sha256 == sha(data)
    assert emu.stats.storage_puts == 2


async def test_part_failing_for_good_never_completes(
    fc: AsyncFluidCloud, space: Space, emu: Emulator
) -> None:
    emu.faults.storage_error_rate = 1.0
    with pytest.raises(UploadError) as info:
        await fc.files.upload(random_bytes(SIZE), space.id, max_concurrency=2)
    err = info.value
    assert err.file_id is not None
    assert err.upload_id is not None
    assert err.failed_parts and all(1 <= n <= 7 for n in err.failed_parts)
    assert err.cause is not None and err.__cause__ is err.cause
    assert "complete was not called" in str(err)
    assert emu.stats.completes == 0
    # Prompt cancellation of the siblings: far fewer PUTs than 7 parts x 4 attempts.
    assert emu.stats.storage_puts < 7 * 4


async def test_api_429_with_retry_after_is_honoured(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, sleeps: NoSleep
) -> None:
    emu.faults.retry_after = 2.0
    emu.faults.rate_limit_next_api_requests = 1  # the /initiate call
    file = await fc.files.upload(b"hello", space.id, name="h.txt")
    assert file.size == 5
    assert 2.0 in sleeps.calls


def _advance_after_initiate(monkeypatch: pytest.MonkeyPatch, emu: Emulator, seconds: float) -> None:
    original = Uploads.initiate

    async def initiate(self: Uploads, **kwargs: Any) -> Any:
        ticket = await original(self, **kwargs)
        emu.advance_time(seconds)
        return ticket

    monkeypatch.setattr(Uploads, "initiate", initiate)


@pytest.mark.parametrize("size", [1000, SIZE])
async def test_expired_urls_raise_upload_expired(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _advance_after_initiate(monkeypatch, emu, 2 * 3600)  # the server now sees the URLs as expired
    with pytest.raises(UploadExpiredError) as info:
        await fc.files.upload(random_bytes(size), space.id)
    assert info.value.file_id
    assert "re-sign" in str(info.value)
    assert emu.stats.completes == 0
    assert emu.stats.storage_puts_ok == 0


async def test_urls_already_expired_by_our_clock_are_not_sent(
    fc: AsyncFluidCloud, space: Space, emu: Emulator
) -> None:
    emu.advance_time(-3 * 3600)  # tickets are signed three hours in the past
    with pytest.raises(UploadExpiredError):
        await fc.files.upload(random_bytes(SIZE), space.id)
    assert emu.stats.storage_puts == 0
    assert emu.stats.completes == 0
