"""``fc.spaces``: top-level containers."""

from __future__ import annotations

from typing import Any

from .._models import Space
from .._pagination import AsyncPaginator
from .._validate_args import optional_positive_int, require_text
from .._validation import validate_response
from ._base import Resource


class Spaces(Resource):
    """List and create spaces (scopes ``spaces:read`` / ``spaces:write``)."""

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> AsyncPaginator[Space]:
        """All spaces of the tenant. ``await`` for a list or ``async for`` to stream."""
        params = {"limit": optional_positive_int(limit, "limit"), "cursor": cursor}
        return AsyncPaginator(self._fetch, params, Space)

    async def _fetch(self, params: Any) -> Any:
        return await self._transport.request("GET", "/spaces", params=params)

    async def create(self, name: str) -> Space:
        """Create a space. Not retried on 5xx: a duplicate would create a twin."""
        body = {"name": require_text(name, "name")}
        data = await self._transport.request("POST", "/spaces", json=body)
        return validate_response(Space, data)
