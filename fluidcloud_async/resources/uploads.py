"""``fc.uploads``: the raw three-step upload endpoints and URL import.

Most callers want ``fc.files.upload``, which runs initiate → PUT(s) → complete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._models import File, UploadTicket
from .._validate_args import (
    optional_id,
    require_content_type,
    require_id,
    require_size,
    require_text,
)
from .._validation import validate_response
from ._base import Resource


class Uploads(Resource):
    """Presigned upload tickets, completion and server-side import (``files:write``)."""

    async def initiate(
        self,
        *,
        original_name: str,
        size: int,
        space_id: str,
        content_type: str | None = None,
        folder_id: str | None = None,
    ) -> UploadTicket:
        """Reserve a file id and get presigned PUT URL(s). Retried safely: nothing is
        stored until ``complete``."""
        body: dict[str, Any] = {
            "original_name": require_text(original_name, "original_name"),
            "size": require_size(size),
            "space_id": require_id(space_id, "space_id"),
        }
        if content_type is not None:
            body["content_type"] = require_content_type(content_type)
        if folder_id is not None:
            body["folder_id"] = require_id(folder_id, "folder_id")
        data = await self._transport.request(
            "POST", "/uploads/initiate", json=body, idempotent=True
        )
        return validate_response(UploadTicket, data)

    async def complete(
        self,
        *,
        file_id: str,
        key: str,
        original_name: str,
        size: int,
        space_id: str,
        upload_id: str | None = None,
        parts: Sequence[Mapping[str, Any]] | None = None,
        mime: str | None = None,
        sha256: str | None = None,
        folder_id: str | None = None,
        client_key: str | None = None,
    ) -> File:
        """Register the uploaded bytes as a file (``scan_status`` starts ``pending``).

        ``parts`` is required with ``upload_id``: ``[{"PartNumber": 1, "ETag": '"..."'}, ...]``
        in ascending order. Retried safely: the effect is keyed by ``file_id``.
        """
        body: dict[str, Any] = {
            "file_id": require_id(file_id, "file_id"),
            "key": require_text(key, "key"),
            "original_name": require_text(original_name, "original_name"),
            "size": require_size(size),
            "space_id": require_id(space_id, "space_id"),
        }
        if upload_id is not None:
            if not parts:
                raise ValueError("parts are required with upload_id (multipart completion)")
            body["upload_id"] = upload_id
            body["parts"] = [
                {"PartNumber": int(p["PartNumber"]), "ETag": str(p["ETag"])} for p in parts
            ]
        elif parts:
            raise ValueError("parts were given without upload_id")
        optional = {
            "mime": None if mime is None else require_content_type(mime, "mime"),
            "sha256": sha256,
            "folder_id": optional_id(folder_id, "folder_id"),
            "client_key": None if client_key is None else require_text(client_key, "client_key"),
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        data = await self._transport.request(
            "POST", "/uploads/complete", json=body, idempotent=True
        )
        return validate_response(File, data)

    async def import_url(
        self,
        *,
        url: str,
        space_id: str,
        folder_id: str | None = None,
        name: str | None = None,
    ) -> File:
        """Have the server fetch a public http(s) URL into a space. Not retried on 5xx
        (a duplicate import would store the file twice). The API key is never sent to
        ``url``: the server fetches it."""
        url = require_text(url, "url")
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"url must be http(s), got {url!r}")
        body: dict[str, Any] = {"url": url, "space_id": require_id(space_id, "space_id")}
        if folder_id is not None:
            body["folder_id"] = require_id(folder_id, "folder_id")
        if name is not None:
            body["name"] = require_text(name, "name")
        data = await self._transport.request("POST", "/uploads/import-url", json=body)
        return validate_response(File, data)
