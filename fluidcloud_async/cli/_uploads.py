"""``fluidcloud uploads``: fc.uploads (server-side import; use `files upload` for bytes)."""

from __future__ import annotations

import click

from .._client import AsyncFluidCloud
from .._models import File
from ._context import run_client
from ._output import show_record
from ._params import ID, TEXT, AliasedGroup, json_option


@click.group(cls=AliasedGroup)
def uploads() -> None:
    """Server-side imports. Upload local bytes with `fluidcloud files upload`."""


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
