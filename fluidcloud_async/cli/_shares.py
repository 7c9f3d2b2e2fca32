"""``fluidcloud shares``: fc.shares."""

from __future__ import annotations

import click

from .._client import AsyncFluidCloud
from .._models import Link, Share
from ._context import run_client
from ._output import show_list, show_message, show_record
from ._params import ID, AliasedGroup, json_option

COLUMNS = ("id", "file_id", "permission", "expires_at", "download_count", "revoked")


@click.group(cls=AliasedGroup)
def shares() -> None:
    """Raw share links: list, create, revoke."""


@shares.command("list")
@click.option("--file", "file_id", type=ID, help="Only links of this file.")
@click.option("--include-inactive", is_flag=True, help="Include revoked and expired links.")
@json_option
def list_shares(file_id: str | None, include_inactive: bool) -> None:
    """List share links (the link tokens themselves are never listed)."""

    async def body(fc: AsyncFluidCloud) -> list[Share]:
        return await fc.shares.list(file_id=file_id, include_inactive=include_inactive)

    show_list(run_client(body), COLUMNS, empty="no share links")


@shares.command("create")
@click.argument("file_id", metavar="FILE_ID", type=ID)
@click.option(
    "--permission", type=click.Choice(["view", "download"]), default="view", show_default=True
)
@click.option(
    "--days",
    "expires_in_days",
    type=click.IntRange(1, 365),
    help="Expire after this many days (default: a permanent link).",
)
@click.option("--max-downloads", type=click.IntRange(min=1), help="Cap on downloads.")
@click.option(
    "--password",
    help="Stored with the link (the server does not enforce it when serving).",
)
@json_option
def create_share(
    file_id: str,
    permission: str,
    expires_in_days: int | None,
    max_downloads: int | None,
    password: str | None,
) -> None:
    """Mint a raw link with every option the API offers (the file must be clean)."""

    async def body(fc: AsyncFluidCloud) -> Link:
        return await fc.shares.create(
            file_id,
            permission=permission,
            expires_in_days=expires_in_days,
            max_downloads=max_downloads,
            password=password,
        )

    show_record(run_client(body))


@shares.command("revoke")
@click.argument("share_id", metavar="ID", type=ID)
@json_option
def revoke_share(share_id: str) -> None:
    """Revoke a link (idempotent; a cached permanent link may serve for up to an hour)."""

    async def body(fc: AsyncFluidCloud) -> None:
        await fc.shares.revoke(share_id)

    run_client(body)
    show_message(f"revoked {share_id}", {"id": share_id, "revoked": True})
