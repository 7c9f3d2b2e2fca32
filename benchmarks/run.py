"""Run the benchmark suite: ``python -m benchmarks.run [--quick] [--only NAME] [--reps N]``.

The full run (``nox -s bench``) writes ``benchmarks/results/<group>.json``,
``benchmarks/results/latest.json``, ``benchmarks/results/throughput.png`` and regenerates
``BENCHMARKS.md``. ``--quick`` (tiny sizes, one repetition) writes its JSON to a temporary
directory unless ``--out`` is given and leaves BENCHMARKS.md alone: it only proves the suite
still runs. ``--only`` writes the chosen groups' JSON and leaves ``latest.json`` and
BENCHMARKS.md alone, since those describe one complete run. ``--assemble`` (no run)
renders BENCHMARKS.md from the latest ``<group>.json`` of each group instead, every
section marked with its own run's date, commit and repetitions.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from . import (
    _report,
    bench_bulk,
    bench_capped,
    bench_fleet,
    bench_memory,
    bench_overhead,
    bench_sync,
    bench_throughput,
    bench_tls,
)
from ._common import Settings, scratch_root

ROOT = Path(__file__).resolve().parent.parent
GROUPS: dict[str, Callable[[Settings], dict[str, Any]]] = {
    bench_throughput.NAME: bench_throughput.run,
    bench_tls.NAME: bench_tls.run,
    bench_capped.NAME: bench_capped.run,
    bench_bulk.NAME: bench_bulk.run,
    bench_overhead.NAME: bench_overhead.run,
    bench_memory.NAME: bench_memory.run,
    bench_fleet.NAME: bench_fleet.run,
    bench_sync.NAME: bench_sync.run,
}
TITLES = {
    bench_throughput.NAME: bench_throughput.TITLE,
    bench_tls.NAME: bench_tls.TITLE,
    bench_capped.NAME: bench_capped.TITLE,
    bench_bulk.NAME: bench_bulk.TITLE,
    bench_overhead.NAME: bench_overhead.TITLE,
    bench_memory.NAME: bench_memory.TITLE,
    bench_fleet.NAME: bench_fleet.TITLE,
    bench_sync.NAME: bench_sync.TITLE,
}
# The sync group renders its own BENCHMARKS.md section (kept beside its measurement).
_report.SECTIONS.setdefault(bench_sync.NAME, bench_sync.section)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _curl_version() -> str | None:
    curl = shutil.which("curl")
    if curl is None:
        return None
    out = subprocess.run([curl, "--version"], capture_output=True, text=True, timeout=30)
    return " ".join(out.stdout.split()[:2]) or None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _commit() -> str | None:
    """HEAD, marked when the package's files differ from it (what ran is not HEAD)."""
    head = _git("rev-parse", "--short", "HEAD")
    if head and _git("status", "--porcelain", "--", "fluidcloud_async"):
        head += " + uncommitted changes in fluidcloud_async/"
    return head


def machine_meta(settings: Settings) -> dict[str, Any]:
    from fluidcloud_async import __version__

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "memory_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "aiohttp": _version("aiohttp"),
        "httpx": _version("httpx"),
        "curl": _curl_version(),
        "fluidcloud_async": __version__,
        "commit": _commit(),
        "quick": settings.quick,
        "reps": 1 if settings.quick else settings.reps,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument(
        "--only", action="append", choices=sorted(GROUPS), help="run only this group (repeat)"
    )
    parser.add_argument("--reps", type=int, default=5, help="repetitions (full mode; >= 1)")
    parser.add_argument("--out", type=Path, default=None, help="results directory")
    parser.add_argument("--markdown", type=Path, default=None, help="BENCHMARKS.md to write")
    parser.add_argument("--work", type=Path, default=None, help="scratch directory for data")
    parser.add_argument("--keep-data", action="store_true", help="keep generated files")
    parser.add_argument(
        "--no-profile", action="store_true", help="do not profile clients that miss a target"
    )
    parser.add_argument(
        "--assemble",
        action="store_true",
        help="render BENCHMARKS.md from the latest <group>.json of every group (no run)",
    )
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be >= 1")
    return args


def assemble(out: Path, markdown: Path) -> None:
    """BENCHMARKS.md (and the plot) from each group's latest ``--only`` run: a full run
    takes over an hour at 5 repetitions (the rate-limited fleet rows alone ~35 min), so
    groups are re-run on their own and the page says which run each section comes from."""
    groups: dict[str, dict[str, Any]] = {}
    runs: list[dict[str, Any]] = []
    for name in GROUPS:
        path = out / f"{name}.json"
        if not path.exists():
            continue
        group = json.loads(path.read_text())
        run = group.pop("meta")
        groups[name] = {**group, "run": run}
        runs.append(run)
    if not runs:
        raise SystemExit(f"no <group>.json in {out}")
    meta = {**max(runs, key=lambda r: r["date"]), "assembled": True}
    plot_ref = None
    if _report.plot(out / "throughput.png", groups):
        plot_ref = os.path.relpath(out / "throughput.png", markdown.parent)
    markdown.write_text(_report.markdown(meta, groups, plot_ref))
    _log(f"summary: {markdown} (assembled from {len(groups)} groups)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.assemble:
        assemble(
            args.out or ROOT / "benchmarks" / "results", args.markdown or ROOT / "BENCHMARKS.md"
        )
        return 0
    started = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="fluidcloud-bench-", dir=scratch_root()))
    settings = Settings(
        quick=args.quick,
        reps=args.reps,
        work=work,
        log=_log,
        profile=not (args.quick or args.no_profile),
    )
    complete = not args.only
    if args.out is not None:
        out = args.out
    elif args.quick:
        out = Path(tempfile.mkdtemp(prefix="fluidcloud-bench-quick-"))
    else:
        out = ROOT / "benchmarks" / "results"
    markdown = args.markdown
    if markdown is None and complete and not args.quick:
        markdown = ROOT / "BENCHMARKS.md"
    meta = machine_meta(settings)
    groups: dict[str, dict[str, Any]] = {}
    failed = False
    try:
        for name, run in GROUPS.items():
            if args.only and name not in args.only:
                continue
            _log(f"== {name} ==")
            # Each group notes the code it ran: others may commit while a long run goes on.
            commit = _commit()
            try:
                groups[name] = {**run(settings), "commit": commit}
            except Exception as exc:  # one broken group must not lose the others' figures
                failed = True
                traceback.print_exc()
                groups[name] = {
                    "name": name,
                    "title": TITLES[name],
                    "error": repr(exc),
                    "commit": commit,
                }
    finally:
        if not args.keep_data:
            shutil.rmtree(work, ignore_errors=True)
    meta["duration_s"] = time.perf_counter() - started
    if complete:
        latest = _report.write_json(out, meta, groups)
        _log(f"results: {latest}")
    else:
        out.mkdir(parents=True, exist_ok=True)
        for name, group in groups.items():
            path = out / f"{name}.json"
            path.write_text(_report.json.dumps({"meta": meta, **group}, indent=1))
            _log(f"results: {path}")
    plot_ref = None
    if complete and not args.quick and _report.plot(out / "throughput.png", groups):
        plot_ref = os.path.relpath(out / "throughput.png", (markdown or ROOT).parent)
    if markdown is not None:
        markdown.write_text(_report.markdown(meta, groups, plot_ref))
        _log(f"summary: {markdown}")
    for group in groups.values():
        for t in group.get("targets", []):
            _log(
                f"  [{group['name']}] {t['what']}: {t['value']} (target {t['target']}) -> "
                f"{ {True: 'met', False: 'MISSED', None: 'not measured'}[t['met']] }"
            )
    return 1 if failed else 0


def _log(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    sys.exit(main())
