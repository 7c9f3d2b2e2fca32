"""The README demo command runs end to end (in its small CI mode)."""

from __future__ import annotations

import sys

import anyio


async def test_demo_small_mode_succeeds() -> None:
    with anyio.fail_after(180):
        result = await anyio.run_process(
            [sys.executable, "-m", "fluidcloud_async.demo", "--small"], check=False
        )
    out = result.stdout.decode()
    assert result.returncode == 0, f"{out}\n{result.stderr.decode()}"
    assert "OK: bytes match" in out
    assert "raw link" in out
