"""Settings shared by the benchmark groups, test-data generation and per-run figures."""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._measure import GiB, MiB, median

GENERATE_BLOCK = 16 * MiB


@dataclass
class Settings:
    """How big and how often; ``quick`` shrinks everything for the smoke test."""

    quick: bool = False
    reps: int = 5
    profile: bool = False
    """Profile the SDK client once more under py-spy when it misses a target."""
    work: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    log: Any = print

    def say(self, message: str) -> None:
        self.log(message)


def scratch_root() -> Path:
    """A RAM-backed place for generated files when there is one (no disk writeback noise)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())


def random_file(path: Path, size: int) -> Path:
    """A file of ``size`` random bytes (kept when it already has that size)."""
    if path.exists() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        left = size
        while left > 0:  # bounded by size / GENERATE_BLOCK
            n = min(GENERATE_BLOCK, left)
            fh.write(os.urandom(n))
            left -= n
    return path


def sparse_file(path: Path, size: int) -> Path:
    """A sparse file of ``size`` bytes (reads back zeros; costs no space)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


def new_space_id() -> str:
    return str(uuid.uuid4())


def mib_s(nbytes: int, seconds: float) -> float:
    return nbytes / MiB / seconds if seconds > 0 else 0.0


def per_run_figures(run: dict[str, Any], nbytes: int) -> dict[str, Any]:
    """MiB/s, CPU-seconds per GiB and RSS in MiB of one measured run."""
    wall = float(run["wall_s"])
    cpu = float(run["cpu_s"])
    growth = run.get("rss_growth")
    peak = run.get("peak_rss")
    return {
        **run,
        "mib_s": mib_s(nbytes, wall),
        "cpu_s_per_gib": cpu / (nbytes / GiB) if nbytes else None,
        "peak_rss_mib": None if peak is None else peak / MiB,
        "rss_growth_mib": None if growth is None else growth / MiB,
    }


SUMMARY_KEYS = (
    "mib_s",
    "ratio_raw",
    "ratio_curl",
    "ratio_curl_sha",
    "cpu_s_per_gib",
    "peak_rss_mib",
    "rss_growth_mib",
    "wall_s",
    "cpu_s",
    "sink_cpu_share",
)


def summarize_clients(
    reps: list[dict[str, dict[str, Any]]], keys: tuple[str, ...] = SUMMARY_KEYS
) -> dict[str, dict[str, Any]]:
    """Per client: the median of each figure over the repetitions, and how many ran."""
    names: list[str] = []
    for rep in reps:
        names.extend(n for n in rep if n not in names)
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        runs = [rep[name] for rep in reps if name in rep]
        ok = [r for r in runs if not r.get("error")]
        summary: dict[str, Any] = {k: median(r.get(k) for r in ok) for k in keys}
        summary["runs"] = len(ok)
        errors = [r["error"] for r in runs if r.get("error")]
        if errors:
            summary["errors"] = errors[:3]
        out[name] = summary
    return out


def target(
    what: str, wanted: str, value: float | None, met: bool | None, client: str | None = None
) -> dict[str, Any]:
    """One target line for the report (``met`` None: could not be measured); ``client`` is
    the summary row it is about."""
    return {"what": what, "target": wanted, "value": value, "met": met, "client": client}


def missed_clients(targets: list[dict[str, Any]]) -> list[str]:
    """The clients behind missed targets, each once, in order."""
    out: list[str] = []
    for t in targets:
        if t["met"] is False and t.get("client") and t["client"] not in out:
            out.append(t["client"])
    return out
