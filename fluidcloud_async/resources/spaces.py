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
        """All spaces of the tenant.

        Args:
            limit: Page size (the server's default when `None`).
            cursor: Start from this page cursor.

        Returns:
            A lazy list: `await` it for every space, or `async for` over it to stream the
                pages ([`AsyncPaginator`][fluidcloud_async.AsyncPaginator]).

        Examples:
            ```python
            spaces = await fc.spaces.list()
            async for space in fc.spaces.list():
                print(space.id, space.name)
            ```
        """
        params = {"limit": optional_positive_int(limit, "limit"), "cursor": cursor}
        return AsyncPaginator(self._fetch, params, Space)

    async def _fetch(self, params: Any) -> Any:
        return await self._transport.request("GET", "/spaces", params=params)

    async def create(self, name: str) -> Space:
        """Create a space.

        Not retried after a 5xx or a dropped connection: a duplicate would create a twin.

        Args:
            name: The space's name.

        Returns:
            The new space.
        """
        body = {"name": require_text(name, "name")}
        data = await self._transport.request("POST", "/spaces", json=body)
        return validate_response(Space, data)
