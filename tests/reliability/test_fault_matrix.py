"""A seeded fault matrix over real sockets: uploads (single and multipart), bulk ingest and
downloads against the emulator while it injects faults.

Every run must end in exactly one of two states:

* byte-exact success: the stored bytes (fetched with a presigned GET once the faults are
  off) have the SHA-256 of the source, and the space holds exactly the expected files;
* a typed error (a ``FluidCloudError``), after which the space holds no partial file and
  the emulator never saw a ``/complete`` with a partial part list.

Counts (runs, faults injected, retries, successes, typed failures, data mismatches) are
printed as one summary line (``pytest -s``) and written as JSON next to the test's tmp dir
(or to ``$FAULT_MATRIX_COUNTS`` when set); mismatches and raw errors must be 0.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

import fluidcloud_async.emulator._storage_server as storage_server
from fluidcloud_async import (
    ApiConnectionError,
    AsyncFluidCloud,
    File,
    FluidCloudError,
    NotFoundError,
)
from fluidcloud_async.emulator import Emulator, EmulatorConfig
from tests.conftest import RetrySleeps as QuickSleep
from tests.conftest import replace_retry_sleep

KiB = 1024
PART = 64 * KiB
THRESHOLD = 256 * KiB
#: Seeded runs per operation kind (kept small enough for the CI budget).
RUNS_PER_OP = int(os.environ.get("FAULT_MATRIX_RUNS", "60"))
#: Client timeout of the slow-storage runs; the stall is well past it.
SHORT_TIMEOUT = 0.25
STALL = 0.6


# -- helpers -----------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def payload(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Counts:
    runs: int = 0
    faults_injected: int = 0
    retries: int = 0
    successes: int = 0
    typed_failures: int = 0
    data_mismatches: int = 0
    raw_errors: int = 0
    partial_completes: int = 0
    by_op: Counter[str] = field(default_factory=Counter)
    by_fault: Counter[str] = field(default_factory=Counter)
    seconds_by_fault: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    failure_types: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "faults_injected": self.faults_injected,
            "retries": self.retries,
            "successes": self.successes,
            "typed_failures": self.typed_failures,
            "data_mismatches": self.data_mismatches,
            "raw_errors": self.raw_errors,
            "partial_completes": self.partial_completes,
            "by_op": dict(self.by_op),
            "by_fault": dict(self.by_fault),
            "failure_types": dict(self.failure_types),
            "seconds_by_fault": {k: round(v, 2) for k, v in self.seconds_by_fault.items()},
            "outcomes": dict(sorted(self.outcomes.items())),
        }


class CompleteSpy:
    """Wraps the emulator store's ``finish_multipart``: records every part list the API
    tried to complete with and flags any that is not exactly 1..N."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.calls = 0
        self.partial: list[str] = []
        store = emu.ctx.store
        real = store.finish_multipart

        async def spy(
            key: str, upload_id: str, parts: list[tuple[int, str]], part_size: int, size: int
        ) -> None:
            self.calls += 1
            expected = max(1, -(-size // part_size))
            numbers = [n for n, _ in parts]
            if numbers != list(range(1, expected + 1)):
                self.partial.append(f"{upload_id}: {numbers} of {expected}")
            await real(key, upload_id, parts, part_size, size)

        store.finish_multipart = spy  # type: ignore[method-assign]


class GetFaults:
    """Storage-GET faults the emulator has no knob for, patched into its GET handler:
    abrupt closes mid-body and stalls before the first byte."""

    def __init__(self) -> None:
        self.drop_next = 0
        self.stall_next = 0
        self.injected = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real = storage_server.stream_object

        async def stream(request: web.Request, store: Any, key: str, size: int, *a: Any) -> Any:
            if self.stall_next > 0:
                self.stall_next -= 1
                self.injected += 1
                await asyncio.sleep(STALL)
            if self.drop_next > 0 and size > 2:
                self.drop_next -= 1
                self.injected += 1
                response = web.StreamResponse(status=200)
                response.content_length = size
                await response.prepare(request)
                reader = await store.open_reader(key, 0, size // 2)
                await response.write(reader.read(size // 2))
                reader.close()
                assert request.transport is not None
                request.transport.abort()
                raise ConnectionResetError("GET dropped by the fault matrix")
            return await real(request, store, key, size, *a)

        monkeypatch.setattr(storage_server, "stream_object", stream)


def set_keepalive(emu: Emulator, seconds: float, *, close_idle: bool = False) -> int:
    """Make the emulator's servers close idle keep-alive connections after ``seconds``
    (and, with ``close_idle``, close the ones the client holds in its pool right now).

    aiohttp reads ``keepalive_timeout`` from the server's handler kwargs for every new
    connection; there is no public setter on a running server, hence the private attribute
    (asserted, so an aiohttp change fails loudly instead of silently testing nothing).
    Returns how many idle connections were closed.
    """
    closed = 0
    for runner in emu._runners:
        server = runner.server
        assert server is not None and isinstance(server._kwargs, dict)
        server._kwargs["keepalive_timeout"] = seconds
        if close_idle:
            for handler in server.connections:
                # What aiohttp's own keep-alive timer does to an idle connection (one that
                # waits for its next request): close the socket. ``handler.close()`` would
                # instead leave it open and unread, a black hole rather than a close.
                waiter = handler._waiter
                if waiter is not None and not waiter.done():
                    handler.force_close()
                    closed += 1
    return closed


# -- the matrix ---------------------------------------------------------------------------

UPLOAD_FAULTS = [
    "api_5xx_burst",
    "storage_5xx_burst",
    "storage_drop_mid_body",
    "complete_response_dropped",
    "api_429_storm",
    "api_429_too_long",
    "slow_storage",
    "random_mix",
    "api_refused",
    "storage_refused",
    "idle_keepalive_close",
]
DOWNLOAD_FAULTS = [
    "api_5xx_burst",
    "api_429_storm",
    "storage_get_drop_mid_body",
    "slow_storage_get",
    "api_refused",
    "storage_refused",
    "idle_keepalive_close",
]


@dataclass
class Run:
    seed: int
    op: str
    fault: str
    rng: random.Random
    timeout: float = 5.0
    api_origin: str | None = None
    injected_by_test: int = 0


class Matrix:
    def __init__(self, emu: Emulator, get_faults: GetFaults, tmp: Path, sleeps: QuickSleep) -> None:
        self.emu = emu
        self.get_faults = get_faults
        self.tmp = tmp
        self.sleeps = sleeps
        self.counts = Counts()
        self.bulk_files: Counter[str] = Counter()
        self.spy = CompleteSpy(emu)
        self.storage_origin = emu.ctx.local.origin if emu.ctx.local else ""

    # -- fault setup ------------------------------------------------------------------
    def arm(self, run: Run) -> None:
        f, rng = self.emu.faults, run.rng
        f.reset()
        f.reseed(run.seed)
        f.retry_after = 0.01
        kind = run.fault
        if kind == "api_5xx_burst":
            f.fail_next_api_requests = rng.randint(1, 5)
            f.fail_next_api_status = rng.choice([500, 502, 503, 504])
        elif kind == "storage_5xx_burst":
            f.fail_next_storage_puts = rng.randint(1, 5)
        elif kind == "storage_drop_mid_body":
            f.drop_next_storage_puts = rng.randint(1, 5)
        elif kind == "complete_response_dropped":
            f.drop_next_complete_responses = rng.randint(1, 2)
        elif kind == "api_429_storm":
            f.rate_limit_next_api_requests = rng.randint(1, 6)
        elif kind == "api_429_too_long":
            f.retry_after = 3600  # beyond MAX_RETRY_AFTER: raised at once, never slept
            f.rate_limit_next_api_requests = 1
        elif kind == "slow_storage":
            f.stall_next_storage_puts = rng.randint(1, 5)
            f.stall_next_seconds = STALL
            run.timeout = SHORT_TIMEOUT
        elif kind == "random_mix":
            f.api_error_rate = 0.15
            f.api_429_rate = 0.05
            f.storage_error_rate = 0.15
            f.storage_drop_rate = 0.1
        elif kind == "api_refused":
            run.api_origin = f"http://127.0.0.1:{closed_port()}"
            run.injected_by_test += 1
        elif kind == "storage_refused":
            assert self.emu.ctx.local is not None
            self.emu.ctx.local.origin = f"http://127.0.0.1:{closed_port()}"
            run.injected_by_test += 1
        elif kind == "idle_keepalive_close":
            keepalive = rng.choice([0.001, 0.005, 0.02])
            run.injected_by_test += set_keepalive(self.emu, keepalive, close_idle=True)
        elif kind == "none":
            pass
        elif kind == "storage_get_drop_mid_body":
            self.get_faults.drop_next = rng.randint(1, 5)
        elif kind == "slow_storage_get":
            self.get_faults.stall_next = rng.randint(1, 5)
            run.timeout = SHORT_TIMEOUT
        else:
            raise AssertionError(kind)

    def disarm(self) -> None:
        self.emu.faults.reset()
        self.get_faults.drop_next = self.get_faults.stall_next = 0
        if self.emu.ctx.local is not None:
            self.emu.ctx.local.origin = self.storage_origin
        set_keepalive(self.emu, 75.0)

    # -- verification (faults off) ----------------------------------------------------
    async def stored_bytes(self, fc: AsyncFluidCloud, file_id: str) -> bytes:
        self.emu.mark_clean(file_id)
        url = await fc.files.download_url(file_id)
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            assert resp.status == 200
            return await resp.read()

    async def check_space(
        self, fc: AsyncFluidCloud, space_id: str, expected: dict[str, bytes], ok: bool, run: Run
    ) -> None:
        files = await fc.files.list(space_id)
        names = sorted(f.original_name for f in files)
        if ok and names != sorted(expected):
            self.mismatch(run, f"space holds {names}, expected {sorted(expected)}")
        for f in files:
            source = expected.get(f.original_name)
            if source is None:
                self.mismatch(run, f"unexpected file {f.original_name}")
                continue
            stored = await self.stored_bytes(fc, f.id)
            if sha(stored) != sha(source) or f.size != len(source):
                self.mismatch(run, f"{f.original_name}: stored bytes differ from the source")

    def mismatch(self, run: Run, what: str) -> None:
        self.counts.data_mismatches += 1
        self.counts.problems.append(f"seed {run.seed} {run.op}/{run.fault}: {what}")

    async def setup_space(self, base: AsyncFluidCloud, name: str) -> Any:
        # Set-up is not under test. A POST is never resent by the SDK, and right after an
        # idle-close run a pooled connection may be one the server just closed, so the
        # harness retries its own set-up call on a connection error.
        for attempt in range(3):
            try:
                return await base.spaces.create(name)
            except ApiConnectionError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # -- one run ----------------------------------------------------------------------
    async def run(
        self,
        run: Run,
        base: AsyncFluidCloud,
        prepare: Callable[[AsyncFluidCloud, str], Awaitable[Any]],
        act: Callable[[AsyncFluidCloud, str, Any], Awaitable[Any]],
        expected: dict[str, bytes],
        verify: Callable[[AsyncFluidCloud, Any, Any], Awaitable[str | None]] | None = None,
    ) -> None:
        counts, stats = self.counts, self.emu.stats
        space = await self.setup_space(base, f"run-{run.seed}")
        state = await prepare(base, space.id)
        faults_before = sum(stats.faults.values()) + self.get_faults.injected
        completes_before = stats.completes
        sleeps_before = len(self.sleeps.calls)
        self.arm(run)
        started = time.monotonic()
        ok = False
        result: Any = None
        try:
            view = base.with_options(timeout=run.timeout)
            client = view
            if run.api_origin is not None:
                client = AsyncFluidCloud(self.emu.api_key, base_url=run.api_origin, max_retries=3)
            try:
                with anyio.fail_after(60):  # a hang is a failure, not a slow success
                    result = await act(client, space.id, state)
                ok = True
            finally:
                if client is not view:
                    await client.close()
        except FluidCloudError as exc:
            counts.typed_failures += 1
            counts.failure_types[type(exc).__name__] += 1
            counts.outcomes[f"{run.fault} -> {type(exc).__name__}"] += 1
        except Exception as exc:
            counts.raw_errors += 1
            counts.problems.append(f"seed {run.seed} {run.op}/{run.fault}: raw {exc!r}")
        finally:
            self.disarm()
        counts.seconds_by_fault[run.fault] += time.monotonic() - started
        counts.runs += 1
        counts.by_op[run.op] += 1
        counts.by_fault[run.fault] += 1
        counts.successes += ok
        if ok:
            counts.outcomes[f"{run.fault} -> ok"] += 1
        counts.retries += len(self.sleeps.calls) - sleeps_before
        injected = sum(stats.faults.values()) + self.get_faults.injected - faults_before
        counts.faults_injected += injected + run.injected_by_test
        if self.spy.partial:
            counts.partial_completes += len(self.spy.partial)
            counts.problems += [f"seed {run.seed}: partial complete {p}" for p in self.spy.partial]
            self.spy.partial.clear()
        if run.api_origin is not None and stats.completes != completes_before:
            counts.problems.append(f"seed {run.seed}: /complete reached a refused API?")
        if verify is not None:
            problem = await verify(base, state, result if ok else None)
            if problem:
                self.mismatch(run, problem)
        else:
            await self.check_space(base, space.id, expected, ok, run)


@pytest.fixture
async def matrix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Matrix, AsyncFluidCloud]]:
    get_faults = GetFaults()
    get_faults.install(monkeypatch)
    config = EmulatorConfig(multipart_threshold=THRESHOLD, part_size=PART, scan_delay=None)
    sleeps = replace_retry_sleep(monkeypatch, cap=0.005)  # at most 5 ms: 429 storms stay fast
    async with (
        Emulator(config) as emu,
        AsyncFluidCloud(emu.api_key, base_url=emu.base_url, max_retries=3) as fc,
    ):
        yield Matrix(emu, get_faults, tmp_path, sleeps), fc


def report(counts: Counts, tmp_path: Path, name: str, extra: dict[str, Any] | None = None) -> None:
    data = {**counts.as_dict(), **(extra or {})}
    line = (
        f"FAULT MATRIX [{name}]: runs={counts.runs} faults_injected={counts.faults_injected} "
        f"retries={counts.retries} successes={counts.successes} "
        f"typed_failures={counts.typed_failures} data_mismatches={counts.data_mismatches} "
        f"raw_errors={counts.raw_errors} partial_completes={counts.partial_completes}"
    )
    print("\n" + line)
    print(json.dumps(data, sort_keys=True))
    target = os.environ.get("FAULT_MATRIX_COUNTS")
    out = Path(target) if target else tmp_path / "fault_matrix_counts.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    previous[name] = data
    out.write_text(json.dumps(previous, indent=2, sort_keys=True))


def assert_clean(counts: Counts) -> None:
    assert counts.problems == [], "\n".join(counts.problems[:20])
    assert counts.data_mismatches == 0
    assert counts.raw_errors == 0
    assert counts.partial_completes == 0
    # The matrix really injected faults and really saw both outcomes.
    assert counts.faults_injected >= counts.runs // 2
    assert counts.successes > 0 and counts.typed_failures > 0
    assert counts.retries > 0


# -- uploads ------------------------------------------------------------------------------

SINGLE_SIZES = [0, 1, 1000, PART - 1, PART, THRESHOLD - 1]
MULTI_SIZES = [THRESHOLD, THRESHOLD + 1, 5 * PART, 5 * PART + 17, 7 * PART - 1]

Prepare = Callable[[AsyncFluidCloud, str], Awaitable[Any]]
Act = Callable[[AsyncFluidCloud, str, Any], Awaitable[Any]]
Verify = Callable[[AsyncFluidCloud, Any, Any], Awaitable[str | None]]


def upload_scenario(name: str, data: bytes, as_path: bool, tmp_path: Path) -> tuple[Prepare, Act]:
    async def prepare(client: AsyncFluidCloud, space_id: str) -> Any:
        if not as_path:
            return data
        path = tmp_path / name
        await anyio.Path(path).write_bytes(data)
        return path

    async def act(client: AsyncFluidCloud, space_id: str, source: Any) -> File:
        file = await client.files.upload(source, space_id, name=name)
        assert file.size == len(data) and file.sha256 == sha(data)
        return file

    return prepare, act


async def test_upload_fault_matrix(matrix: tuple[Matrix, AsyncFluidCloud], tmp_path: Path) -> None:
    m, fc = matrix
    for seed in range(2 * RUNS_PER_OP):
        rng = random.Random(f"upload-{seed}")
        op = "single" if seed % 2 == 0 else "multipart"
        fault = UPLOAD_FAULTS[(seed // 2) % len(UPLOAD_FAULTS)]
        data = payload(rng, rng.choice(SINGLE_SIZES if op == "single" else MULTI_SIZES))
        name = f"f{seed}.bin"
        prepare, act = upload_scenario(name, data, rng.random() < 0.5, tmp_path)
        await m.run(Run(seed, op, fault, rng), fc, prepare, act, expected={name: data})
    report(m.counts, tmp_path, "uploads")
    assert_clean(m.counts)
    assert m.counts.by_op["multipart"] > 0 and m.counts.by_op["single"] > 0


# -- bulk ingest ---------------------------------------------------------------------------


def bulk_scenario(
    m: Matrix, sources: dict[str, bytes], tmp_path: Path
) -> tuple[Prepare, Act, Verify]:
    async def prepare(client: AsyncFluidCloud, space_id: str) -> tuple[str, list[Path]]:
        paths = []
        for fname, content in sources.items():
            path = tmp_path / fname
            await anyio.Path(path).write_bytes(content)
            paths.append(path)
        return space_id, paths

    async def act(client: AsyncFluidCloud, space_id: str, state: tuple[str, list[Path]]) -> Any:
        # Per-file failures come back as results (fail_fast=False): the run "fails" typed
        # when any file did, and every error must itself be typed.
        results = await client.files.upload_many(state[1], space_id, rate_limit=None)
        errors = [r.error for r in results if not r.ok]
        raw = [e for e in errors if not isinstance(e, FluidCloudError)]
        if raw:
            raise AssertionError(f"untyped per-file errors: {raw!r}")
        m.bulk_files["ok"] += len(results) - len(errors)
        m.bulk_files["typed_failures"] += len(errors)
        if errors:
            assert isinstance(errors[0], FluidCloudError)
            raise errors[0]
        return results

    async def verify(
        client: AsyncFluidCloud, state: tuple[str, list[Path]], result: Any
    ) -> str | None:
        files = await client.files.list(state[0])
        names = [f.original_name for f in files]
        if len(names) != len(set(names)):
            return f"duplicate files in the space: {sorted(names)}"
        if result is not None and sorted(names) != sorted(sources):
            return f"space holds {sorted(names)}, expected {sorted(sources)}"
        for f in files:
            source = sources.get(f.original_name)
            if source is None:
                return f"unexpected file {f.original_name}"
            if sha(await m.stored_bytes(client, f.id)) != sha(source):
                return f"{f.original_name}: stored bytes differ from the source"
        return None

    return prepare, act, verify


async def test_bulk_ingest_fault_matrix(
    matrix: tuple[Matrix, AsyncFluidCloud], tmp_path: Path
) -> None:
    m, fc = matrix
    for seed in range(RUNS_PER_OP):
        rng = random.Random(f"bulk-{seed}")
        fault = UPLOAD_FAULTS[seed % len(UPLOAD_FAULTS)]
        sources: dict[str, bytes] = {}
        for i in range(rng.randint(2, 5)):
            sizes = SINGLE_SIZES if rng.random() < 0.7 else MULTI_SIZES
            sources[f"b{seed}-{i}.bin"] = payload(rng, rng.choice(sizes))
        prepare, act, verify = bulk_scenario(m, sources, tmp_path)
        await m.run(Run(seed, "bulk", fault, rng), fc, prepare, act, {}, verify=verify)
    report(m.counts, tmp_path, "bulk", extra={"files": dict(m.bulk_files)})
    assert_clean(m.counts)
    assert m.bulk_files["ok"] > 0 and m.bulk_files["typed_failures"] > 0


# -- downloads -----------------------------------------------------------------------------


def download_scenario(m: Matrix, data: bytes, dest: Path) -> tuple[Prepare, Act, Verify]:
    async def prepare(client: AsyncFluidCloud, space_id: str) -> str:
        file = await client.files.upload(data, space_id, name="src.bin")
        m.emu.mark_clean(file.id)
        return file.id

    async def act(client: AsyncFluidCloud, space_id: str, file_id: str) -> Any:
        return await client.files.download(file_id, dest)

    async def verify(client: AsyncFluidCloud, file_id: str, result: Any) -> str | None:
        target = anyio.Path(dest)
        present = await target.exists()
        if result is not None and (not present or sha(await target.read_bytes()) != sha(data)):
            return "downloaded bytes differ from the source"
        if result is None and present and await target.read_bytes() != data:
            # A typed failure must not leave something that passes for the file.
            return "a failed download left wrong bytes at its destination"
        return None

    return prepare, act, verify


async def test_download_fault_matrix(
    matrix: tuple[Matrix, AsyncFluidCloud], tmp_path: Path
) -> None:
    m, fc = matrix
    if not hasattr(fc.files, "download"):
        pytest.skip("files.download has not landed yet")
    for seed in range(RUNS_PER_OP):
        rng = random.Random(f"download-{seed}")
        fault = DOWNLOAD_FAULTS[seed % len(DOWNLOAD_FAULTS)]
        data = payload(rng, rng.choice(SINGLE_SIZES[1:] + MULTI_SIZES))
        prepare, act, verify = download_scenario(m, data, tmp_path / f"d{seed}.bin")
        await m.run(Run(seed, "download", fault, rng), fc, prepare, act, {}, verify=verify)
    report(m.counts, tmp_path, "downloads")
    assert_clean(m.counts)


# -- the harness itself ---------------------------------------------------------------------


async def test_matrix_detects_corruption(
    matrix: tuple[Matrix, AsyncFluidCloud], tmp_path: Path
) -> None:
    # The checker must be able to fail: store different bytes than the source claims.
    m, fc = matrix
    data = b"the real bytes"

    async def prepare(client: AsyncFluidCloud, space_id: str) -> None:
        return None

    async def act(client: AsyncFluidCloud, space_id: str, _state: Any) -> File:
        return await client.files.upload(b"other bytes!!!", space_id, name="x.bin")

    await m.run(
        Run(0, "single", "none", random.Random(0)),
        fc,
        prepare,
        act,
        expected={"x.bin": data},
    )
    assert m.counts.data_mismatches == 1
    assert m.counts.successes == 1


async def test_refused_api_is_typed_and_prompt(matrix: tuple[Matrix, AsyncFluidCloud]) -> None:
    m, _ = matrix
    started = time.monotonic()
    async with AsyncFluidCloud(m.emu.api_key, base_url=f"http://127.0.0.1:{closed_port()}") as dead:
        with pytest.raises(FluidCloudError):
            await dead.files.upload(b"x", "space")
    assert time.monotonic() - started < 10


async def test_failed_upload_leaves_nothing_completed(
    matrix: tuple[Matrix, AsyncFluidCloud],
) -> None:
    m, fc = matrix
    space = await fc.spaces.create("nothing")
    m.emu.faults.fail_next_storage_puts = 100
    with pytest.raises(FluidCloudError) as info:
        await fc.files.upload(payload(random.Random(1), 5 * PART), space.id, name="m.bin")
    m.emu.faults.reset()
    file_id = getattr(info.value, "file_id", None)
    assert file_id is not None
    with pytest.raises(NotFoundError):
        await fc.files.get(file_id)
    assert m.spy.calls == 0
