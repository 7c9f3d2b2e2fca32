"""``fluidcloud files``: fc.files records and links (upload/download live in _transfer)."""

from __future__ import annotations

import click

from .._client import AsyncFluidCloud
from .._models import File, Link, Preview
from .._types import NOT_GIVEN, NotGiven
from ._context import get_settings, run_client
from ._output import echo, format_value, show_list, show_message, show_record, show_trashed
from ._params import ID, TEXT, AliasedGroup, destination, json_option

COLUMNS = ("id", "original_name", "size", "scan_status", "client_key")
TRASH_COLUMNS = ("id", "original_name", "size", "space_id", "deleted_at")


@click.group(cls=AliasedGroup)
def files() -> None:
    """Files: list, fetch, organize, soft-delete, links, upload and download."""


@files.command("list")
@click.option("--space", "space_id", type=ID, help="Space to list (required unless --trash).")
@click.option("--folder", "folder_id", type=ID, help="List inside this folder (default: root).")
@click.option("--trash", is_flag=True, help="List the tenant-wide trash instead.")
@click.option("--status", type=TEXT, help="Only files with this lifecycle status.")
@click.option("--app", type=TEXT, help="Only files of this source app.")
@json_option
def list_files(
    space_id: str | None, folder_id: str | None, trash: bool, status: str | None, app: str | None
) -> None:
    """List files at a space root, in a folder, or in the trash."""
    if space_id is None and not trash:
        raise click.UsageError("--space is required unless --trash is given")

    async def body(fc: AsyncFluidCloud) -> list[File]:
        return await fc.files.list(space_id, folder_id, trash=trash, status=status, app=app)

    show_list(run_client(body), TRASH_COLUMNS if trash else COLUMNS, empty="no files")


@files.command("get")
@click.argument("file_id", metavar="ID", type=ID)
@json_option
def get_file(file_id: str) -> None:
    """Show one file's metadata."""

    async def body(fc: AsyncFluidCloud) -> File:
        return await fc.files.get(file_id)

    show_record(run_client(body))


@files.command("resolve")
@click.argument("client_key", metavar="KEY", type=TEXT)
@click.option("--app", type=TEXT, help="Source app the key belongs to.")
@json_option
def resolve_file(client_key: str, app: str | None) -> None:
    """Find the newest live file uploaded under your client KEY."""

    async def body(fc: AsyncFluidCloud) -> File:
        return await fc.files.resolve(client_key, app=app)

    show_record(run_client(body))


@files.command("rename")
@click.argument("file_id", metavar="ID", type=ID)
@click.argument("name", type=TEXT)
@json_option
def rename_file(file_id: str, name: str) -> None:
    """Rename a file."""

    async def body(fc: AsyncFluidCloud) -> File:
        return await fc.files.rename(file_id, name)

    show_record(run_client(body))


@files.command("move")
@click.argument("file_id", metavar="ID", type=ID)
@click.option("--folder", "folder_id", type=ID, help="Destination folder (same space).")
@click.option("--root", is_flag=True, help="Move to the space root.")
@json_option
def move_file(file_id: str, folder_id: str | None, root: bool) -> None:
    """Move a file into --folder, or to the space root with --root."""
    target = destination(folder_id, root, "--folder")

    async def body(fc: AsyncFluidCloud) -> File:
        return await fc.files.move(file_id, target)

    show_record(run_client(body))


@files.command("update")
@click.argument("file_id", metavar="ID", type=ID)
@click.option("--name", type=TEXT, help="New filename.")
@click.option("--folder", "folder_id", type=ID, help="Destination folder.")
@click.option("--root", is_flag=True, help="Move to the space root.")
@json_option
def update_file(file_id: str, name: str | None, folder_id: str | None, root: bool) -> None:
    """Rename and/or move a file in one call."""
    if folder_id is not None and root:
        raise click.UsageError("give at most one of --folder ID or --root")
    if name is None and folder_id is None and not root:
        raise click.UsageError("nothing to update: give --name, --folder or --root")
    new_name: str | NotGiven = NOT_GIVEN if name is None else name
    target: str | NotGiven | None = None if root else (folder_id or NOT_GIVEN)

    async def body(fc: AsyncFluidCloud) -> File:
        return await fc.files.update(file_id, original_name=new_name, folder_id=target)

    show_record(run_client(body))


@files.command("delete")
@click.argument("file_id", metavar="ID", type=ID)
@json_option
def delete_file(file_id: str) -> None:
    """Soft-delete a file to the trash (alias: rm)."""

    async def body(fc: AsyncFluidCloud) -> File | None:
        return await fc.files.delete(file_id)

    show_trashed("files", file_id, run_client(body))


@files.command("restore")
@click.argument("file_id", metavar="ID", type=ID)
@json_option
def restore_file(file_id: str) -> None:
    """Bring a soft-deleted file back from the trash."""

    async def body(fc: AsyncFluidCloud) -> File:
        return await fc.files.restore(file_id)

    show_record(run_client(body))


@files.command("download-url")
@click.argument("file_id", metavar="ID", type=ID)
@json_option
def download_url(file_id: str) -> None:
    """Print a short-lived presigned URL of the bytes (the file must be clean)."""

    async def body(fc: AsyncFluidCloud) -> str:
        return await fc.files.download_url(file_id)

    url = run_client(body)
    show_message(url, {"url": url})


@files.command("preview")
@click.argument("file_id", metavar="ID", type=ID)
@json_option
def preview_file(file_id: str) -> None:
    """Show an inline-renderable preview URL (API error 415 when the type has none)."""

    async def body(fc: AsyncFluidCloud) -> Preview:
        return await fc.files.preview(file_id)

    show_record(run_client(body))


def _show_link(link: Link) -> None:
    # The URL alone goes to stdout so `URL=$(fluidcloud files public-url ID)` works.
    if get_settings().json:
        show_record(link)
        return
    echo(link.url)
    expires = format_value("expires_at", link.expires_at) if link.expires_at else "never"
    echo(
        f"share {link.id}, permission {link.permission}, expires {expires} "
        f"(revoke: fluidcloud shares revoke {link.id})",
        err=True,
    )


@files.command("public-url")
@click.argument("file_id", metavar="ID", type=ID)
@json_option
def public_url(file_id: str) -> None:
    """Mint a permanent public raw link (the file must be scanned clean)."""

    async def body(fc: AsyncFluidCloud) -> Link:
        return await fc.files.public_url(file_id)

    _show_link(run_client(body))


@files.command("signed-url")
@click.argument("file_id", metavar="ID", type=ID)
@click.option(
    "--days",
    "expires_in_days",
    type=click.IntRange(1, 365),
    default=7,
    show_default=True,
    help="Lifetime of the link in days.",
)
@click.option(
    "--permission",
    type=click.Choice(["view", "download"]),
    default="view",
    show_default=True,
)
@json_option
def signed_url(file_id: str, expires_in_days: int, permission: str) -> None:
    """Mint a raw link that expires after 1..365 days."""

    async def body(fc: AsyncFluidCloud) -> Link:
        return await fc.files.signed_url(
            file_id, expires_in_days=expires_in_days, permission=permission
        )

    _show_link(run_client(body))


@files.command("wait-until-clean")
@click.argument("file_id", metavar="ID", type=ID)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    help="Give up after this many seconds.",
)
@json_option
def wait_until_clean(file_id: str, timeout: float) -> None:
    """Wait until the virus scan says clean (alias: wait); exit 1 if infected or timed out."""

    async def body(fc: AsyncFluidCloud) -> File:
        return await fc.files.wait_until_clean(file_id, timeout=timeout)

    file = run_client(body)
    if get_settings().json:
        show_record(file)
    else:
        echo(f"{file.id} {file.original_name}: {file.scan_status}")


files.add_alias("rm", "delete")
files.add_alias("wait", "wait-until-clean")
