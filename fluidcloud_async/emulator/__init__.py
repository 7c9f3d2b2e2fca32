"""Local emulator of the FluidCloud Partner API (API, presigned storage, raw links).

    async with Emulator(EmulatorConfig()) as emu:
        emu.base_url, emu.api_key, emu.storage_url, emu.raw_url

See README.md beside this file for knobs, fault injection and deviations from the docs.
"""

from ._config import ALL_SCOPES, EmulatorConfig, S3Storage, server_ssl_context
from ._emulator import Emulator
from ._faults import Faults
from ._scan import EICAR
from ._stats import Stats

__all__ = [
    "ALL_SCOPES",
    "EICAR",
    "Emulator",
    "EmulatorConfig",
    "Faults",
    "S3Storage",
    "Stats",
    "server_ssl_context",
]
