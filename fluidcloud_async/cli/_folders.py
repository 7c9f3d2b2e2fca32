"""``fluidcloud folders``: fc.folders."""

from __future__ import annotations

import click

from .._client import AsyncFluidCloud
from .._models import Folder
from ._context import run_client
from ._output import show_list, show_record, show_trashed
from ._params import ID, TEXT, AliasedGroup, destination, json_option

COLUMNS = ("id", "name", "parent_id", "created_at")
TRASH_COLUMNS = ("id", "name", "space_id", "deleted_at")


@click.group(cls=AliasedGroup)
def folders() -> None:
    """The folder tree inside a space."""


@folders.command("list")
@click.option("--space", "space_id", type=ID, required=True, help="Space to list.")
@click.option("--parent", "parent_id", type=ID, help="List inside this folder (default: root).")
@click.option("--trash", is_flag=True, help="List soft-deleted folders instead.")
@json_option
def list_folders(space_id: str, parent_id: str | None, trash: bool) -> None:
    """List folders at the space root, inside --parent, or in the trash."""

    async def body(fc: AsyncFluidCloud) -> list[Folder]:
        return await fc.folders.list(space_id, parent_id, trash=trash)

    show_list(run_client(body), TRASH_COLUMNS if trash else COLUMNS, empty="no folders")


@folders.command("create")
@click.argument("name", type=TEXT)
@click.option("--space", "space_id", type=ID, required=True, help="Space to create it in.")
@click.option("--parent", "parent_id", type=ID, help="Parent folder (default: space root).")
@json_option
def create_folder(name: str, space_id: str, parent_id: str | None) -> None:
    """Create a folder called NAME."""

    async def body(fc: AsyncFluidCloud) -> Folder:
        return await fc.folders.create(name, space_id, parent_id)

    show_record(run_client(body))


@folders.command("rename")
@click.argument("folder_id", metavar="ID", type=ID)
@click.argument("name", type=TEXT)
@json_option
def rename_folder(folder_id: str, name: str) -> None:
    """Rename a folder."""

    async def body(fc: AsyncFluidCloud) -> Folder:
        return await fc.folders.rename(folder_id, name)

    show_record(run_client(body))


@folders.command("move")
@click.argument("folder_id", metavar="ID", type=ID)
@click.option("--parent", "parent_id", type=ID, help="New parent folder.")
@click.option("--root", is_flag=True, help="Move to the space root.")
@json_option
def move_folder(folder_id: str, parent_id: str | None, root: bool) -> None:
    """Move a folder under --parent, or to the space root with --root."""
    target = destination(parent_id, root, "--parent")

    async def body(fc: AsyncFluidCloud) -> Folder:
        return await fc.folders.move(folder_id, target)

    show_record(run_client(body))


@folders.command("delete")
@click.argument("folder_id", metavar="ID", type=ID)
@json_option
def delete_folder(folder_id: str) -> None:
    """Soft-delete a folder (and its contents) to the trash."""

    async def body(fc: AsyncFluidCloud) -> Folder | None:
        return await fc.folders.delete(folder_id)

    show_trashed("folders", folder_id, run_client(body))


@folders.command("restore")
@click.argument("folder_id", metavar="ID", type=ID)
@json_option
def restore_folder(folder_id: str) -> None:
    """Bring a soft-deleted folder back from the trash."""

    async def body(fc: AsyncFluidCloud) -> Folder:
        return await fc.folders.restore(folder_id)

    show_record(run_client(body))


folders.add_alias("rm", "delete")
