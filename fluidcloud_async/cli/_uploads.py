"""``fluidcloud uploads``: fc.uploads (import, and the raw three-step upload endpoints)."""

from __future__ import annotations

from typing import Any

import click

from .._client import AsyncFluidCloud
from .._models import File, UploadTicket
from ._context import run_client
from ._output import show_record
from ._params import ID, TEXT, AliasedGroup, json_option


@click.group(cls=AliasedGroup)
def uploads() -> None:
    """Server-side imports and the raw upload steps (use `files upload` for local files)."""


@uploads.command("import-url")
@click.argument("url", type=TEXT)
@click.option("--space", "space_id", type=ID, required=True, help="Space to store the file in.")
@click.option("--folder", "folder_id", type=ID, help="Folder inside the space.")
@click.option("--name", type=TEXT, help="Stored filename (default: from the URL).")
@json_option
def import_url(url: str, space_id: str, folder_id: str | None, name: str | None) -> None:
    """Have the server fetch a public http(s) URL into a space."""
    if not url.lower().startswith(("http://", "https://")):
        raise click.BadParameter("must be an http(s) URL", param_hint="URL")

    async def body(fc: AsyncFluidCloud) -> File:
        return await fc.uploads.import_url(
            url=url, space_id=space_id, folder_id=folder_id, name=name
        )

    show_record(run_client(body))


@uploads.command("initiate")
@click.option("--name", "original_name", type=TEXT, required=True, help="Stored filename.")
@click.option("--size", type=click.IntRange(min=0), required=True, help="Size in bytes.")
@click.option("--space", "space_id", type=ID, required=True, help="Space to store it in.")
@click.option("--content-type", type=TEXT, help="MIME type the PUT will send.")
@click.option("--folder", "folder_id", type=ID, help="Folder inside the space.")
@json_option
def initiate(
    original_name: str, size: int, space_id: str, content_type: str | None, folder_id: str | None
) -> None:
    """Step 1 of a raw upload: reserve a file id and get presigned PUT URL(s).

    The URLs are short-lived write credentials. Most users want `files upload`.
    """

    async def body(fc: AsyncFluidCloud) -> UploadTicket:
        return await fc.uploads.initiate(
            original_name=original_name,
            size=size,
            space_id=space_id,
            content_type=content_type,
            folder_id=folder_id,
        )

    show_record(run_client(body))


def _parse_part(value: str) -> dict[str, Any]:
    number, sep, etag = value.partition(":")
    if not sep or not number.isdigit() or int(number) < 1 or not etag:
        raise click.BadParameter(f"{value!r} is not PART_NUMBER:ETAG", param_hint="--part")
    return {"PartNumber": int(number), "ETag": etag}


@uploads.command("complete")
@click.option("--file-id", type=ID, required=True, help="The id from `uploads initiate`.")
@click.option("--key", type=TEXT, required=True, help="The storage key from the ticket.")
@click.option("--name", "original_name", type=TEXT, required=True, help="Stored filename.")
@click.option("--size", type=click.IntRange(min=0), required=True, help="Size in bytes.")
@click.option("--space", "space_id", type=ID, required=True, help="Space of the upload.")
@click.option("--upload-id", help="Multipart upload id from the ticket.")
@click.option("--part", "parts", multiple=True, metavar="N:ETAG", help="A multipart part.")
@click.option("--mime", type=TEXT, help="MIME type of the bytes.")
@click.option("--sha256", type=TEXT, help="Hex SHA-256 of the bytes.")
@click.option("--folder", "folder_id", type=ID, help="Folder inside the space.")
@click.option("--client-key", type=TEXT, help="Your own key for the file.")
@json_option
def complete(parts: tuple[str, ...], upload_id: str | None, **fields: Any) -> None:
    """Step 3 of a raw upload: register the PUT bytes as a file."""
    if bool(upload_id) != bool(parts):
        raise click.UsageError("--upload-id and --part go together (multipart only)")
    part_list = sorted((_parse_part(p) for p in parts), key=lambda p: int(p["PartNumber"]))

    async def body(fc: AsyncFluidCloud) -> File:
        return await fc.uploads.complete(upload_id=upload_id, parts=part_list or None, **fields)

    show_record(run_client(body))
