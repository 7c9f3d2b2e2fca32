"""Every example runs against the emulator, as a user would run it (a subprocess)."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import anyio
import pytest

from fluidcloud_async.emulator import Emulator, EmulatorConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
async def emulator_env() -> AsyncIterator[dict[str, str]]:
    async with Emulator(EmulatorConfig(scan_delay=0.05)) as emu:
        yield {
            **os.environ,
            "FLUIDCLOUD_API_KEY": emu.api_key,
            "FLUIDCLOUD_BASE_URL": emu.base_url,
            "PYTHONWARNINGS": "error",
        }


@pytest.mark.parametrize(
    "script",
    ["quickstart.py", "share_after_scan.py", "download.py", "bulk_ingest.py", "dask_ingest.py"],
)
async def test_example_script_runs(
    script: str, emulator_env: dict[str, str], tmp_path: Path
) -> None:
    with anyio.fail_after(120):
        result = await anyio.run_process(
            [sys.executable, str(EXAMPLES / script)], cwd=tmp_path, env=emulator_env, check=False
        )
    out = result.stdout.decode()
    assert result.returncode == 0, f"{out}\n{result.stderr.decode()}"
    assert out.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_fastapi_app(emulator_env: dict[str, str]) -> None:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "fastapi_app:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    env = {**emulator_env, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    async with await anyio.open_process(command, cwd=EXAMPLES, env=env) as server:
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
                with anyio.fail_after(30):
                    while True:
                        try:
                            async with http.get("/files/nothing") as resp:
                                assert resp.status == 404
                                break
                        except aiohttp.ClientConnectionError:
                            await anyio.sleep(0.1)
                form = aiohttp.FormData()
                form.add_field(
                    "file",
                    b"invoice data\n" * 1000,
                    filename="invoice.txt",
                    content_type="text/plain",
                )
                async with http.post("/files/customers/42/invoice.txt", data=form) as resp:
                    assert resp.status == 202, await resp.text()
                with anyio.fail_after(30):
                    while True:
                        async with http.get("/files/customers/42/invoice.txt") as resp:
                            body = await resp.json() if resp.status == 200 else {}
                        if body.get("status") == "clean":
                            break
                        await anyio.sleep(0.1)
                assert body["size"] == len(b"invoice data\n") * 1000
        finally:
            server.terminate()
            await server.wait()
