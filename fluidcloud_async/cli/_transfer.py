"""``fluidcloud files upload`` / ``files download`` (wired once the transfer engine lands)."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add the transfer commands to the ``files`` group."""
