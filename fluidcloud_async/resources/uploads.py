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
    require_count,
    require_id,
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
        """Reserve a file id and get the presigned PUT URL(s) for its bytes.

        Retried safely: nothing is stored until
        [`complete`][fluidcloud_async.resources.Uploads.complete]. Below 100 MB the ticket
        has one `upload_url`; above it, `part_urls` of `part_size` bytes each. Most callers
        want [`files.upload`][fluidcloud_async.resources.Files.upload].

        Args:
            original_name: The file's name.
            size: Its size in bytes.
            space_id: The space it will belong to.
            content_type: The MIME type; the URL is then signed for exactly this
                `Content-Type`.
            folder_id: The folder it will belong to.

        Returns:
            The upload ticket.
        """
        body: dict[str, Any] = {
            "original_name": require_text(original_name, "original_name"),
            "size": require_count(size, "size"),
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
        """Register the uploaded bytes as a file; its `scan_status` starts `pending`.

        Retried safely: the effect is keyed by `file_id`, so completing twice gives one file.

        Args:
            file_id: From the ticket.
            key: From the ticket.
            original_name: The file's name.
            size: Its size in bytes.
            space_id: The space, as given to `initiate`.
            upload_id: From a multipart ticket (then `parts` is required).
            parts: The stored parts, in ascending order:
                `[{"PartNumber": 1, "ETag": '"..."'}, ...]`.
            mime: The MIME type to record.
            sha256: The hex SHA-256 of the bytes; the server refuses a mismatch.
            folder_id: The folder, as given to `initiate`.
            client_key: Your own key for the file (see
                [`files.resolve`][fluidcloud_async.resources.Files.resolve]).

        Returns:
            The new file.

        Raises:
            ValueError: `parts` without `upload_id`, or the reverse.
        """
        body: dict[str, Any] = {
            "file_id": require_id(file_id, "file_id"),
            "key": require_text(key, "key"),
            "original_name": require_text(original_name, "original_name"),
            "size": require_count(size, "size"),
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
        """Have the server fetch a public http(s) URL into a space.

        Not retried after a 5xx or a dropped connection: a duplicate import would store the
        file twice. The API key is never sent to `url`: the server fetches it.

        Args:
            url: An `http://` or `https://` URL the server can reach.
            space_id: The space to store it in.
            folder_id: The folder to store it in.
            name: The stored name (else from `Content-Disposition`, else the URL path).

        Returns:
            The new file.

        Raises:
            ValueError: `url` is not http(s).
        """
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
