"""Soak benchmark (not a CI test): one very large upload and a large bulk ingest against the
emulator under a light fault rate, bounded in time and count.

    python -m benchmarks.soak                 # 10 GiB sparse file + 10,000 files
    python -m benchmarks.soak --quick         # 1 GiB + 500 files, a sanity run
    python -m benchmarks.soak --json out.json

The emulator runs in a child process so that the peak RSS reported (``VmHWM``) is the
client's own. The large file is sparse (``truncate``): reading it costs no disk, so the
figure is the SDK's and the emulator's. Every upload sends its SHA-256 and the emulator
re-hashes the stored bytes before accepting ``/complete``, so a success is byte-exact.
Reported: wall time, throughput, peak RSS, retries, the emulator's injected fault counts,
and typed failures (a failure that is not a ``FluidCloudError`` aborts the run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import anyio

GiB = 1024**3
MiB = 1024**2
KiB = 1024


# -- the emulator child ------------------------------------------------------------------


def _emulator_child(conn: Connection, data_dir: str, fault_rate: float, seed: int) -> None:
    asyncio.run(_serve_emulator(conn, data_dir, fault_rate, seed))


async def _serve_emulator(conn: Connection, data_dir: str, fault_rate: float, seed: int) -> None:
    from fluidcloud_async.emulator import Emulator, EmulatorConfig, Faults

    faults = Faults(
        seed=seed,
        api_error_rate=fault_rate,
        api_429_rate=fault_rate / 2,
        retry_after=0.05,
        storage_error_rate=fault_rate,
        storage_drop_rate=fault_rate / 2,
    )
    # No scan: it would re-read every object once more and the soak measures the upload.
    config = EmulatorConfig(data_dir=data_dir, scan_delay=None, faults=faults)
    async with Emulator(config) as emu:
        conn.send({"base_url": emu.base_url, "api_key": emu.api_key})
        while True:
            command = await asyncio.to_thread(_recv, conn)
            if command in (None, "stop"):
                return
            if command == "stats":
                s = emu.stats
                conn.send(
                    {
                        "faults": dict(s.faults),
                        "api_requests": sum(s.requests.values()),
                        "completes": s.completes,
                        "storage_puts": s.storage_puts,
                        "storage_puts_ok": s.storage_puts_ok,
                        "storage_put_bytes": s.storage_put_bytes,
                        "rate_limited": s.rate_limited,
                    }
                )


def _recv(conn: Connection) -> Any:
    try:
        return conn.recv()
    except EOFError:
        return None


class EmulatorProcess:
    def __init__(self, data_dir: str, fault_rate: float, seed: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_emulator_child, args=(child, data_dir, fault_rate, seed), daemon=True
        )
        self.process.start()
        if not self.conn.poll(60):
            raise RuntimeError("the emulator did not start within 60 s")
        self.info: dict[str, str] = self.conn.recv()

    def stats(self) -> dict[str, Any]:
        self.conn.send("stats")
        result: dict[str, Any] = self.conn.recv()
        return result

    def stop(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.conn.send("stop")
        self.process.join(30)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)


# -- measurements --------------------------------------------------------------------------


def peak_rss_mib() -> float:
    """Peak resident set of this process (VmHWM), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class RetryCounter:
    """Counts retries (API and storage alike) by standing in for the retry module's sleep."""

    def __init__(self) -> None:
        self.count = 0

    def install(self) -> RetryCounter:
        from fluidcloud_async import _retry

        _retry.sleep = self  # this process only runs the soak: no need to restore it
        return self

    async def __call__(self, seconds: float) -> None:
        self.count += 1
        await anyio.sleep(min(seconds, 0.2))  # light faults: keep the soak about the data


def delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in after.items():
        if isinstance(value, dict):
            out[key] = {k: v - before.get(key, {}).get(k, 0) for k, v in value.items()}
        else:
            out[key] = value - before.get(key, 0)
    return out


# -- phases --------------------------------------------------------------------------------


def make_sparse(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        fh.truncate(size)  # sparse: no disk blocks, reads return zeros


async def big_file(
    emu: EmulatorProcess, workdir: Path, size: int, concurrency: int, limit: float
) -> dict[str, Any]:
    from fluidcloud_async import AsyncFluidCloud

    path = workdir / "big.sparse"
    make_sparse(path, size)
    retries = RetryCounter().install()
    before = emu.stats()
    started = time.monotonic()
    error: str | None = None
    async with AsyncFluidCloud(
        emu.info["api_key"], base_url=emu.info["base_url"], max_retries=5
    ) as fc:
        space = await fc.spaces.create("soak-big")
        try:
            with anyio.fail_after(limit):
                file = await fc.files.upload(path, space.id, max_concurrency=concurrency)
            assert file.size == size
        except TimeoutError:
            error = f"time limit of {limit:.0f}s reached"
        except Exception as exc:
            from fluidcloud_async import FluidCloudError

            if not isinstance(exc, FluidCloudError):
                raise
            error = f"{type(exc).__name__}: {exc}"
    elapsed = time.monotonic() - started
    path.unlink()
    return {
        "bytes": size,
        "seconds": round(elapsed, 2),
        "mib_per_s": round(size / MiB / elapsed, 1),
        "retries": retries.count,
        "error": error,
        "emulator": delta(emu.stats(), before),
        "peak_rss_mib_so_far": round(peak_rss_mib(), 1),
    }


async def bulk(
    emu: EmulatorProcess, workdir: Path, count: int, concurrency: int, seed: int, limit: float
) -> dict[str, Any]:
    from fluidcloud_async import AsyncFluidCloud, FluidCloudError

    rng = random.Random(seed)
    folder = workdir / "bulk"
    folder.mkdir()
    total = 0
    paths = []
    for i in range(count):
        size = rng.choice([0, 1, 100, 4 * KiB, 32 * KiB, 200 * KiB])
        path = folder / f"f{i:05d}.bin"
        path.write_bytes(rng.randbytes(size))
        paths.append(path)
        total += size
    retries = RetryCounter().install()
    failures: Counter[str] = Counter()
    before = emu.stats()
    started = time.monotonic()
    done = 0
    async with AsyncFluidCloud(
        emu.info["api_key"], base_url=emu.info["base_url"], max_retries=5
    ) as fc:
        space = await fc.spaces.create("soak-bulk")
        how = "files.upload_many" if hasattr(fc.files, "upload_many") else "files.upload x N"
        try:
            with anyio.fail_after(limit):
                if how == "files.upload_many":
                    # The emulator enforces no rate limits here; the client-side limiter of
                    # the documented caps (300 initiates/min) would turn this into a
                    # 30-minute wait, so it is off: the soak measures the data path.
                    result = await fc.files.upload_many(
                        paths, space.id, max_concurrency=concurrency, rate_limit=None
                    )
                    done, failed = _bulk_outcome(result, count)
                    failures.update(failed)
                else:
                    gate = anyio.Semaphore(concurrency)

                    async def one(path: Path) -> None:
                        nonlocal done
                        async with gate:
                            try:
                                await fc.files.upload(path, space.id)
                                done += 1
                            except FluidCloudError as exc:
                                failures[type(exc).__name__] += 1

                    async with anyio.create_task_group() as tg:
                        for path in paths:
                            tg.start_soon(one, path)
        except TimeoutError:
            failures["time limit reached"] += 1
    elapsed = time.monotonic() - started
    return {
        "files": count,
        "bytes": total,
        "via": how,
        "seconds": round(elapsed, 2),
        "files_per_s": round(done / elapsed, 1),
        "mib_per_s": round(total / MiB / elapsed, 2),
        "succeeded": done,
        "typed_failures": dict(failures),
        "retries": retries.count,
        "emulator": delta(emu.stats(), before),
        "peak_rss_mib_so_far": round(peak_rss_mib(), 1),
    }


def _bulk_outcome(result: Any, count: int) -> tuple[int, Counter[str]]:
    """Successes and failure kinds of an ``upload_many`` result, whatever its shape."""
    failed: Counter[str] = Counter()
    items = list(result) if isinstance(result, (list, tuple)) else []
    succeeded = 0
    for item in items:
        if isinstance(item, BaseException):
            failed[type(item).__name__] += 1
        elif getattr(item, "error", None) is not None:
            failed[type(item.error).__name__] += 1
        else:
            succeeded += 1
    if not items:
        succeeded = count
    return succeeded, failed


# -- entry ---------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    size = int(args.size_gib * GiB)
    with tempfile.TemporaryDirectory(prefix="fluidcloud-soak-") as tmp:
        workdir = Path(tmp)
        emu = EmulatorProcess(str(workdir / "emulator"), args.fault_rate, args.seed)
        try:
            report: dict[str, Any] = {
                "config": {
                    "size_gib": args.size_gib,
                    "files": args.files,
                    "fault_rate": args.fault_rate,
                    "seed": args.seed,
                    "concurrency": args.concurrency,
                    "cpus": os.cpu_count(),
                }
            }
            if size > 0:
                print(f"soak: uploading a {args.size_gib} GiB sparse file ...", file=sys.stderr)
                report["big_file"] = await big_file(
                    emu, workdir, size, args.concurrency, args.max_seconds / 2
                )
                print(json.dumps(report["big_file"]), file=sys.stderr)
            if args.files > 0:
                print(f"soak: bulk ingest of {args.files} files ...", file=sys.stderr)
                report["bulk"] = await bulk(
                    emu, workdir, args.files, 4 * args.concurrency, args.seed, args.max_seconds / 2
                )
                print(json.dumps(report["bulk"]), file=sys.stderr)
        finally:
            emu.stop()
    report["peak_rss_mib"] = round(peak_rss_mib(), 1)
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=10.0)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--fault-rate", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="whole-run bound")
    parser.add_argument("--quick", action="store_true", help="1 GiB and 500 files")
    parser.add_argument("--json", type=Path, help="write the report here too")
    args = parser.parse_args(argv)
    if args.quick:
        args.size_gib, args.files = 1.0, 500
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = anyio.run(main_async, args)
    text = json.dumps(report, indent=2, sort_keys=True)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
