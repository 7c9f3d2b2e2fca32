"""aioresponses 0.7.9 predates aiohttp 3.14's required ``stream_writer`` argument of
``ClientResponse``; until a release catches up, hand it a stand-in writer."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import aioresponses.core
from aiohttp import ClientResponse


class _CompatResponse(ClientResponse):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(*args, **kwargs)


def install() -> None:
    aioresponses.core.ClientResponse = _CompatResponse  # type: ignore[misc]
