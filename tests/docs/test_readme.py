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
    # The README is the landing page (a quickstart, the emulator); the guides' blocks run in
    # test_docs_pages.py.
    assert len(BLOCKS) >= 2


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


CLI_BLOCK = next(
    block
    for block in re.compile(r"^```bash\n(.*?)^```", re.S | re.M).findall(
        README.read_text(encoding="utf-8")
    )
    if block.startswith("fluidcloud spaces create")
)


async def test_readme_cli_block_runs(tmp_path: Path) -> None:
    """The command-line block, as written, with $SPACE and $FILE provided (the other bash
    blocks are the install, test and demo commands that CI runs itself)."""
    from fluidcloud_async import AsyncFluidCloud

    (tmp_path / "renders").mkdir()
    (tmp_path / "renders" / "out.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    async with Emulator(EmulatorConfig(scan_delay=0.05)) as emu:
        async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as fc:
            space = await fc.spaces.create("readme")
            file = await fc.files.upload(b"data", space.id, name="d.bin", wait_until_clean=True)
        env = {
            **os.environ,
            "FLUIDCLOUD_API_KEY": emu.api_key,
            "FLUIDCLOUD_BASE_URL": emu.base_url,
            "SPACE": space.id,
            "FILE": file.id,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        with anyio.fail_after(120):
            result = await anyio.run_process(
                ["bash", "-euo", "pipefail", "-c", CLI_BLOCK], cwd=tmp_path, env=env, check=False
            )
    out = result.stdout.decode()
    assert result.returncode == 0, f"{out}\n{result.stderr.decode()}"
    assert '"client_key": "renders/out.png"' in out
    assert (tmp_path / "out.png").read_bytes() == b"data"
