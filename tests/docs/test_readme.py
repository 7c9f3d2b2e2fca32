"""Every ```python block of the README runs, as a script, against the emulator."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import anyio
import pytest

from fluidcloud_async.emulator import Emulator, EmulatorConfig

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
BLOCKS = BLOCK.findall(README.read_text(encoding="utf-8"))


def test_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
async def test_readme_block_runs(code: str, tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(scan_delay=0.05)) as emu:
        env = {
            **os.environ,
            "FLUIDCLOUD_API_KEY": emu.api_key,
            "FLUIDCLOUD_BASE_URL": emu.base_url,
            "PYTHONWARNINGS": "error",
        }
        with anyio.fail_after(120):
            result = await anyio.run_process(
                [sys.executable, "-c", code], cwd=tmp_path, env=env, check=False
            )
    assert result.returncode == 0, (
        f"README block failed:\n{code}\n--- stdout\n{result.stdout.decode()}"
        f"\n--- stderr\n{result.stderr.decode()}"
    )
