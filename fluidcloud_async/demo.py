"""The README demo: the main job, end to end, on the embedded emulator.

``python -m fluidcloud_async.demo`` starts a local emulator, creates a space, uploads a
generated ~300 MB file (multipart, parallel parts, with a progress bar) and a handful of
small files, waits for the scan verdict, mints a public raw link, downloads the bytes back
through it, checks the SHA-256 and prints a summary. It exits non-zero if anything is off.
``--small`` runs the same job on a 24 MiB file (with a lowered multipart threshold so the
multipart path is still exercised), as CI does.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anyio

from . import AsyncFluidCloud
from .emulator import Emulator, EmulatorConfig

MiB = 1024 * 1024


def _generate(path: Path, size: int) -> str:
    """Write ``size`` pseudo-random bytes to ``path`` in 1 MiB blocks; return their SHA-256."""
    digest = hashlib.sha256()
    seed = hashlib.sha256(b"fluidcloud-demo").digest()
    block = (seed * (MiB // len(seed) + 1))[:MiB]
    with path.open("wb") as out:
        written = 0
        counter = 0
        while written < size:
            # Vary every block so parts differ (identical parts would hide ordering bugs).
            chunk = counter.to_bytes(8, "big") + block[8 : min(MiB, size - written)]
            chunk = chunk[: min(MiB, size - written)]
            out.write(chunk)
            digest.update(chunk)
            written += len(chunk)
            counter += 1
    return digest.hexdigest()


Report = Callable[[int, int], None]


def _progress_printer(label: str, total: int) -> tuple[Report, Callable[[], None]]:
    """A progress callback: a rich bar on a terminal, sparse plain lines otherwise."""
    try:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TransferSpeedColumn,
        )
    except ImportError:  # pragma: no cover - rich is optional
        Progress = None  # type: ignore[assignment,misc]
    if Progress is not None and sys.stdout.isatty():
        bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
        )
        task = bar.add_task(label, total=total)
        bar.start()
        return (lambda sent, _t: bar.update(task, completed=sent)), bar.stop
    last = [-1]

    def plain(sent: int, total_: int) -> None:
        decile = sent * 10 // max(total_, 1)
        if decile != last[0]:
            last[0] = decile
            print(f"  {label}: {sent / MiB:7.1f} / {total_ / MiB:.1f} MiB", flush=True)

    return plain, lambda: None


async def run(size: int, small: bool) -> int:
    """Run the demo job; return the process exit code."""
    config = EmulatorConfig(scan_delay=0.2)
    if small:
        config = EmulatorConfig(scan_delay=0.2, multipart_threshold=8 * MiB, part_size=5 * MiB)
    with tempfile.TemporaryDirectory(prefix="fluidcloud-demo-") as tmp:
        work = Path(tmp)
        big = work / "dataset.bin"
        print(f"Generating {size / MiB:.0f} MiB test file ...", flush=True)
        expected = await anyio.to_thread.run_sync(_generate, big, size)
        small_files = {f"notes/note-{i}.txt": f"note {i}\n".encode() * 100 for i in range(5)}

        async with (
            Emulator(config) as emu,
            AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as fc,
        ):
            print(f"Emulator API at {emu.base_url}")
            space = await fc.spaces.create("demo")
            report, stop = _progress_printer("dataset.bin", size)
            started = time.perf_counter()
            try:
                uploaded = await fc.files.upload(
                    big,
                    space.id,
                    client_key="demo/dataset.bin",
                    progress=report,
                    max_concurrency=8,
                )
            finally:
                stop()
            elapsed = time.perf_counter() - started

            for key, data in small_files.items():
                await fc.files.upload(data, space.id, name=Path(key).name, client_key=key)

            clean = await fc.files.wait_until_clean(uploaded.id, timeout=60)
            link = await fc.files.public_url(clean.id)

            digest = hashlib.sha256()
            received = 0
            async with fc.session.get(link.url) as resp:
                resp.raise_for_status()
                async for chunk in resp.content.iter_chunked(MiB):
                    digest.update(chunk)
                    received += len(chunk)
            resolved = await fc.files.resolve("demo/dataset.bin")
            quota = await fc.quota.usage()

        ok = digest.hexdigest() == expected and received == size and resolved.id == clean.id
        print()
        print(f"  file        {clean.original_name}  ({size / MiB:.1f} MiB, id {clean.id})")
        rate = size / MiB / elapsed
        print(f"  upload      {elapsed:.2f} s  ({rate:.1f} MiB/s, 8 parts in flight)")
        print(f"  small files {len(small_files)} uploaded")
        print(f"  scan        {clean.scan_status}")
        print(f"  raw link    {link.url}")
        print(f"  round trip  {received / MiB:.1f} MiB, sha256 {digest.hexdigest()[:16]}...")
        print(f"  quota       {quota.bytes_used / MiB:.1f} MiB used")
        print(f"  result      {'OK: bytes match' if ok else 'MISMATCH'}")
        return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m fluidcloud_async.demo", description=__doc__)
    parser.add_argument("--small", action="store_true", help="a 24 MiB file (CI mode)")
    parser.add_argument("--size-mib", type=int, default=None, help="size of the generated file")
    args = parser.parse_args(argv)
    size_mib = args.size_mib or (24 if args.small else 300)
    if size_mib <= 0:
        parser.error("--size-mib must be positive")
    return anyio.run(run, size_mib * MiB, args.small)


if __name__ == "__main__":
    sys.exit(main())
