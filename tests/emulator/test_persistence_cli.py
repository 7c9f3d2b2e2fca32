"""data_dir persistence across restarts, and the ``python -m`` entry point."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from fluidcloud_async.emulator import Emulator, EmulatorConfig
from fluidcloud_async.emulator.__main__ import build_parser, config_from_args, serve

from .conftest import Api


async def test_state_bytes_and_key_survive_restart(tmp_path: Path) -> None:
    config = EmulatorConfig(data_dir=tmp_path, scan_delay=None)
    data = b"persist me" * 1000
    async with Emulator(config) as emu, aiohttp.ClientSession() as session:
        api = Api(session, emu)
        key = emu.api_key
        other = emu.add_tenant(scopes={"quota:read"})
        space = await api.space("kept")
        file = await api.upload(space["id"], data, "p.bin", client_key="k/p.bin", clean=True)
        share = await api.ok("POST", "/shares", json={"file_id": file["id"]})
        pending = await api.upload(space["id"], b"later", "later.txt")
        ticket = await api.ok(
            "POST",
            "/uploads/initiate",
            json={"original_name": "x", "size": 3, "space_id": space["id"]},
        )
    # Restart on the same directory (new ports); the pending scan resumes.
    config = EmulatorConfig(data_dir=tmp_path, scan_delay=0.01)
    async with Emulator(config) as emu, aiohttp.ClientSession() as session:
        api = Api(session, emu)
        assert emu.api_key == key
        assert (await api.call("GET", "/quota", key=other))[0] == 200
        got = await api.ok("GET", "/files/resolve", params={"client_key": "k/p.bin"})
        assert got["id"] == file["id"]
        url = (await api.ok("GET", f"/files/{file['id']}/download"))["url"]
        async with session.get(url) as resp:
            assert await resp.read() == data
        token = share["url"].rsplit("/", 1)[1]
        async with session.get(f"{emu.raw_url}/s/{token}") as resp:
            assert resp.status == 200
        await emu.wait_for_scans()
        assert (await api.ok("GET", f"/files/{pending['id']}"))["scan_status"] == "clean"
        # A ticket issued before the restart still completes (the signing secret persists).
        path = ticket["upload_url"].split("/", 3)[3]
        assert (await api.put(f"{emu.storage_url}/{path}", b"abc"))[0] == 200


async def test_in_memory_state_is_removed(tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(scan_delay=None)) as emu:
        root = Path(emu.ctx.tmp_dir).parent
        assert root.exists()
    assert not root.exists()


def test_port_derivation() -> None:
    ns = build_parser().parse_args(["--port", "9000", "--rate-limits", "--scan-delay", "1"])
    config = config_from_args(ns)
    assert (config.api_port, config.storage_port, config.raw_port) == (9000, 9001, 9002)
    assert config.rate_limits is True
    ns = build_parser().parse_args(["--port", "9000", "--raw-port", "7000", "--part-size", "5"])
    config = config_from_args(ns)
    assert (config.storage_port, config.raw_port, config.part_size) == (9001, 7000, 5)
    zero = config_from_args(build_parser().parse_args(["--port", "0"]))
    assert (zero.api_port, zero.storage_port, zero.raw_port) == (0, 0, 0)


async def test_serve_until_stopped() -> None:
    stop = asyncio.Event()
    ready = asyncio.Event()
    seen: list[Emulator] = []

    def on_ready(emu: Emulator) -> None:
        seen.append(emu)
        ready.set()

    task = asyncio.create_task(serve(EmulatorConfig(scan_delay=None), on_ready=on_ready, stop=stop))
    await asyncio.wait_for(ready.wait(), 10)
    async with (
        aiohttp.ClientSession() as session,
        session.get(seen[0].api_url + "/quota", headers={"X-API-Key": seen[0].api_key}) as resp,
    ):
        assert resp.status == 200
    stop.set()
    await task


def _free_port_block() -> int:
    """A port P such that P, P+1 and P+2 were free a moment ago."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port > 65000:
            continue
        try:
            socks = []
            for p in (port + 1, port + 2):
                s2 = socket.socket()
                socks.append(s2)
                s2.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
        finally:
            for s2 in socks:
                s2.close()
    raise RuntimeError("no free port block")


async def test_python_m_prints_url_and_key_and_stops_on_sigterm() -> None:
    port = _free_port_block()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluidcloud_async.emulator",
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
        second = (await asyncio.wait_for(proc.stdout.readline(), 5)).decode().strip()
        assert first == f"FLUIDCLOUD_BASE_URL=http://127.0.0.1:{port}"
        assert second.startswith("FLUIDCLOUD_API_KEY=fck_test_")
        key = second.split("=", 1)[1]
        async with aiohttp.ClientSession() as session:
            async with session.get(
                f"http://127.0.0.1:{port}/api/v1/spaces", headers={"X-API-Key": key}
            ) as resp:
                assert resp.status == 200
            async with session.get(f"http://127.0.0.1:{port + 2}/s/nope") as resp:
                assert resp.status == 404  # the raw-link server is on PORT+2
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_fixed_api_key() -> None:
    config = EmulatorConfig(api_key="fck_test_fixed_key_for_docs", scan_delay=None)
    async with Emulator(config) as emu, aiohttp.ClientSession() as session:
        assert emu.api_key == "fck_test_fixed_key_for_docs"
        async with session.get(emu.api_url + "/quota", headers={"X-API-Key": emu.api_key}) as r:
            assert r.status == 200


async def test_port_in_use_fails_cleanly() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        emu = Emulator(EmulatorConfig(api_port=port, scan_delay=None))
        try:
            await emu.start()
        except OSError:
            pass
        else:  # pragma: no cover - SO_REUSEPORT platforms may allow it
            await emu.aclose()
            raise AssertionError("binding a used port should fail")
