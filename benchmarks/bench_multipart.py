"""Quick multipart throughput check of the upload engine (the full suite is bench_throughput).

A generated file goes up as parts to the discarding sink of ``benchmarks._sink`` (its own
process, answering quoted ETags and the two API calls of an upload). In the same run:

* ``sequential``: aiohttp, each part read whole into ``bytes`` and PUT one after another;
* ``curl``: ``curl --parallel`` PUTting the same parts (pre-split into part files);
* ``sdk cN``: ``fc.files.upload(path, max_concurrency=N)`` with checksum on and off, plus
  the same with sendfile disabled (the pooled preadv path TLS connections use) and from
  an in-memory ``bytes`` source.

Each client runs in its own process; printed: MiB/s (median), ratio to sequential and to
curl, client CPU seconds per GiB and peak RSS growth (MiB).

    python -m benchmarks.bench_multipart [--size-mib 1024] [--part-mib 16] [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._procs import ServerProcess

MiB = 1024 * 1024


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MiB


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _client(args: dict[str, Any]) -> dict[str, Any]:
    """One measured upload (runs in a child process)."""
    from fluidcloud_async import AsyncFluidCloud

    origin, path, size = args["origin"], args["path"], args["size"]
    base_rss = _rss_mib()
    peak = [base_rss]

    async def sample() -> None:
        while True:
            peak[0] = max(peak[0], _rss_mib())
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    async with AsyncFluidCloud("fck_test_bench", base_url=origin) as fc:
        source: Any = path
        if args["kind"] == "bytes":
            source = await asyncio.to_thread(Path(path).read_bytes)
            base_rss = _rss_mib()
        cpu0, t0 = _cpu(), time.perf_counter()
        if args["kind"] == "sequential":
            await _sequential(fc, origin, path, size)
        else:
            await _sdk_upload(fc, source, args)
        elapsed, cpu = time.perf_counter() - t0, _cpu() - cpu0
    sampler.cancel()
    return {
        "mib_s": size / MiB / elapsed,
        "cpu_s_per_gib": cpu / (size / 1024**3),
        "rss_growth_mib": max(peak[0], _rss_mib()) - base_rss,
    }


def _use_aiofiles_body() -> None:
    """Swap the engine's file body for the plain aiofiles pattern (read bytes, write them)."""
    import aiofiles

    from fluidcloud_async._transfer import _io, _upload

    class AiofilesBody(_io._Body):
        def __init__(self, reader: Any, offset: int, length: int, **kw: Any) -> None:
            super().__init__(length, kw.get("progress"), kw.get("stall_timeout", 300.0))
            self._path, self._offset = reader.bench_path, offset

        async def _write(self, writer: Any) -> None:
            async with aiofiles.open(self._path, "rb") as fh:
                await fh.seek(self._offset)
                left = self._length
                while left:
                    data = await fh.read(min(_io.CHUNK, left))
                    await writer.write(data)
                    left -= len(data)
                    await self._count(len(data))

    _upload.FileBody = AiofilesBody  # type: ignore[assignment,misc]


async def _sdk_upload(fc: Any, source: Any, args: dict[str, Any]) -> None:
    from fluidcloud_async._transfer._sources import describe
    from fluidcloud_async._transfer._upload import SlotPool, upload_file

    # files.upload plus the internal sendfile toggle, to measure the fallback read path.
    from fluidcloud_async._validate_args import upload_options

    options = upload_options(space_id="bench-space", checksum=args["checksum"])
    options = type(options)(**{**options.__dict__, "use_sendfile": args.get("sendfile", True)})
    spec = describe(source, name="bench.bin")
    if args["kind"] == "aiofiles":
        from fluidcloud_async._transfer import _sources

        _use_aiofiles_body()
        _sources.Reader.bench_path = source  # type: ignore[attr-defined]
    file = await upload_file(fc.files._engine(), spec, options, pool=SlotPool(args["concurrency"]))
    assert file.size == args["size"]


async def _sequential(fc: Any, origin: str, path: str, size: int) -> None:
    """The sync-SDK style: one part at a time, each read whole into bytes."""
    ticket = await fc.uploads.initiate(original_name="seq.bin", size=size, space_id="bench-space")
    parts = []
    with open(path, "rb") as fh:  # noqa: ASYNC230 - the naive baseline, on purpose
        for part in ticket.part_urls:
            fh.seek((part.part_number - 1) * ticket.part_size)
            data = fh.read(ticket.part_size)
            async with fc.session.put(part.url, data=data, skip_auto_headers=["Content-Type"]) as r:
                r.raise_for_status()
                parts.append({"PartNumber": part.part_number, "ETag": r.headers["ETag"]})
    await fc.uploads.complete(
        file_id=ticket.file_id,
        key=ticket.key,
        original_name="seq.bin",
        size=size,
        space_id="bench-space",
        upload_id=ticket.upload_id,
        parts=parts,
    )


def _run_child(args: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_multipart", "--child", json.dumps(args)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _curl(origin: str, path: Path, size: int, part: int, parallel: int, work: Path) -> float:
    urls = [f"{origin}/bucket/curl/x?partNumber={n}" for n in range(1, -(-size // part) + 1)]
    parts_dir = work / "curl-parts"
    parts_dir.mkdir(exist_ok=True)
    lines = []
    with open(path, "rb") as src:
        for n, url in enumerate(urls):
            dest = parts_dir / f"p{n:05d}"
            length = min(part, size - n * part)
            if not dest.exists() or dest.stat().st_size != length:
                with open(dest, "wb") as out:
                    os.copy_file_range(src.fileno(), out.fileno(), length, n * part, 0)
            lines += [f'upload-file = "{dest}"', f'url = "{url}"', "output = /dev/null"]
    config = work / "curl.cfg"
    config.write_text("\n".join(lines) + "\n")
    argv = [
        "curl",
        "-sS",
        "--no-progress-meter",
        "--fail",
        "--parallel",
        "--parallel-max",
        str(parallel),
        "-K",
        config,
    ]
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, timeout=600, stdout=subprocess.DEVNULL)
    return size / MiB / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--part-mib", type=int, default=16)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated config labels")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.child:
        print(json.dumps(asyncio.run(_client(json.loads(ns.child)))))
        return
    size, part = ns.size_mib * MiB, ns.part_mib * MiB
    root = Path(
        os.environ.get("BENCH_DIR")
        or ("/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir())
    )
    work = Path(tempfile.mkdtemp(prefix="bench-multipart-", dir=root))
    try:
        path = work / "data.bin"
        with open(path, "wb") as fh:
            for _ in range(0, size, 16 * MiB):
                fh.write(os.urandom(min(16 * MiB, size - fh.tell())))
        configs: list[tuple[str, dict[str, Any]]] = [("sequential", {"kind": "sequential"})]
        for conc in (1, 4, 8, 16):
            for checksum in (False, True):
                label = f"sdk c{conc} {'sha' if checksum else 'nosha'}"
                configs.append((label, {"kind": "path", "concurrency": conc, "checksum": checksum}))
        for checksum in (False, True):
            tag = "sha" if checksum else "nosha"
            configs.append(
                (
                    f"preadv c8 {tag}",
                    {"kind": "path", "concurrency": 8, "checksum": checksum, "sendfile": False},
                )
            )
            configs.append(
                (f"bytes c8 {tag}", {"kind": "bytes", "concurrency": 8, "checksum": checksum})
            )
            configs.append(
                (f"aiofiles c8 {tag}", {"kind": "aiofiles", "concurrency": 8, "checksum": checksum})
            )
        wanted = {x.strip() for x in ns.only.split(",") if x.strip()}
        results: dict[str, list[dict[str, Any]]] = {}
        curl: list[float] = []
        sink_cfg = {"part_size": part, "multipart_threshold": 1}
        with ServerProcess("benchmarks._sink:start", sink_cfg) as sink:
            origin = sink.info["origin"]
            for _ in range(ns.reps):
                if shutil.which("curl") and (not wanted or "curl" in wanted):
                    curl.append(_curl(origin, path, size, part, 8, work))
                for label, cfg in configs:
                    if wanted and label not in wanted:
                        continue
                    args = {**cfg, "origin": origin, "path": str(path), "size": size}
                    results.setdefault(label, []).append(_run_child(args))
        seq = statistics.median(r["mib_s"] for r in results.get("sequential", [{"mib_s": 0}]))
        curl_med = statistics.median(curl) if curl else 0.0
        print(f"{ns.size_mib} MiB, {ns.part_mib} MiB parts, {ns.reps} reps, {os.cpu_count()} cores")
        print(
            f"{'config':<18}{'MiB/s':>9}{'x seq':>8}{'x curl':>8}{'CPU s/GiB':>11}{'RSS+ MiB':>10}"
        )
        if curl:
            print(f"{'curl --parallel 8':<18}{curl_med:>9.0f}{curl_med / seq if seq else 0:>8.2f}")
        for label, runs in results.items():
            mib = statistics.median(r["mib_s"] for r in runs)
            cpu = statistics.median(r["cpu_s_per_gib"] for r in runs)
            rss = max(r["rss_growth_mib"] for r in runs)
            print(
                f"{label:<18}{mib:>9.0f}{mib / seq if seq else 0:>8.2f}"
                f"{mib / curl_med if curl_med else 0:>8.2f}{cpu:>11.2f}{rss:>10.1f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
