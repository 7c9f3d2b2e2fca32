"""The base of every resource namespace."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._transport import Transport


class Resource:
    """A namespace of API methods bound to one transport (a client view's, or the rate
    limited one of an ``upload_many`` batch)."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
