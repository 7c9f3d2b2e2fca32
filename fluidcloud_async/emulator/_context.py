"""Shared state of one running emulator, handed to every route module."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from ._clock import Clock
from ._config import EmulatorConfig
from ._db import Database
from ._faults import Faults
from ._signing import Signer
from ._stats import Stats
from ._storage import ObjectStore

if TYPE_CHECKING:
    import aiohttp

    from ._ratelimit import RateLimiter
    from ._scan import Scanner
    from ._storage_local import LocalStorage


@dataclass
class Context:
    """Everything handlers need; one per emulator instance."""

    config: EmulatorConfig
    db: Database
    clock: Clock
    signer: Signer
    store: ObjectStore
    local: LocalStorage | None
    faults: Faults
    stats: Stats
    limiter: RateLimiter
    scanner: Scanner
    tmp_dir: str
    raw_origin: str = ""
    http: aiohttp.ClientSession | None = None
    file_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def file_lock(self, file_id: str) -> asyncio.Lock:
        lock = self.file_locks.get(file_id)
        if lock is None:
            lock = self.file_locks[file_id] = asyncio.Lock()
        return lock


CTX_KEY: web.AppKey[Context] = web.AppKey("fluidcloud_emulator_ctx", Context)
