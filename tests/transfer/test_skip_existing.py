"""upload_many(skip_existing=True): resumable, idempotent bulk runs, and the hash cache."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from fluidcloud_async import AsyncFluidCloud, HashCache, SkipReason, Space, UploadResult
from fluidcloud_async._transfer import _existing
from fluidcloud_async.emulator import Emulator, EmulatorConfig

from .conftest import MiB, random_bytes, sha

LIST = "GET /api/v1/files"


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    # Small list pages so that a listing of a few dozen files takes several pages.
    return EmulatorConfig(
        multipart_threshold=2 * MiB, part_size=MiB, scan_delay=0.01, list_page_size=7
    )


def _tree(root: Path, n: int = 24) -> dict[str, bytes]:
    files = {f"d{i % 3}/f{i:02}.txt": f"file {i}\n".encode() * (i + 1) for i in range(n)}
    files["big/c.bin"] = random_bytes(3 * MiB, seed=3)  # multipart
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


async def _live_and_trash(fc: AsyncFluidCloud, space: Space) -> tuple[list[str], int]:
    live = [f.client_key or "" for f in await fc.files.list(space.id)]
    trash = [f for f in await fc.files.list(trash=True) if f.space_id == space.id]
    return live, len(trash)


async def _served_all(emu: Emulator) -> None:
    """Wait until the emulator has answered every API request it received.

    A /complete sent just before the batch was cancelled still runs to its end on the
    server (aiohttp does not cancel a handler when its client goes), as on the real
    service: the test must list the space after it, not race it.
    """
    for _ in range(500):  # up to ~5 s
        if sum(emu.stats.statuses.values()) >= _requests(emu):
            return
        await anyio.sleep(0.01)


def _requests(emu: Emulator) -> int:
    return sum(emu.stats.requests.values())


async def test_rerun_after_a_cancelled_batch_stores_each_file_once(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, tmp_path: Path
) -> None:
    files = _tree(tmp_path / "t")
    emu.faults.storage_bandwidth = 64 * 1024  # slow enough to stop the batch midway
    first: list[UploadResult] = []
    async with fc.files.upload_many(
        tmp_path / "t", space.id, keys_from_paths=True, max_files=3
    ) as results:
        async for result in results:
            first.append(result)
            if len(first) == 8:
                break  # leaving the block cancels the rest: a crash midway
    emu.faults.storage_bandwidth = None
    assert sum(r.ok for r in first) == 8
    await _served_all(emu)
    live, _ = await _live_and_trash(fc, space)
    assert 8 <= len(live) < len(files)

    again = await fc.files.upload_many(
        tmp_path / "t", space.id, keys_from_paths=True, skip_existing=True
    )
    assert all(r.ok for r in again), [r.error for r in again]
    unchanged = [r for r in again if r.skipped is SkipReason.UNCHANGED]
    assert {r.client_key for r in first} <= {r.client_key for r in unchanged}
    assert len(unchanged) == len(live)  # whatever was completed, even unreported
    assert all(r.file is not None and r.status == "skipped" for r in unchanged)
    assert all(r.reason and r.reason.startswith("unchanged (stored as ") for r in unchanged)
    live, trashed = await _live_and_trash(fc, space)
    assert sorted(live) == sorted(files)  # each key exactly once
    assert trashed == 0  # no superseded twin
    by_key = {f.client_key: f for f in await fc.files.list(space.id)}
    assert all(by_key[k].sha256 == sha(data) for k, data in files.items())

    # A third run has nothing to do: no upload request at all.
    before = emu.stats.completes, emu.stats.count("POST /api/v1/uploads/initiate")
    third = await fc.files.upload_many(
        tmp_path / "t", space.id, keys_from_paths=True, skip_existing=True
    )
    assert all(r.skipped is SkipReason.UNCHANGED for r in third)
    assert (emu.stats.completes, emu.stats.count("POST /api/v1/uploads/initiate")) == before


async def test_destination_is_listed_once_in_pages(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, tmp_path: Path
) -> None:
    files = _tree(tmp_path / "t")
    await fc.files.upload_many(tmp_path / "t", space.id, keys_from_paths=True)
    listed = emu.stats.count(LIST)
    batch = fc.files.upload_many(tmp_path / "t", space.id, keys_from_paths=True, skip_existing=True)
    async with batch as results:
        seen = [r async for r in results]
    assert all(r.skipped is SkipReason.UNCHANGED for r in seen)
    pages = -(-len(files) // 7)
    assert emu.stats.count(LIST) - listed == pages  # one listing, paginated, not per file
    assert emu.stats.count("GET /api/v1/files/resolve") == 0


async def test_changed_files_are_uploaded_and_supersede(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path
) -> None:
    files = _tree(tmp_path / "t", n=6)
    await fc.files.upload_many(tmp_path / "t", space.id, keys_from_paths=True, key_prefix="k")
    same_size = tmp_path / "t" / "d0" / "f00.txt"
    same_size.write_bytes(b"X" * len(files["d0/f00.txt"]))
    (tmp_path / "t" / "d1" / "f01.txt").write_bytes(b"longer than before\n")
    (tmp_path / "t" / "new.txt").write_bytes(b"new")
    results = await fc.files.upload_many(
        tmp_path / "t", space.id, keys_from_paths=True, key_prefix="k", skip_existing=True
    )
    uploaded = {r.client_key: r.note for r in results if r.status == "uploaded"}
    assert uploaded == {
        "k/d0/f00.txt": "changed (other SHA-256)",
        "k/d1/f01.txt": f"changed (stored {len(files['d1/f01.txt'])} bytes)",
        "k/new.txt": None,
    }
    assert sum(r.skipped is SkipReason.UNCHANGED for r in results) == len(files) - 2
    live, trashed = await _live_and_trash(fc, space)
    assert len(live) == len(set(live)) == len(files) + 1
    assert trashed == 2  # the two old versions, superseded by the API's client_key rule
    assert (await fc.files.resolve("k/d0/f00.txt")).sha256 == sha(same_size.read_bytes())


async def test_items_that_cannot_be_matched_are_refused_before_any_request(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"a")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "b.txt").write_bytes(b"b")

    async def stream() -> AsyncIterator[bytes]:
        yield b"s"

    before = _requests(emu)
    with pytest.raises(ValueError, match="needs a client_key for every item; item 1"):
        fc.files.upload_many([(b"x", {"client_key": "x"}), path], space.id, skip_existing=True)
    with pytest.raises(ValueError, match="keys_from_paths=True"):
        fc.files.upload_many(tmp_path / "dir", space.id, skip_existing=True)
    with pytest.raises(ValueError, match="without consuming it"):
        fc.files.upload_many(
            (stream(), {"client_key": "s", "size": 1}), space.id, skip_existing=True
        )
    with pytest.raises(ValueError, match="public link"):
        fc.files.upload_many(path, space.id, keys_from_paths=True, skip_existing=True, public=True)
    with pytest.raises(ValueError, match="only with skip_existing"):
        fc.files.upload_many(path, space.id, keys_from_paths=True, hash_cache=tmp_path / "c")
    with pytest.raises(TypeError, match="skip_existing must be a bool"):
        fc.files.upload_many(path, space.id, keys_from_paths=True, skip_existing=1)
    assert _requests(emu) == before
    assert not (tmp_path / "c").exists()


async def test_a_record_without_sha256_is_uploaded_again_and_says_why(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, tmp_path: Path
) -> None:
    data = b"no digest on record"
    # A record without a SHA-256: stored by a client that sent none, on a server that
    # keeps what clients send (the real API's documented behaviour).
    emu.config.verify_sha256 = False
    first = await fc.files.upload(data, space.id, name="n.txt", client_key="n", checksum=False)
    assert first.sha256 is None
    results = await fc.files.upload_many(
        [(data, {"client_key": "n", "name": "n.txt"}), (b"kept", {"client_key": "m"})],
        space.id,
        skip_existing=True,
    )
    assert [r.status for r in results] == ["uploaded", "uploaded"]
    assert results[0].note == _existing.NO_SHA256
    assert results[1].note is None
    again = await fc.files.upload_many(
        [(data, {"client_key": "n", "name": "n.txt"}), (b"kept", {"client_key": "m"})],
        space.id,
        skip_existing=True,
    )
    assert [r.skipped for r in again] == [SkipReason.UNCHANGED, SkipReason.UNCHANGED]


async def test_only_the_destination_folder_counts(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path
) -> None:
    folder = await fc.folders.create("in", space.id)
    path = tmp_path / "x.txt"
    path.write_bytes(b"x")
    await fc.files.upload(path, space.id, client_key="x.txt")  # at the space root
    results = await fc.files.upload_many(
        path, space.id, folder_id=folder.id, keys_from_paths=True, skip_existing=True
    )
    assert results[0].status == "uploaded"  # into the folder; supersedes the root copy
    again = await fc.files.upload_many(
        path, space.id, folder_id=folder.id, keys_from_paths=True, skip_existing=True
    )
    assert again[0].skipped is SkipReason.UNCHANGED
    assert again[0].file is not None and again[0].file.folder_id == folder.id


async def test_hash_cache_rereads_nothing_unchanged_and_the_file_wins(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _tree(tmp_path / "t", n=9)
    reads: list[str] = []
    real = _existing._hash_path

    def spy(stop: object, origin: object, *args: object) -> str:
        reads.append(os.fspath(origin))  # type: ignore[call-overload]
        return real(stop, origin, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_existing, "_hash_path", spy)
    cache = HashCache(tmp_path / "cache.sqlite")

    async def run() -> list[UploadResult]:
        return await fc.files.upload_many(
            tmp_path / "t", space.id, keys_from_paths=True, skip_existing=True, hash_cache=cache
        )

    await run()
    assert reads == []  # nothing on record yet: new files are not read to be compared
    assert all(r.skipped is SkipReason.UNCHANGED for r in await run())
    assert stat.S_IMODE(os.stat(tmp_path / "cache.sqlite").st_mode) == 0o600
    assert len(reads) == len(files) == cache.hashed  # read once, remembered
    reads.clear()
    assert all(r.skipped is SkipReason.UNCHANGED for r in await run())
    assert reads == [] and cache.hits == len(files)  # an unchanged tree: nothing read

    touched = tmp_path / "t" / "d0" / "f00.txt"
    os.utime(touched, ns=(1_000_000_000, 1_000_000_000))  # same bytes, another mtime
    rewritten = tmp_path / "t" / "d1" / "f01.txt"
    old = os.stat(rewritten)
    rewritten.write_bytes(b"Z" * old.st_size)  # same size; mtime put back: ctime differs
    os.utime(rewritten, ns=(old.st_atime_ns, old.st_mtime_ns))
    results = {r.client_key: r for r in await run()}
    assert sorted(reads) == sorted([str(touched), str(rewritten)])
    assert results["d0/f00.txt"].skipped is SkipReason.UNCHANGED
    assert results["d1/f01.txt"].status == "uploaded"

    # A fresh HashCache object over the same file serves the same digests.
    reads.clear()
    cache = HashCache(tmp_path / "cache.sqlite")
    assert all(r.skipped is SkipReason.UNCHANGED for r in await run())
    assert reads == [] and cache.hashed == 0


async def test_a_cache_others_can_write_is_refused(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path
) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"a")
    await fc.files.upload(path, space.id, client_key="a.txt")
    cache = tmp_path / "shared.sqlite"
    cache.touch()
    cache.chmod(0o666)
    batch = fc.files.upload_many(
        path, space.id, keys_from_paths=True, skip_existing=True, hash_cache=cache
    )
    with pytest.raises(ValueError, match="writable by others"):
        async with batch:
            pass


def test_one_cache_file_shared_by_two_users(tmp_path: Path) -> None:
    """Digests are written in short batches (no long-held lock): processes can share it."""
    stamp = (1, 2, 3, 4, 5)
    a, b = HashCache(tmp_path / "c.sqlite"), HashCache(tmp_path / "c.sqlite")
    a.open()
    b.open()
    try:
        a.store("/x", stamp, "ab" * 32)
        assert b.lookup("/x", stamp) is None  # not written yet
        b.store("/y", stamp, "cd" * 32)
        b.close()  # b writes while a holds the file open
        a.close()
        a.open()
        assert a.lookup("/x", stamp) == "ab" * 32
        assert a.lookup("/y", stamp) == "cd" * 32
        assert a.lookup("/y", (1, 2, 3, 4, 6)) is None  # another identity: the file wins
    finally:
        a.close()
