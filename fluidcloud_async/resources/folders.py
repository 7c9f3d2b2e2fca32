"""``fc.folders``: the folder tree inside a space."""

from __future__ import annotations

from typing import Any

from .._models import Folder
from .._pagination import AsyncPaginator
from .._validate_args import optional_id, optional_positive_int, require_id, require_text
from .._validation import validate_response
from ._base import Resource


class Folders(Resource):
    """Organize files into folders (scopes ``folders:read`` / ``folders:write``)."""

    def list(
        self,
        space_id: str,
        parent_id: str | None = None,
        *,
        trash: bool = False,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> AsyncPaginator[Folder]:
        """Folders at the space root, inside a folder, or in the trash.

        Args:
            space_id: The space to list.
            parent_id: List inside this folder; `None` lists the space root.
            trash: List the tenant's soft-deleted folders instead.
            limit: Page size (the server's default when `None`).
            cursor: Start from this page cursor.

        Returns:
            A lazy list: `await` it for every folder, or `async for` over it to stream
                the pages ([`AsyncPaginator`][fluidcloud_async.AsyncPaginator]).
        """
        params = {
            "space_id": require_id(space_id, "space_id"),
            "parent_id": optional_id(parent_id, "parent_id"),
            "trash": True if trash else None,
            "limit": optional_positive_int(limit, "limit"),
            "cursor": cursor,
        }
        return AsyncPaginator(self._fetch, params, Folder)

    async def _fetch(self, params: Any) -> Any:
        return await self._transport.request("GET", "/folders", params=params)

    async def create(self, name: str, space_id: str, parent_id: str | None = None) -> Folder:
        """Create a folder at the space root or inside another folder.

        Not retried after a 5xx or a dropped connection: a duplicate would create a twin.

        Args:
            name: The folder's name.
            space_id: The space it belongs to.
            parent_id: The folder to create it in; `None` for the space root.

        Returns:
            The new folder.
        """
        body = {
            "name": require_text(name, "name"),
            "space_id": require_id(space_id, "space_id"),
            "parent_id": optional_id(parent_id, "parent_id"),
        }
        return validate_response(
            Folder, await self._transport.request("POST", "/folders", json=body)
        )

    async def rename(self, folder_id: str, name: str) -> Folder:
        """Rename a folder.

        Args:
            folder_id: The folder.
            name: Its new name.

        Returns:
            The updated folder.
        """
        return await self._patch(folder_id, {"name": require_text(name, "name")})

    async def move(self, folder_id: str, parent_id: str | None) -> Folder:
        """Move a folder into another folder of the same space, or to the space root.

        Args:
            folder_id: The folder to move.
            parent_id: Its new parent folder; `None` moves it to the space root.

        Returns:
            The updated folder.
        """
        return await self._patch(folder_id, {"parent_id": optional_id(parent_id, "parent_id")})

    async def _patch(self, folder_id: str, body: dict[str, Any]) -> Folder:
        path = f"/folders/{require_id(folder_id, 'folder_id')}"
        return validate_response(Folder, await self._transport.request("PATCH", path, json=body))

    async def delete(self, folder_id: str) -> Folder | None:
        """Soft-delete a folder, and what it holds, to the trash. Idempotent.

        Args:
            folder_id: The folder.

        Returns:
            The trashed folder, or `None` when the server answers 204.
        """
        path = f"/folders/{require_id(folder_id, 'folder_id')}"
        data = await self._transport.request("DELETE", path)
        return None if data is None else validate_response(Folder, data)

    async def restore(self, folder_id: str) -> Folder:
        """Bring a soft-deleted folder, and what it held, back from the trash.

        Args:
            folder_id: The folder.

        Returns:
            The restored folder.
        """
        path = f"/folders/{require_id(folder_id, 'folder_id')}/restore"
        data = await self._transport.request("POST", path, idempotent=True)
        return validate_response(Folder, data)
