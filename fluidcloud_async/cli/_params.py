"""Shared parameter types, option decorators and the alias-aware group."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .._validate_args import require_id, require_text
from ._context import get_settings

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    _StrParam = click.ParamType[str]
else:  # click < 8.3 has no generic ParamType at runtime
    _StrParam = click.ParamType


class IdType(_StrParam):
    """An opaque API id: non-empty, no whitespace, no ``/ ? #`` (checked before any call)."""

    name = "ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        # Stricter than the library: no whitespace inside either (ids have none; on a
        # command line it is a quoting mistake).
        try:
            if not any(c.isspace() for c in text):
                return require_id(text, "id")
        except ValueError:
            pass
        self.fail(f"{text!r} is not a valid id", param, ctx)


class TextType(_StrParam):
    """A non-blank string (names, client keys)."""

    name = "TEXT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        name = param.name if param is not None and param.name else "value"
        try:
            return require_text(str(value), name)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


ID = IdType()
TEXT = TextType()


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        get_settings(ctx).json = True


def json_option(f: F) -> F:
    """``--json`` on a data command (same as the global ``fluidcloud --json``)."""
    return click.option(
        "--json",
        "json_output",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Print the result as JSON.",
    )(f)


class AliasedGroup(click.Group):
    """A group whose commands may have aliases (``files rm`` = ``files delete``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aliases: dict[str, str] = {}

    def add_alias(self, alias: str, name: str) -> None:
        """Make ``alias`` run the command ``name``."""
        self.aliases[alias] = name

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.aliases.get(cmd_name, cmd_name))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        # Report the canonical name so usage and help read `files delete`, not `files rm`.
        _name, cmd, rest = super().resolve_command(ctx, args)
        return (cmd.name if cmd else _name), cmd, rest


def destination(target: str | None, root: bool, option: str) -> str | None:
    """The target of a move: an id, or None for the space root (exactly one must be given)."""
    if (target is None) == (not root):
        raise click.UsageError(f"give exactly one of {option} ID or --root")
    return target
