"""End-to-end fixtures: the package's own pytest plugin runs the emulator (that is the
plugin's test too); helpers here push bytes through the raw upload endpoints."""

from __future__ import annotations

import hashlib

from fluidcloud_async import AsyncFluidCloud, File


async def raw_upload(
    fc: AsyncFluidCloud,
    space_id: str,
    data: bytes,
    name: str = "blob.bin",
    *,
    folder_id: str | None = None,
    client_key: str | None = None,
    content_type: str | None = None,
) -> File:
    """initiate → PUT → complete by hand (single mode), the three documented steps."""
    ticket = await fc.uploads.initiate(
        original_name=name,
        size=len(data),
        space_id=space_id,
        content_type=content_type,
        folder_id=folder_id,
    )
    assert ticket.mode == "single"
    assert ticket.upload_url is not None
    headers = {"Content-Type": ticket.content_type} if ticket.content_type else {}
    async with fc.session.put(
        ticket.upload_url, data=data, headers=headers, skip_auto_headers=["Content-Type"]
    ) as resp:
        assert resp.status == 200, await resp.text()
    return await fc.uploads.complete(
        file_id=ticket.file_id,
        key=ticket.key,
        original_name=name,
        size=len(data),
        space_id=space_id,
        folder_id=folder_id,
        client_key=client_key,
        mime=content_type,
        sha256=hashlib.sha256(data).hexdigest(),
    )
