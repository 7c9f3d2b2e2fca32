"""The project's emulator in its own process (see ``_procs``), with a space ready to use.

Config keys: ``emulator`` (EmulatorConfig fields), ``faults`` (Faults fields) and
``seed_file`` (upload one small file whose id is returned in ``info``). Objects live in a
RAM-backed temporary directory that is removed when the process stops.
"""

from __future__ import annotations

import tempfile
from typing import Any

import aiohttp

from ._common import scratch_root

SEED_BYTES = b"fluidcloud benchmark seed file\n" * 32


class EmulatorServer:
    """A started :class:`fluidcloud_async.emulator.Emulator` and what a client needs."""

    def __init__(self, emulator: Any, info: dict[str, Any]) -> None:
        self.emulator = emulator
        self.info = info

    def stats(self) -> dict[str, Any]:
        s = self.emulator.stats
        return {
            "api_requests": sum(s.requests.values()),
            "rate_limited": s.rate_limited,
            "completes": s.completes,
            "storage_puts": s.storage_puts,
            "storage_puts_ok": s.storage_puts_ok,
            "storage_put_bytes": s.storage_put_bytes,
            "statuses": {f"{route} {status}": n for (route, status), n in s.statuses.items()},
        }

    async def aclose(self) -> None:
        await self.emulator.aclose()


async def _seed(session: aiohttp.ClientSession, api: str, space_id: str) -> str:
    body = {"original_name": "seed.txt", "size": len(SEED_BYTES), "space_id": space_id}
    async with session.post(f"{api}/uploads/initiate", json=body) as r:
        r.raise_for_status()
        ticket = await r.json()
    headers = {"Content-Type": ticket["content_type"]} if ticket.get("content_type") else {}
    skip = () if headers else ("Content-Type",)
    async with session.put(
        ticket["upload_url"], data=SEED_BYTES, headers=headers, skip_auto_headers=skip
    ) as r:
        r.raise_for_status()
    done = {
        "file_id": ticket["file_id"],
        "key": ticket["key"],
        "original_name": "seed.txt",
        "size": len(SEED_BYTES),
        "space_id": space_id,
    }
    async with session.post(f"{api}/uploads/complete", json=done) as r:
        r.raise_for_status()
        file_id: str = (await r.json())["id"]
    return file_id


async def start(config: dict[str, Any]) -> EmulatorServer:
    from fluidcloud_async.emulator import Emulator, EmulatorConfig, Faults

    # The emulator's temporary state directory goes to RAM: no disk writeback in the figures.
    tempfile.tempdir = str(scratch_root())
    cfg = EmulatorConfig(**config.get("emulator", {}), faults=Faults(**config.get("faults", {})))
    emulator = Emulator(cfg)
    await emulator.start()
    try:
        api = emulator.api_url
        headers = {"X-API-Key": emulator.api_key}
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.post(f"{api}/spaces", json={"name": "bench"}) as r:
                r.raise_for_status()
                space_id = (await r.json())["id"]
            file_id = await _seed(session, api, space_id) if config.get("seed_file") else None
    except BaseException:
        await emulator.aclose()
        raise
    emulator.stats.reset()  # the set-up requests are not part of any measurement
    info = {
        "base_url": emulator.base_url,
        "api_url": api,
        "api_key": emulator.api_key,
        "space_id": space_id,
        "file_id": file_id,
        "storage_url": emulator.storage_url,
    }
    return EmulatorServer(emulator, info)
