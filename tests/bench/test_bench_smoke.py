"""The benchmark suite's quick mode still runs and writes well-formed results.

Benchmarks are not tests: nothing here looks at a speed or a duration, only at the shape of
what ``python -m benchmarks.run --quick`` produces.
"""

from __future__ import annotations

import json
import numbers
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
GROUPS = {"throughput", "tls", "capped", "bulk", "overhead", "memory", "fleet", "sync"}
# Groups that need a program the test run does not install (nginx for "tls") skip with a
# reason instead of failing.
MAY_SKIP = {"tls"}
RUN_TIMEOUT = 240


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    work = tmp_path_factory.mktemp("bench-data")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(out), "--work", str(work)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    latest = json.loads((out / "latest.json").read_text())
    for name in GROUPS:
        assert json.loads((out / f"{name}.json").read_text())["name"] == name
    return latest


def _is_figure(value: object) -> bool:
    return value is None or (isinstance(value, numbers.Real) and value == value)  # not NaN


def test_meta_records_the_machine(quick_results: dict[str, Any]) -> None:
    meta = quick_results["meta"]
    assert meta["quick"] is True
    assert isinstance(meta["cores"], int) and meta["cores"] >= 1
    for key in ("python", "aiohttp", "fluidcloud_async", "date"):
        assert isinstance(meta[key], str) and meta[key]


def test_every_group_ran_with_summary_and_targets(quick_results: dict[str, Any]) -> None:
    groups = quick_results["groups"]
    assert set(groups) == GROUPS
    for name, group in groups.items():
        assert "error" not in group, (name, group.get("error"))
        if "skipped" in group:
            assert name in MAY_SKIP and group["skipped"], (name, group)
            continue
        assert group["reps"], name
        assert group["summary"], name
        for client, summary in group["summary"].items():
            assert not summary.get("errors"), (name, client, summary.get("errors"))
            assert summary["runs"] >= 1, (name, client)
            assert all(_is_figure(v) for k, v in summary.items() if k != "runs"), summary
        for target in group["targets"]:
            assert set(target) == {"what", "target", "value", "met", "client"}
            assert _is_figure(target["value"]) and target["met"] in (True, False, None)


def test_the_sdk_and_its_baselines_were_measured(quick_results: dict[str, Any]) -> None:
    groups = quick_results["groups"]
    throughput = groups["throughput"]["summary"]
    assert any(n.startswith("fluidcloud_async") for n in throughput)
    assert "raw TCP (sendfile)" in throughput and "naive gather (aiohttp, bytes)" in throughput
    for name, summary in throughput.items():
        assert summary["mib_s"] > 0, name
        assert summary["cpu_s_per_gib"] >= 0, name
        if "‖" not in name:  # a shell runs curl beside openssl: no one process's peak
            assert summary["peak_rss_mib"] > 0, name
    overhead = groups["overhead"]["summary"]["fluidcloud_async files.get"]
    assert overhead["cpu_ratio_to_bare"] > 0
    bulk = groups["bulk"]["summary"]
    assert all(s["files_s"] > 0 for s in bulk.values())
    if any(n.startswith("fluidcloud_async") for n in bulk):
        assert bulk["fluidcloud_async upload_many, rate limits on"]["api_requests"] > 0
    memory = groups["memory"]["summary"]
    assert all(s["rss_growth_mib"] is not None for s in memory.values())


def test_the_tls_group_ran_or_said_why_not(quick_results: dict[str, Any]) -> None:
    tls = quick_results["groups"]["tls"]
    if "skipped" in tls:
        pytest.skip(f"tls group: {tls['skipped']}")
    summary = tls["summary"]
    sdk = [n for n in summary if n.startswith("fluidcloud_async")]
    assert len(sdk) == 4, list(summary)  # default and checksum off, threads and aiohttp TLS
    for name in sdk:
        assert summary[name]["mib_s"] > 0, name
        assert summary[name]["lag_p99_ms"] is not None, name
        assert tls["cpu_by_thread"][name], name
    assert tls["params"]["tls"].startswith("TLSv1.3"), tls["params"]
