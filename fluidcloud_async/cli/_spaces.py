"""``fluidcloud spaces``: fc.spaces."""

from __future__ import annotations

import click

from .._client import AsyncFluidCloud
from .._models import Space
from ._context import run_client
from ._output import show_list, show_record
from ._params import TEXT, AliasedGroup, json_option

COLUMNS = ("id", "name", "created_at")


@click.group(cls=AliasedGroup)
def spaces() -> None:
    """Top-level containers of folders and files."""


@spaces.command("list")
@json_option
def list_spaces() -> None:
    """List every space of the tenant."""

    async def body(fc: AsyncFluidCloud) -> list[Space]:
        return await fc.spaces.list()

    show_list(run_client(body), COLUMNS, empty="no spaces")


@spaces.command("create")
@click.argument("name", type=TEXT)
@json_option
def create_space(name: str) -> None:
    """Create a space called NAME."""

    async def body(fc: AsyncFluidCloud) -> Space:
        return await fc.spaces.create(name)

    show_record(run_client(body))
