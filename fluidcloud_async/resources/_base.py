"""The base of every resource namespace."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._client import AsyncFluidCloud
    from .._transport import Transport


class Resource:
    """A namespace of API methods bound to one client view."""

    def __init__(self, client: AsyncFluidCloud) -> None:
        self._client = client

    @property
    def _transport(self) -> Transport:
        return self._client._transport
