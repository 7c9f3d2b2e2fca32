"""upload_many over directories with symlinks and special files, against the emulator.

By default no link is followed and every skipped entry is reported with its reason;
``follow_symlinks=True`` follows links inside the tree only and survives loops; a file
swapped for a link after the walk is not followed when it is opened.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from fluidcloud_async import AsyncFluidCloud, SkipReason, Space, UploadResult
from fluidcloud_async._exceptions import EntryReplacedError
from fluidcloud_async._transfer import _bulk
from fluidcloud_async.emulator import Emulator

from .conftest import download_bytes

SECRET = b"outside the tree: must never be uploaded\n"


def _hostile_tree(tmp_path: Path) -> Path:
    """``tree/`` with a real file, links out of the tree (file and dir), a fifo and a socket."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"alpha")
    (tree / "sub" / "b.txt").write_bytes(b"bravo")
    (tree / "leak.txt").symlink_to(outside / "secret.txt")
    (tree / "leakdir").symlink_to(outside)
    os.mkfifo(tree / "pipe")
    return tree


async def _stored(fc: AsyncFluidCloud, space: Space) -> dict[str, bytes]:
    """Every file in the space: name -> bytes."""
    return {f.original_name: await download_bytes(fc, f.id) async for f in fc.files.list(space.id)}


def _by_rel(results: list[UploadResult]) -> dict[str, UploadResult]:
    return {r.client_key or "": r for r in results}


async def test_default_follows_no_link_and_reports_each_skip(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path
) -> None:
    tree = _hostile_tree(tmp_path)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tree / "sub" / "sock"))
        results = await fc.files.upload_many(tree, space.id, keys_from_paths=True)
    by = _by_rel(results)
    assert sorted(by) == ["a.txt", "leak.txt", "leakdir", "pipe", "sub/b.txt", "sub/sock"]
    assert [by[k].status for k in ("a.txt", "sub/b.txt")] == ["uploaded", "uploaded"]
    leak, leakdir = by["leak.txt"], by["leakdir"]
    assert leak.skipped is SkipReason.SYMLINK and leakdir.skipped is SkipReason.SYMLINK
    assert leak.reason == f"symlink (not followed) (-> {tmp_path / 'outside' / 'secret.txt'})"
    assert str(leak) == f"{tree / 'leak.txt'}: skipped: {leak.reason}"
    assert by["pipe"].reason == "not a regular file (FIFO)"
    assert by["sub/sock"].reason == "not a regular file (socket)"
    for r in (leak, leakdir, by["pipe"], by["sub/sock"]):
        assert r.status == "skipped" and not r.ok and r.error is None and r.file is None
    assert [r.index for r in results] == list(range(6))
    stored = await _stored(fc, space)
    assert stored == {"a.txt": b"alpha", "b.txt": b"bravo"}
    assert SECRET not in stored.values()


async def test_skips_are_streamed_and_not_failures_with_fail_fast(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path
) -> None:
    tree = _hostile_tree(tmp_path)
    batch = fc.files.upload_many(tree, space.id, fail_fast=True)
    with pytest.raises(TypeError, match="inside"):
        len(batch)  # directories are walked when the batch starts (off the event loop)
    seen: list[UploadResult] = []
    async with batch as results:
        assert (len(batch), batch.skipped_count) == (5, 3)
        async for result in results:
            seen.append(result)
    assert sorted(r.status for r in seen) == ["skipped"] * 3 + ["uploaded"] * 2


async def test_follow_symlinks_inside_only_and_loops_end(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path
) -> None:
    tree = _hostile_tree(tmp_path)
    os.remove(tree / "pipe")
    (tree / "inside.txt").symlink_to("sub/b.txt")  # a file link inside the tree
    (tree / "sub" / "deeper").mkdir()
    (tree / "sub" / "deeper" / "c.txt").write_bytes(b"charlie")
    (tree / "shortcut").symlink_to(tree / "sub" / "deeper")  # a directory link inside
    (tree / "sub" / "deeper" / "up").symlink_to("../..")  # a loop to the root
    (tree / "sub" / "self").symlink_to(".")  # a loop to its own directory
    (tree / "ring1").symlink_to("ring2")  # links that resolve in a circle
    (tree / "ring2").symlink_to("ring1")
    (tree / "dangling").symlink_to("nowhere")
    (tree / "sneaky").symlink_to("sub/../../outside/secret.txt")  # relative, yet outside
    results = await fc.files.upload_many(tree, space.id, keys_from_paths=True, follow_symlinks=True)
    by = _by_rel(results)
    uploaded = sorted(k for k, r in by.items() if r.ok)
    assert uploaded == ["a.txt", "inside.txt", "sub/b.txt", "sub/deeper/c.txt"]
    skips = {k: (r.skipped, r.skip_detail) for k, r in by.items() if r.skipped}
    outside = str((tmp_path / "outside").resolve())
    assert skips == {
        "leak.txt": (SkipReason.OUTSIDE_ROOT, f"{outside}/secret.txt"),
        "sneaky": (SkipReason.OUTSIDE_ROOT, f"{outside}/secret.txt"),
        "leakdir": (SkipReason.OUTSIDE_ROOT, outside),
        "shortcut": (SkipReason.ALREADY_WALKED, "as sub/deeper"),
        "sub/deeper/up": (SkipReason.LOOP, "leads back to ."),
        "sub/self": (SkipReason.LOOP, "leads back to sub"),
        "ring1": (SkipReason.LOOP, "links resolve in a circle"),
        "ring2": (SkipReason.LOOP, "links resolve in a circle"),
        "dangling": (SkipReason.BROKEN_SYMLINK, "-> nowhere"),
    }
    assert not any(r.error for r in results)
    stored = await _stored(fc, space)
    assert stored["inside.txt"] == b"bravo"  # the link's name, the target's bytes
    assert SECRET not in stored.values()


async def test_follow_symlinks_walks_each_real_directory_once(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path
) -> None:
    tree = tmp_path / "site"
    real = tree / "releases" / "v2"
    real.mkdir(parents=True)
    (real / "app.js").write_bytes(b"js")
    (tree / "current").symlink_to("releases/v2")  # sorts first, yet the real path wins
    view = tmp_path / "view"
    view.mkdir()
    (view / "current").symlink_to(real)  # inside tmp_path, but outside this root
    results = await fc.files.upload_many(
        [tree, view], space.id, keys_from_paths=True, follow_symlinks=True
    )
    assert [(r.client_key, r.status, r.reason) for r in results] == [
        ("releases/v2/app.js", "uploaded", None),
        ("current", "skipped", "directory already walked (as releases/v2)"),
        ("current", "skipped", f"symlink target outside the tree ({real.resolve()})"),
    ]


async def test_file_swapped_for_a_link_after_the_walk_is_not_followed(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_bytes(SECRET)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"alpha")
    (tree / "sub" / "b.txt").write_bytes(b"bravo")
    real_walk = _bulk.walk

    def walk_then_swap(root: str, **kwargs: object) -> list[_bulk.Entry]:
        entries = real_walk(root, **kwargs)  # type: ignore[arg-type]
        # The attacker's move, between the walk and the opening of each file.
        os.remove(tree / "a.txt")
        (tree / "a.txt").symlink_to(outside)
        os.rename(tree / "sub", tree / "moved")
        (tree / "sub").symlink_to(tmp_path)  # sub/b.txt would now be a file outside...
        (tmp_path / "b.txt").write_bytes(SECRET)
        return entries

    monkeypatch.setattr("fluidcloud_async._transfer._bulk.walk", walk_then_swap)
    results = await fc.files.upload_many(tree, space.id, keys_from_paths=True)
    by = _by_rel(results)
    assert by["a.txt"].skipped is SkipReason.SYMLINK
    assert by["a.txt"].skip_detail == "replaced by a symlink after the walk"
    # ... but it is not the file the walk saw (device, inode): refused as a failure.
    assert isinstance(by["sub/b.txt"].error, EntryReplacedError)
    assert "replaced since the directory walk" in str(by["sub/b.txt"].error)
    assert await _stored(fc, space) == {}


async def test_walk_runs_in_a_worker_thread(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a").write_bytes(b"a")
    threads: list[threading.Thread] = []
    real_walk = _bulk.walk

    def recording_walk(root: str, **kwargs: object) -> list[_bulk.Entry]:
        threads.append(threading.current_thread())
        return real_walk(root, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("fluidcloud_async._transfer._bulk.walk", recording_walk)
    batch = fc.files.upload_many(tree, space.id)
    assert threads == []  # nothing walked by the call itself
    assert [r.ok for r in await batch] == [True]
    assert threads and threads[0] is not threading.main_thread()


async def test_cancel_during_the_walk_stops_it(
    fc: AsyncFluidCloud,
    space: Space,
    emu: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "f").write_bytes(b"x")
    entered, release = threading.Event(), threading.Event()
    stops: list[threading.Event] = []
    real_walk = _bulk.walk

    def slow_walk(root: str, **kwargs: Any) -> list[_bulk.Entry]:
        stops.append(kwargs["stop"])
        entered.set()
        release.wait(10)  # a walk of a huge tree, still running when the caller gives up
        return real_walk(root, **kwargs)

    monkeypatch.setattr("fluidcloud_async._transfer._bulk.walk", slow_walk)
    before = sum(emu.stats.requests.values())
    try:
        with anyio.CancelScope() as scope:

            async def cancel_once_walking() -> None:
                await anyio.to_thread.run_sync(entered.wait, 10)
                scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(cancel_once_walking)
                await fc.files.upload_many(tree, space.id)
                pytest.fail("the walk was cancelled")
        assert scope.cancelled_caught  # promptly: the event loop was never blocked
        assert stops[0].is_set()  # the abandoned thread is told to stop
    finally:
        release.set()
    assert sum(emu.stats.requests.values()) == before


async def test_unlistable_subdirectory_is_a_failure_not_an_abort(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    (tree / "locked").mkdir(parents=True)
    (tree / "locked" / "x").write_bytes(b"x")
    (tree / "a").write_bytes(b"a")
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:  # chmod 000 does not stop root: refuse it here
        # pytest's tmp_path cleanup (shutil.rmtree) passes descriptors: let those through.
        if not isinstance(path, int) and os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    results = await fc.files.upload_many(tree, space.id, keys_from_paths=True)
    monkeypatch.undo()
    assert [(r.client_key, r.status) for r in results] == [("a", "uploaded"), ("locked", "failed")]
    assert isinstance(results[1].error, PermissionError)
