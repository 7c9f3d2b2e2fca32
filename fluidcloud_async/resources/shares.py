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
        """Share links (without their tokens), optionally for one file or including
        revoked and expired ones."""
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

        ``files.public_url`` and ``files.signed_url`` are the common shortcuts. The file
        must be scanned clean (else :class:`ConflictError`). Not retried on 5xx: a
        duplicate would cost a link. ``password`` is stored but not enforced by the server.
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
        """Revoke a link. Idempotent. A cached permanent link may serve for up to an hour."""
        await self._transport.request("DELETE", f"/shares/{require_id(share_id, 'share_id')}")
