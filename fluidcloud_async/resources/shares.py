"""``fc.shares``: raw share links."""

from __future__ import annotations

from typing import Any

from .._models import Link, Share
from .._pagination import AsyncPaginator
from .._validate_args import (
    optional_id,
    optional_positive_int,
    require_days,
    require_id,
    require_permission,
)
from .._validation import validate_response
from ._base import Resource


class Shares(Resource):
    """Create, list and revoke raw links (scopes ``shares:read`` / ``shares:write``)."""

    def list(
        self,
        *,
        file_id: str | None = None,
        include_inactive: bool = False,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> AsyncPaginator[Share]:
        """The tenant's share links, without their tokens.

        Args:
            file_id: Only the links of this file.
            include_inactive: Include revoked, expired and used-up links.
            limit: Page size (the server's default when `None`).
            cursor: Start from this page cursor.

        Returns:
            A lazy list of [`Share`][fluidcloud_async.Share]s: `await` it or `async for`
                over it.
        """
        params = {
            "file_id": optional_id(file_id, "file_id"),
            "include_inactive": True if include_inactive else None,
            "limit": optional_positive_int(limit, "limit"),
            "cursor": cursor,
        }
        return AsyncPaginator(self._fetch, params, Share)

    async def _fetch(self, params: Any) -> Any:
        return await self._transport.request("GET", "/shares", params=params)

    async def create(
        self,
        file_id: str,
        *,
        permission: str = "view",
        expires_in_days: int | None = None,
        max_downloads: int | None = None,
        password: str | None = None,
    ) -> Link:
        """Mint a raw link with every option the API offers.

        [`files.public_url`][fluidcloud_async.resources.Files.public_url] and
        [`files.signed_url`][fluidcloud_async.resources.Files.signed_url] are the common
        shortcuts. Not retried after a 5xx or a dropped connection: a duplicate would
        spend a link of the plan.

        Args:
            file_id: The file; it must be scanned clean.
            permission: `"view"` (served inline) or `"download"` (as an attachment).
            expires_in_days: 1 to 365; `None` for a permanent link.
            max_downloads: How many downloads the link serves; `None` for no limit.
            password: Stored, but not enforced by the server (as documented).

        Returns:
            The link; its `url` is only available now.

        Raises:
            ConflictError: The file is not scanned clean.
            QuotaExceededError: The plan's share links are used up.
        """
        body = {
            "file_id": require_id(file_id, "file_id"),
            "permission": require_permission(permission),
            "expires_in_days": None if expires_in_days is None else require_days(expires_in_days),
            "max_downloads": optional_positive_int(max_downloads, "max_downloads"),
            "password": password,
        }
        return validate_response(Link, await self._transport.request("POST", "/shares", json=body))

    async def revoke(self, share_id: str) -> None:
        """Revoke a link. Idempotent.

        A permanent link may still be served from the edge cache for up to an hour.

        Args:
            share_id: The link's id ([`Link.id`][fluidcloud_async.Link] or
                [`Share.id`][fluidcloud_async.Share]).
        """
        await self._transport.request("DELETE", f"/shares/{require_id(share_id, 'share_id')}")
