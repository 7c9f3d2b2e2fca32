"""Memory is bounded by the parts in flight, not by the file size (subprocess RSS)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

MiB = 1024 * 1024
GiB = 1024 * MiB
PART = 16 * MiB
CONCURRENCY = 8
CHUNK = 1 * MiB
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


@pytest.fixture(scope="module")
def sink() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.transfer._sink", str(PART)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)
        proc.stdout.close()  # type: ignore[union-attr]


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


def _growth(sink: str, path: Path, *, sendfile: bool, checksum: bool) -> float:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.transfer._rss_child",
            sink,
            str(path),
            str(CONCURRENCY),
            "1" if sendfile else "0",
            "1" if checksum else "0",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=240,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["size"] == path.stat().st_size
    return float(result["growth_mib"])


@pytest.mark.slow
def test_rss_does_not_grow_with_file_size(sink: str, tmp_path: Path) -> None:
    # The pooled preadv path (what TLS connections use) is the one holding buffers;
    # sendfile holds none. Checksum off keeps the 5 GiB of traffic quick.
    small = _growth(sink, _sparse(tmp_path / "1g", GiB), sendfile=False, checksum=False)
    large = _growth(sink, _sparse(tmp_path / "4g", 4 * GiB), sendfile=False, checksum=False)
    bound = 64 + CONCURRENCY * CHUNK / MiB
    assert small <= bound, small
    assert large <= bound, large
    assert large <= small + 16, (small, large)  # 4x the bytes, not more memory


@pytest.mark.slow
def test_rss_with_checksum_and_sendfile(sink: str, tmp_path: Path) -> None:
    growth = _growth(sink, _sparse(tmp_path / "1g", GiB), sendfile=True, checksum=True)
    assert growth <= 64 + CONCURRENCY * CHUNK / MiB, growth
