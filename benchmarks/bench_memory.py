"""Group 5: memory. Peak RSS of 1 GiB and 8 GiB uploads at concurrency 8.

Sparse files (they read back as zeros and cost no space) go to the discarding sink with the
default options (checksum on). Growth is the client process's peak RSS (``ru_maxrss``)
minus its RSS right before ``files.upload`` was called, with the client already built.
"""

from __future__ import annotations

from typing import Any

from ._common import Settings, new_space_id, sparse_file, summarize_clients
from ._common import target as make_target
from ._measure import ClientFailed, GiB, MiB, failure, rotate, run_python
from ._procs import ServerProcess

NAME = "memory"
TITLE = "Peak RSS of large uploads at concurrency 8"
API_KEY = "fck_test_benchmark"
CONCURRENCY = 8
PART_SIZE = 16 * MiB
BASE_ALLOWANCE = 64 * MiB


def engine_chunk() -> int:
    """The engine's read-chunk size (what one in-flight part holds at a time)."""
    try:
        from fluidcloud_async._transfer._io import CHUNK
    except ImportError:  # the engine moved it: fall back to its documented 1 MiB
        return 1 * MiB
    return int(CHUNK)


def _label(size: int) -> str:
    amount = f"{size // GiB} GiB" if size >= GiB else f"{size // MiB} MiB"
    return f"fluidcloud_async {amount}"


def run(settings: Settings) -> dict[str, Any]:
    sizes = [16 * MiB, 64 * MiB] if settings.quick else [1 * GiB, 8 * GiB]
    reps_count = 1 if settings.quick else settings.reps
    part_size = 4 * MiB if settings.quick else PART_SIZE
    files = {s: sparse_file(settings.work / NAME / f"sparse-{s}.bin", s) for s in sizes}
    space_id = new_space_id()
    chunk = engine_chunk()
    bound = BASE_ALLOWANCE + CONCURRENCY * chunk
    reps: list[dict[str, dict[str, Any]]] = []
    config = {"part_size": part_size, "multipart_threshold": part_size}
    with ServerProcess("benchmarks._sink:start", config) as sink:
        for rep in range(reps_count):
            settings.say(f"[{NAME}] repetition {rep + 1}/{reps_count}")
            results: dict[str, dict[str, Any]] = {}
            for size in rotate(sizes, rep):
                args = {
                    "api_key": API_KEY,
                    "base_url": sink.info["origin"],
                    "space_id": space_id,
                    "path": str(files[size]),
                    "size": size,
                    "concurrency": CONCURRENCY,
                    "checksum": True,
                }
                label = _label(size)
                try:
                    run = run_python("benchmarks.bench_throughput:sdk_upload", args)
                except ClientFailed as exc:
                    results[label] = failure(exc)
                    settings.say(f"  {label:30s} ERROR {exc}")
                    continue
                run["rss_growth_mib"] = run["rss_growth"] / MiB
                run["peak_rss_mib"] = run["peak_rss"] / MiB
                run["mib_s"] = size / MiB / run["wall_s"]
                results[label] = run
                settings.say(
                    f"  {label:30s} peak {run['peak_rss_mib']:6.0f} MiB  "
                    f"growth {run['rss_growth_mib']:6.1f} MiB  {run['mib_s']:6.0f} MiB/s"
                )
            reps.append(results)
    summary = summarize_clients(reps, ("rss_growth_mib", "peak_rss_mib", "mib_s", "cpu_s"))
    targets = []
    for size in sizes:
        # The worst repetition counts for a bound on memory, not the median.
        growths = [r[_label(size)]["rss_growth"] for r in reps if "rss_growth" in r[_label(size)]]
        worst = max(growths) / MiB if growths else None
        summary.setdefault(_label(size), {})["rss_growth_max_mib"] = worst
        targets.append(
            make_target(
                f"{_label(size)}: peak RSS growth (worst of {len(growths)}), MiB",
                f"<= {bound / MiB:.0f} (64 + {CONCURRENCY} x {chunk / MiB:g} MiB chunk)",
                worst,
                None if worst is None else worst <= bound / MiB,
            )
        )
    return {
        "name": NAME,
        "title": TITLE,
        "params": {
            "sizes": sizes,
            "concurrency": CONCURRENCY,
            "part_size": part_size,
            "chunk": chunk,
            "bound_bytes": bound,
            "reps": reps_count,
            "checksum": True,
        },
        "reps": reps,
        "summary": summary,
        "targets": targets,
        "notes": [],
    }
