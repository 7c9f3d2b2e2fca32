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
        """Folders at the space root, inside ``parent_id``, or in the trash."""
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
        """Create a folder at the space root or inside ``parent_id``. Not retried on 5xx."""
        body = {
            "name": require_text(name, "name"),
            "space_id": require_id(space_id, "space_id"),
            "parent_id": optional_id(parent_id, "parent_id"),
        }
        return validate_response(
            Folder, await self._transport.request("POST", "/folders", json=body)
        )

    async def rename(self, folder_id: str, name: str) -> Folder:
        """Rename a folder."""
        return await self._patch(folder_id, {"name": require_text(name, "name")})

    async def move(self, folder_id: str, parent_id: str | None) -> Folder:
        """Move a folder under ``parent_id``; ``None`` moves it to the space root."""
        return await self._patch(folder_id, {"parent_id": optional_id(parent_id, "parent_id")})

    async def _patch(self, folder_id: str, body: dict[str, Any]) -> Folder:
        path = f"/folders/{require_id(folder_id, 'folder_id')}"
        return validate_response(Folder, await self._transport.request("PATCH", path, json=body))

    async def delete(self, folder_id: str) -> Folder | None:
        """Soft-delete a folder (and what it holds) to the trash. Idempotent.

        Returns the trashed folder, or ``None`` when the server answers 204.
        """
        path = f"/folders/{require_id(folder_id, 'folder_id')}"
        data = await self._transport.request("DELETE", path)
        return None if data is None else validate_response(Folder, data)

    async def restore(self, folder_id: str) -> Folder:
        """Bring a soft-deleted folder back from the trash."""
        path = f"/folders/{require_id(folder_id, 'folder_id')}/restore"
        data = await self._transport.request("POST", path, idempotent=True)
        return validate_response(Folder, data)
