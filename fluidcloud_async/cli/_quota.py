"""``fluidcloud quota``: fc.quota."""

from __future__ import annotations

import click

from .._client import AsyncFluidCloud
from .._models import Quota
from ._context import get_settings, run_client
from ._output import dump, echo, emit_json, format_value
from ._params import AliasedGroup, json_option


@click.group(cls=AliasedGroup)
def quota() -> None:
    """Storage and share-link usage against the plan's limits."""


@quota.command("usage")
@json_option
def usage() -> None:
    """Show storage and share-link usage (a limit of -1 means unlimited)."""

    async def body(fc: AsyncFluidCloud) -> Quota:
        return await fc.quota.usage()

    q = run_client(body)
    if get_settings().json:
        emit_json(dump(q))
        return
    storage = f"{format_value('bytes_used', q.bytes_used)} of "
    storage += format_value("bytes_limit", q.bytes_limit)
    links = f"{q.links_used} of {format_value('links_limit', q.links_limit)}"
    echo(f"storage: {storage}\nlinks:   {links}", multiline=True)
