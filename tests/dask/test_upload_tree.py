"""``fluidcloud_async.dask.upload_tree`` on a real ``LocalCluster`` (two worker processes)
against the emulator with its rate limits on (time-scaled as in the Redis fleet tests:
60 requests and 30 initiates per 1.8 s window, client window 2 s) and a real Redis.

Each test runs ``upload_tree`` in a thread (it blocks, like ``Client.gather``) while the
emulator serves the workers from this test's event loop."""

from __future__ import annotations

import os
import signal
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import distributed
import pytest

from fluidcloud_async import AsyncFluidCloud, RateLimit, Space
from fluidcloud_async.dask import BatchReport, TreeSummary, upload_tree
from fluidcloud_async.emulator import Emulator, EmulatorConfig

SERVER_WINDOW = 1.8
CLIENT_WINDOW = 2.0
REQUESTS, INITIATES = 60, 30
FILES = 40

pytestmark = pytest.mark.timeout(120)


def _config() -> EmulatorConfig:
    return EmulatorConfig(
        scan_delay=0.0,
        rate_limits=True,
        rate_limit_time_scale=60.0 / SERVER_WINDOW,
        rate_limit_default=REQUESTS,
        rate_limit_initiate=INITIATES,
    )


def _tree(root: Path, size: int = 64) -> dict[str, bytes]:
    files = {}
    for i in range(FILES):
        rel = f"day-{i % 4}/part-{i:02d}.csv"
        data = (f"{i:02d}," * (size // 3 + 1)).encode()[:size]
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        files[f"in/{rel}"] = data
    return files


async def _live_and_trash(fc: AsyncFluidCloud, space: Space) -> tuple[list[str], int]:
    live = [f.client_key or "" for f in await fc.files.list(space.id)]
    trash = [f for f in await fc.files.list(trash=True) if f.space_id == space.id]
    return live, len(trash)


async def _space(emu: Emulator, fc: AsyncFluidCloud) -> Space:
    space = await fc.spaces.create("dask")
    # That request is in no client-side log: let it leave the emulator's window.
    await anyio.sleep(SERVER_WINDOW)
    emu.stats.reset()
    return space


def _run(
    client: distributed.Client,
    emu: Emulator,
    root: Path,
    space: Space,
    redis_url: str,
    reports: list[BatchReport],
    **options: Any,
) -> Any:
    limit = RateLimit(
        requests=REQUESTS, initiate=INITIATES, window=CLIENT_WINDOW, storage=redis_url
    )
    call = partial(
        upload_tree,
        client,
        root,
        space.id,
        key_prefix="in",
        api_key=emu.api_key,
        base_url=emu.base_url,
        rate_limit=limit,
        **{"on_batch": reports.append, **options},
    )
    return anyio.to_thread.run_sync(call)


async def test_tree_is_stored_once_through_two_workers(
    dask_client: distributed.Client, redis_url: str, tmp_path: Path
) -> None:
    files = _tree(tmp_path / "t")
    (tmp_path / "t" / "leak").symlink_to("/etc/hostname")  # never followed
    reports: list[BatchReport] = []
    async with (
        Emulator(_config()) as emu,
        AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as fc,
    ):
        space = await _space(emu, fc)
        summary: TreeSummary = await _run(
            dask_client, emu, tmp_path / "t", space, redis_url, reports, batch_files=8
        )
        assert summary.ok, summary.failures
        assert (summary.files, summary.uploaded, summary.unchanged) == (FILES, FILES, 0)
        assert summary.skips == [
            (str(tmp_path / "t" / "leak"), "symlink (not followed) (-> /etc/hostname)")
        ]
        assert summary.bytes_uploaded == sum(map(len, files.values()))
        assert summary.batches == 5 and len(reports) == 5
        assert sorted(r.batches_done for r in reports) == [1, 2, 3, 4, 5]
        assert len({r.worker for r in reports}) == 2  # both workers took batches
        live, trashed = await _live_and_trash(fc, space)
        assert sorted(live) == sorted(files)  # each key exactly once
        assert trashed == 0
        assert emu.stats.completes == FILES
        requests = sum(emu.stats.requests.values())
        assert emu.stats.rate_limited <= requests // 100, (emu.stats.rate_limited, requests)
        by_key = {f.client_key: f for f in await fc.files.list(space.id)}
        assert all(by_key[k].size == len(v) for k, v in files.items())
        assert "uploaded 40" in str(summary)


async def test_rerun_uploads_nothing(
    dask_client: distributed.Client, redis_url: str, tmp_path: Path
) -> None:
    files = _tree(tmp_path / "t")
    reports: list[BatchReport] = []
    async with (
        Emulator(_config()) as emu,
        AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as fc,
    ):
        space = await _space(emu, fc)
        first = await _run(dask_client, emu, tmp_path / "t", space, redis_url, reports)
        assert first.uploaded == FILES, first.failures
        emu.stats.reset()
        again = await _run(
            dask_client,
            emu,
            tmp_path / "t",
            space,
            redis_url,
            reports,
            batch_files=20,
            hash_cache=tmp_path / "hashes.sqlite",
        )
        assert (again.uploaded, again.unchanged, again.failed) == (0, FILES, 0)
        assert again.bytes_unchanged == sum(map(len, files.values()))
        # Only listings: one per batch (40 files in one page), no upload request.
        assert emu.stats.completes == 0 and emu.stats.storage_puts == 0
        assert sum(emu.stats.requests.values()) == 2, emu.stats.requests
        live, trashed = await _live_and_trash(fc, space)
        assert sorted(live) == sorted(files) and trashed == 0


async def test_lost_worker_batch_reruns_and_stores_each_file_once(
    dask_client: distributed.Client, redis_url: str, tmp_path: Path
) -> None:
    """SIGKILL the worker process running a batch once part of that batch is stored: Dask
    re-runs the batch on another worker, which skips what the lost attempt stored."""
    files = _tree(tmp_path / "t", size=16 * 1024)
    reports: list[BatchReport] = []
    async with (
        Emulator(_config()) as emu,
        AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as fc,
    ):
        space = await _space(emu, fc)
        emu.faults.storage_bandwidth = 32 * 1024  # ~0.5 s per file: batches take seconds
        batch_keys = sorted(files)  # the walk's order: batch i is files 10i..10i+9
        killed: dict[str, Any] = {}

        async def kill_one() -> None:
            pids = await anyio.to_thread.run_sync(dask_client.run, os.getpid)
            while True:
                await anyio.sleep(0.3)
                processing = await anyio.to_thread.run_sync(dask_client.processing)
                stored = {f.client_key for f in await fc.files.list(space.id)}
                for address, keys in processing.items():
                    for key in keys:
                        index = int(str(key).rsplit("-", 1)[1])
                        mine = set(batch_keys[index * 10 : index * 10 + 10])
                        if 2 <= len(mine & stored) < len(mine):
                            os.kill(pids[address], signal.SIGKILL)
                            killed.update(address=address, index=index, stored=mine & stored)
                            return

        async with anyio.create_task_group() as tg:
            tg.start_soon(kill_one)
            summary = await _run(
                dask_client,
                emu,
                tmp_path / "t",
                space,
                redis_url,
                reports,
                batch_files=10,
                max_files=2,
            )
            tg.cancel_scope.cancel()
        assert killed, "no worker was killed mid-batch"
        assert summary.ok and summary.files == FILES, summary.failures
        rerun = next(r for r in reports if r.index == killed["index"])
        assert rerun.worker != killed["address"]
        assert rerun.unchanged >= len(killed["stored"])  # not sent twice
        assert summary.uploaded + summary.unchanged == FILES
        live, trashed = await _live_and_trash(fc, space)
        assert sorted(live) == sorted(files)  # each key exactly once
        assert trashed == 0  # no superseded twin
        assert emu.stats.completes == FILES


async def test_key_is_not_in_task_arguments(
    dask_client: distributed.Client, redis_url: str, tmp_path: Path
) -> None:
    """What the scheduler holds for the batch tasks (what the dashboard can show) carries
    neither the API key nor the Redis URI; the worker plugin's repr hides the key."""
    _tree(tmp_path / "t")
    specs: list[bytes] = []

    def scheduler_tasks(dask_scheduler: Any) -> bytes:
        import pickle

        return b"".join(
            pickle.dumps(ts.run_spec)
            for key, ts in dask_scheduler.tasks.items()
            if str(key).startswith("fluidcloud-batch-")
        )

    def on_batch(report: BatchReport) -> None:
        if report.batches_done == 1:  # the other batches are still on the scheduler
            specs.append(dask_client.run_on_scheduler(scheduler_tasks))

    async with (
        Emulator(_config()) as emu,
        AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as fc,
    ):
        space = await _space(emu, fc)
        limit = RateLimit(
            requests=REQUESTS, initiate=INITIATES, window=CLIENT_WINDOW, storage=redis_url
        )
        call = partial(
            upload_tree,
            dask_client,
            tmp_path / "t",
            space.id,
            api_key=emu.api_key,
            base_url=emu.base_url,
            rate_limit=limit,
            batch_files=5,
            on_batch=on_batch,
        )
        summary = await anyio.to_thread.run_sync(call)
        assert summary.uploaded == FILES
    assert specs and b"part-" in specs[0]  # the batches' entries are there...
    assert emu.api_key.encode() not in specs[0]  # ...the key is not
    assert redis_url.encode() not in specs[0]
    plugins = await anyio.to_thread.run_sync(
        dask_client.run_on_scheduler, lambda dask_scheduler: dask_scheduler.worker_plugins
    )
    names = [n for n in plugins if str(n).startswith("fluidcloud-")]
    assert names


def test_plugin_teardown_closes_client_and_loop() -> None:
    from fluidcloud_async.dask import _ClientPlugin, _Connection

    plugin = _ClientPlugin(
        "fluidcloud-test", _Connection("fck_test_x", "http://127.0.0.1:9", None, None, None)
    )
    assert "fck_test_x" not in repr(plugin)
    portal, client = plugin.ensure()
    assert plugin.ensure() == (portal, client)  # one per process, reused
    plugin.teardown(None)  # type: ignore[arg-type]
    assert plugin.client is None and plugin.portal is None
    assert client._transport.sessions._closed  # closed: no session or limiter after this
    with pytest.raises(RuntimeError):
        portal.call(anyio.sleep, 0)  # the loop is stopped


async def test_leaving_early_cancels_the_batches_left(
    dask_client: distributed.Client, redis_url: str, tmp_path: Path
) -> None:
    _tree(tmp_path / "t")

    def stop(report: BatchReport) -> None:
        raise KeyboardInterrupt  # Ctrl-C while batches are still running

    def batch_tasks(dask_scheduler: Any) -> list[str]:
        return [str(k) for k in dask_scheduler.tasks if str(k).startswith("fluidcloud-batch-")]

    async with (
        Emulator(_config()) as emu,
        AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as fc,
    ):
        space = await _space(emu, fc)
        reports: list[BatchReport] = []
        with pytest.raises(KeyboardInterrupt):
            await _run(
                dask_client,
                emu,
                tmp_path / "t",
                space,
                redis_url,
                reports,
                batch_files=4,
                max_files=1,
                on_batch=stop,
            )
        for _ in range(100):  # the scheduler forgets the cancelled tasks
            if not await anyio.to_thread.run_sync(dask_client.run_on_scheduler, batch_tasks):
                break
            await anyio.sleep(0.1)
        else:
            pytest.fail("batch tasks still on the scheduler 10 s after leaving")
        await anyio.sleep(1.0)  # workers look every 0.2 s; a request in flight lands
        stored = len(await fc.files.list(space.id))
        await anyio.sleep(1.5)
        assert len(await fc.files.list(space.id)) == stored < FILES  # nothing more is sent
