"""The threaded storage transport end to end over real TLS sockets (an https emulator).

https storage URLs go through ``_threaded.ThreadedStorage`` by default: these tests run a
representative subset of the transfer guarantees on it - byte-exact multipart and single
PUTs, retries with progress rollback, a stall, cancellation and client close with no
leaked thread or socket, a source that shrinks, the aiohttp knob - and record (not
assert) the caller's event-loop lag. Downloads likewise: byte-exact ranged and single
GETs to paths and file objects, a drop mid-range that resumes, an expired URL refreshed,
a longer body refused, a stalled body, and a prompt cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from aiohttp import web

from fluidcloud_async import (
    AsyncFluidCloud,
    SourceChangedError,
    Space,
    StorageProtocolError,
    UploadError,
)
from fluidcloud_async._exceptions import ClientClosed
from fluidcloud_async._transfer import _download
from fluidcloud_async._transfer._threaded import TRANSPORT_ENV, ThreadedStorage
from fluidcloud_async.emulator import Emulator, EmulatorConfig
from tests._tls import Tls, make_tls

from .conftest import (
    PART,
    THRESHOLD,
    MiB,
    NoSleep,
    Storage,
    random_bytes,
    record_storage_calls,
    scripted_storage,
    serve_record,
    sha,
    write,
)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def emu(tls: Tls) -> AsyncIterator[Emulator]:
    config = EmulatorConfig(
        multipart_threshold=THRESHOLD,
        part_size=PART,
        scan_delay=0.01,
        ssl_context=tls.server_context(),
    )
    async with Emulator(config) as emulator:
        assert emulator.storage_url.startswith("https://")
        yield emulator
        await emulator.wait_for_scans()


@pytest.fixture
async def fc(emu: Emulator, tls: Tls, sleeps: NoSleep) -> AsyncIterator[AsyncFluidCloud]:
    async with AsyncFluidCloud(
        emu.api_key, base_url=emu.base_url, ssl_context=tls.client_context()
    ) as client:
        yield client


@pytest.fixture
async def space(fc: AsyncFluidCloud) -> Space:
    return await fc.spaces.create("tls")


@pytest.fixture
def puts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """URL of every PUT attempt the threaded transport sends."""
    return record_storage_calls(monkeypatch, "put")


class Running:
    """Worker threads inside a PUT right now (anyio keeps idle workers: not leaks)."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.lock = threading.Lock()


@pytest.fixture
def running(monkeypatch: pytest.MonkeyPatch) -> Running:
    state = Running()
    original = ThreadedStorage._run

    def counted(self: ThreadedStorage, job: object) -> object:
        with state.lock:
            state.now += 1
            state.most = max(state.most, state.now)
        try:
            return original(self, job)  # type: ignore[arg-type]
        finally:
            with state.lock:
                state.now -= 1

    monkeypatch.setattr(ThreadedStorage, "_run", counted)
    return state


async def test_multipart_and_single_over_tls_are_byte_exact_through_threads(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, tmp_path: Path, puts: list[str]
) -> None:
    data = random_bytes(5 * PART + 123, seed=1)
    seen: list[int] = []
    f = await fc.files.upload(
        write(tmp_path / "big.bin", data), space.id, progress=lambda s, t: seen.append(s)
    )
    assert f.size == len(data) and f.sha256 == sha(data)
    assert seen[-1] == len(data) and seen == sorted(seen)
    assert len(puts) == 6 and all(u.startswith("https://") for u in puts)
    small = await fc.files.upload(b"hello", space.id, name="h.txt", content_type="text/x-odd")
    assert small.size == 5 and small.mime == "text/x-odd"
    one = random_bytes(THRESHOLD - 10, seed=2)  # one PUT from memory, not a path
    g = await fc.files.upload(one, space.id, name="one.bin")
    assert g.sha256 == sha(one)
    assert len(puts) == 8
    # The keep-alive pool served later parts on earlier connections.
    assert emu.stats.storage_puts == 8


async def test_drops_and_errors_are_retried_with_rollback(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, tmp_path: Path, sleeps: NoSleep
) -> None:
    data = random_bytes(4 * PART, seed=3)
    emu.faults.drop_next_storage_puts = 2
    emu.faults.fail_next_storage_puts = 1
    seen: list[int] = []
    f = await fc.files.upload(
        write(tmp_path / "f.bin", data), space.id, progress=lambda s, t: seen.append(s)
    )
    assert f.sha256 == sha(data)
    assert emu.stats.faults["storage_drop"] == 2 and emu.stats.faults["storage_error"] == 1
    assert len(sleeps.calls) >= 3  # one retry loop: each failure slept before its retry
    assert seen[-1] == len(data) and max(seen) <= len(data)


async def test_a_stalled_part_times_out_and_is_retried(
    emu: Emulator, tls: Tls, tmp_path: Path, sleeps: NoSleep
) -> None:
    data = random_bytes(3 * PART, seed=4)
    emu.faults.stall_next_storage_puts = 1
    emu.faults.stall_next_seconds = 30.0
    async with AsyncFluidCloud(
        emu.api_key,
        base_url=emu.base_url,
        ssl_context=tls.client_context(),
        timeout=1.0,
    ) as fc:
        space = await fc.spaces.create("stall")
        started = time.monotonic()
        f = await fc.files.upload(write(tmp_path / "s.bin", data), space.id)
        assert time.monotonic() - started < 15
    assert f.sha256 == sha(data)
    assert emu.stats.storage_puts >= 4  # the stalled part was sent again


async def test_cancellation_stops_threads_and_closes_sockets_promptly(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, tmp_path: Path, running: Running
) -> None:
    data = random_bytes(6 * PART, seed=5)
    path = write(tmp_path / "c.bin", data)
    emu.faults.storage_bandwidth = 256 * 1024  # bytes/s per connection: parts take seconds
    task = asyncio.ensure_future(fc.files.upload(path, space.id, max_concurrency=3))
    await asyncio.sleep(0.5)
    assert running.now == 3, "the parts run in worker threads"
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.5  # ~100 ms target; slack for a loaded CI box
    assert running.now == 0
    assert emu.stats.completes == 0
    emu.faults.storage_bandwidth = None
    # Aborted connections were closed by their threads, not pooled (an unclosed socket
    # would also fail the run: ResourceWarning is an error here).
    storage = fc.files._engine().storage.for_url(emu.storage_url)
    assert isinstance(storage, ThreadedStorage)
    assert not storage._active and not any(storage._pool.idle.values())


async def test_closing_the_client_mid_upload_raises_client_closed(
    emu: Emulator, tls: Tls, tmp_path: Path, running: Running
) -> None:
    data = random_bytes(4 * PART, seed=6)
    emu.faults.storage_bandwidth = 256 * 1024
    fc = AsyncFluidCloud(emu.api_key, base_url=emu.base_url, ssl_context=tls.client_context())
    space = await fc.spaces.create("close")
    task = asyncio.ensure_future(fc.files.upload(write(tmp_path / "x.bin", data), space.id))
    await asyncio.sleep(0.5)
    await fc.close()
    with pytest.raises(UploadError) as info:
        await task
    assert isinstance(info.value.cause, ClientClosed)
    assert running.most > 0 and running.now == 0
    emu.faults.storage_bandwidth = None


async def test_a_file_shrinking_under_a_thread_is_a_source_error_not_retried(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, tmp_path: Path
) -> None:
    data = random_bytes(4 * PART, seed=7)
    path = write(tmp_path / "shrink.bin", data)
    emu.faults.storage_bandwidth = 512 * 1024
    task = asyncio.ensure_future(fc.files.upload(path, space.id, max_concurrency=4))
    await asyncio.sleep(0.3)
    os.truncate(path, PART // 2)
    with pytest.raises(SourceChangedError):
        await task
    emu.faults.storage_bandwidth = None
    assert emu.stats.completes == 0


async def test_aiohttp_knob_and_plain_http_keep_the_aiohttp_path(
    fc: AsyncFluidCloud,
    space: Space,
    tmp_path: Path,
    puts: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = random_bytes(3 * PART, seed=8)
    monkeypatch.setenv(TRANSPORT_ENV, "aiohttp")
    f = await fc.files.upload(write(tmp_path / "a.bin", data), space.id)
    assert f.sha256 == sha(data) and puts == []
    monkeypatch.setenv(TRANSPORT_ENV, "auto")
    storage = fc.files._engine().storage.for_url("http://127.0.0.1:1/b/k")
    assert not isinstance(storage, ThreadedStorage)  # plain http: aiohttp + sendfile


async def test_event_loop_lag_during_a_tls_upload_is_recorded(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path
) -> None:
    """A benchmark figure, not an assertion: printed for the record (see bench_tls)."""
    data = random_bytes(8 * PART, seed=9)
    path = write(tmp_path / "lag.bin", data)
    lags: list[float] = []

    async def probe() -> None:
        while True:  # until cancelled
            due = time.monotonic() + 0.005
            await anyio.sleep(0.005)
            lags.append(time.monotonic() - due)

    async with anyio.create_task_group() as tg:
        tg.start_soon(probe)
        await fc.files.upload(path, space.id, checksum=False)
        tg.cancel_scope.cancel()
    lags.sort()
    print(f"loop lag p99 {lags[int(len(lags) * 0.99) - 1] * 1000:.1f} ms over {len(lags)} ticks")


async def test_cancelling_during_a_stuck_tls_handshake_is_prompt(
    fc: AsyncFluidCloud, running: Running
) -> None:
    """A storage host that accepts TCP but never answers the TLS handshake: the connect
    happens on the loop, the handshake in the thread, and a cancel stops both at once."""
    from fluidcloud_async._retry import RetryPolicy
    from fluidcloud_async._transfer._io import MemoryBody
    from fluidcloud_async._transfer._storage import StoragePolicy, put_with_retries

    accepted: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"https://127.0.0.1:{port}/bucket/key?X-Amz-Signature=secret"
    storage = fc.files._engine().storage.for_url(url)
    assert isinstance(storage, ThreadedStorage)
    data = memoryview(b"x" * 1000)
    task = asyncio.ensure_future(
        put_with_retries(
            storage,
            url,
            lambda: MemoryBody(data, None),
            length=1000,
            content_type=None,
            policy=StoragePolicy(retry=RetryPolicy(max_retries=0)),
            label="object",
        )
    )
    try:
        await asyncio.sleep(0.3)
        assert running.now == 1 and accepted  # in the handshake, in the thread
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 0.5
        assert running.now == 0 and not storage._active  # the thread ended before it
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


# -- downloads over TLS through threads -------------------------------------------------------


@pytest.fixture
def gets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """URL of every GET attempt the threaded transport sends."""
    return record_storage_calls(monkeypatch, "get")


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_download, "RANGE_PART", PART)


@pytest.fixture
async def tls_storage(tls: Tls) -> AsyncIterator[Storage]:
    """A scripted https storage (one route) for faults the emulator does not make."""
    async with scripted_storage(tls.server_context()) as box:
        yield box


def _range_of(request: web.Request, size: int) -> tuple[int, int]:
    header = request.headers.get("Range", "")
    if not header:
        return 0, size - 1
    first, _, last = header.removeprefix("bytes=").partition("-")
    return int(first), int(last) if last else size - 1


def _idle_and_active(fc: AsyncFluidCloud, url: str) -> tuple[int, int]:
    storage = fc.files._engine().storage.for_url(url)
    assert isinstance(storage, ThreadedStorage)
    return len(storage._active), sum(len(v) for v in storage._pool.idle.values())


async def test_downloads_over_tls_are_byte_exact_through_threads(
    fc: AsyncFluidCloud,
    space: Space,
    tmp_path: Path,
    gets: list[str],
    small_ranges: None,
) -> None:
    data = random_bytes(5 * PART + 321, seed=20)
    f = await fc.files.upload(data, space.id, name="d.bin", wait_until_clean=True)
    seen: list[int] = []
    dest = tmp_path / "d.bin"
    await fc.files.download(f.id, dest, max_concurrency=3, progress=lambda r, t: seen.append(r))
    assert dest.read_bytes() == data
    assert len(gets) == 6 and all(u.startswith("https://") for u in gets)  # 6 ranges
    assert seen == sorted(seen) and seen[-1] == len(data)
    buf = io.BytesIO()  # a file object: chunks handed to the loop, in order
    await fc.files.download(f.id, buf)
    assert buf.getvalue() == data and len(gets) == 7
    small = await fc.files.upload(b"tiny", space.id, name="t.bin", wait_until_clean=True)
    await fc.files.download(small.id, tmp_path / "t.bin")
    assert (tmp_path / "t.bin").read_bytes() == b"tiny"
    assert os.listdir(tmp_path) == ["d.bin", "t.bin"]


async def test_a_drop_mid_range_resumes_from_the_last_chunk_written(
    fc: AsyncFluidCloud,
    tls_storage: Storage,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    gets: list[str],
) -> None:
    """Each 3 MiB range dies after 2.5 MiB the first time: the retry asks for the rest
    from the last whole 1 MiB chunk written (not from the range's start)."""
    monkeypatch.setattr(_download, "RANGE_PART", 3 * MiB)
    data = random_bytes(6 * MiB + 77, seed=21)
    serve_record(fc, monkeypatch, tls_storage.url, data)
    cut: set[int] = set()

    async def handler(request: web.Request) -> web.StreamResponse:
        start, last = _range_of(request, len(data))
        resp = web.StreamResponse(status=206)
        resp.headers["Content-Range"] = f"bytes {start}-{last}/{len(data)}"
        resp.content_length = last - start + 1
        await resp.prepare(request)
        body = data[start : last + 1]
        if last not in cut and len(body) > 2 * MiB:
            cut.add(last)
            await resp.write(body[: 5 * MiB // 2])
            await asyncio.sleep(0.2)  # the client reads it all before the reset
            assert request.transport is not None
            request.transport.abort()
            return resp
        await resp.write(body)
        return resp

    tls_storage.handler = handler
    dest = tmp_path / "r.bin"
    await fc.files.download("f1", dest, max_concurrency=2)
    assert dest.read_bytes() == data
    assert len(cut) == 2 and len(gets) == 5  # 3 ranges, 2 of them resumed once
    assert f"bytes={2 * MiB}-{3 * MiB - 1}" in tls_storage.ranges
    assert f"bytes={5 * MiB}-{6 * MiB - 1}" in tls_storage.ranges


async def test_an_expired_url_is_refreshed_over_tls(
    fc: AsyncFluidCloud, space: Space, emu: Emulator, tmp_path: Path, gets: list[str]
) -> None:
    data = random_bytes(3000, seed=22)
    f = await fc.files.upload(data, space.id, name="e.bin", wait_until_clean=True)
    original = fc.files.download_url
    urls: list[str] = []

    async def download_url(file_id: str) -> str:
        urls.append(await original(file_id))
        if len(urls) == 1:
            emu.advance_time(2 * 3600)  # the first URL is dead on arrival
        return urls[-1]

    fc.files.download_url = download_url  # type: ignore[method-assign]
    await fc.files.download(f.id, tmp_path / "e.bin")
    assert (tmp_path / "e.bin").read_bytes() == data
    assert gets == urls and len(urls) == 2  # the 403 was not retried: refreshed


async def test_a_longer_body_over_tls_is_a_protocol_error_not_retried(
    fc: AsyncFluidCloud,
    tls_storage: Storage,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sleeps: NoSleep,
    gets: list[str],
) -> None:
    data = random_bytes(1000, seed=23)
    serve_record(fc, monkeypatch, tls_storage.url, data)
    writes: list[tuple[int, int]] = []
    real = _download._pwritev

    def spy(fd: int, chunks: list[bytes], offset: int) -> None:
        writes.append((offset, sum(len(c) for c in chunks)))
        real(fd, chunks, offset)

    monkeypatch.setattr(_download, "_pwritev", spy)

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()  # no Content-Length: only counting can tell
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError):
            for _ in range(40):
                await resp.write(data + b"x" * (64 * 1024))
            await resp.write_eof()
        return resp

    tls_storage.handler = handler
    with pytest.raises(StorageProtocolError, match="more than the 1000 bytes"):
        await fc.files.download("f1", tmp_path / "o.bin")
    assert len(gets) == 1 and sleeps.calls == [] and writes == []
    assert os.listdir(tmp_path) == []
    assert _idle_and_active(fc, tls_storage.url) == (0, 0)  # that connection was closed


async def test_cancelling_a_tls_download_is_prompt_and_leaks_nothing(
    fc: AsyncFluidCloud,
    space: Space,
    emu: Emulator,
    tmp_path: Path,
    running: Running,
    small_ranges: None,
) -> None:
    data = random_bytes(6 * PART, seed=24)
    f = await fc.files.upload(data, space.id, name="c.bin", wait_until_clean=True)
    _active, idle = _idle_and_active(fc, emu.storage_url)  # the upload's, pooled
    emu.faults.storage_bandwidth = 256 * 1024  # bytes/s per connection: ranges take seconds
    task = asyncio.ensure_future(fc.files.download(f.id, tmp_path / "c.bin", max_concurrency=3))
    await asyncio.sleep(0.5)
    assert running.now == 3, "the ranges run in worker threads"
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.5  # ~100 ms target; slack for a loaded CI box
    assert running.now == 0
    emu.faults.storage_bandwidth = None
    # The ranges took pooled connections (or new ones); the aborted ones were closed by
    # their threads, not put back (an unclosed socket would also fail the run:
    # ResourceWarning is an error here).
    assert _idle_and_active(fc, emu.storage_url) == (0, max(0, idle - 3))
    assert os.listdir(tmp_path) == []


async def test_a_stalled_download_times_out_and_resumes(
    emu: Emulator,
    tls: Tls,
    tls_storage: Storage,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sleeps: NoSleep,
) -> None:
    """The body stops arriving (the connection stays open): after the read timeout the
    watcher aborts the thread and the retry resumes."""
    data = random_bytes(3 * MiB, seed=25)
    stalled: list[int] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        start, last = _range_of(request, len(data))
        resp = web.StreamResponse(status=206 if request.headers.get("Range") else 200)
        if request.headers.get("Range"):
            resp.headers["Content-Range"] = f"bytes {start}-{last}/{len(data)}"
        resp.content_length = last - start + 1
        await resp.prepare(request)
        if not stalled:
            stalled.append(start)
            await resp.write(data[start : start + 2 * MiB])
            await asyncio.sleep(30)
        await resp.write(data[start : last + 1])
        return resp

    tls_storage.handler = handler
    async with AsyncFluidCloud(
        emu.api_key, base_url=emu.base_url, ssl_context=tls.client_context(), timeout=1.0
    ) as fc:
        serve_record(fc, monkeypatch, tls_storage.url, data)
        started = time.monotonic()
        await fc.files.download("f1", tmp_path / "s.bin", max_concurrency=1)
        assert time.monotonic() - started < 15
    assert (tmp_path / "s.bin").read_bytes() == data
    assert tls_storage.ranges == ["", f"bytes={2 * MiB}-{3 * MiB - 1}"]


async def test_connection_close_answers_are_read_and_never_pooled(
    fc: AsyncFluidCloud,
    tls_storage: Storage,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    gets: list[str],
) -> None:
    """http.client hands the socket to a "Connection: close" answer: it is read whole (or
    refused) and closed with it - a leak would fail the run as a ResourceWarning."""
    data = random_bytes(3 * MiB + 5, seed=26)
    serve_record(fc, monkeypatch, tls_storage.url, data)
    body = data

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.Response(body=body)
        resp.force_close()
        return resp

    tls_storage.handler = handler
    await fc.files.download("f1", tmp_path / "k.bin")
    assert (tmp_path / "k.bin").read_bytes() == data
    body = data + b"more"  # announced longer than the record: refused before the body
    with pytest.raises(StorageProtocolError, match="announced"):
        await fc.files.download("f1", tmp_path / "l.bin")
    assert len(gets) == 2 and _idle_and_active(fc, tls_storage.url) == (0, 0)
    assert os.listdir(tmp_path) == ["k.bin"]
