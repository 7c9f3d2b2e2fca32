"""Rendering results (compact tables or JSON) and one-line error messages."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import click
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text
from yarl import URL

from .._exceptions import ApiConnectionError, ApiError, FluidCloudError, RateLimitError
from .._redact import mask_key
from ._context import get_settings

# Fields shown as byte counts in human output.
_BYTE_FIELDS = frozenset({"size", "bytes_used", "bytes_limit"})
_LIMIT_FIELDS = frozenset({"bytes_limit", "links_limit"})


def console(*, stderr: bool = False, width: int | None = None) -> Console:
    """A console that never interprets markup in API data and, when piped, never wraps."""
    stream = sys.stderr if stderr else sys.stdout
    if width is None and not stream.isatty():
        width = 10_000
    return Console(
        file=stream, markup=False, highlight=False, emoji=False, width=width, soft_wrap=False
    )


def print_table(table: Table) -> None:
    """Print a table on stdout without the trailing padding rich adds to each row."""
    out = console()
    natural = out.measure(table, options=out.options.update_width(10_000)).maximum
    if natural > out.width:
        # Wider than the terminal: let the terminal wrap lines rather than crop ids.
        out = console(width=natural)
    with out.capture() as captured:
        out.print(table)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def dump(model: BaseModel) -> dict[str, Any]:
    """A model as JSON-ready data, fields named as the API names them."""
    return model.model_dump(mode="json")


def emit_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def human_bytes(n: int) -> str:
    """``1536`` -> ``1.5 KiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_value(field: str, value: Any) -> str:
    """A field value as a table cell."""
    if value is None:
        return "-"
    if field in _LIMIT_FIELDS and value == -1:
        return "unlimited"
    if field in _BYTE_FIELDS and isinstance(value, int):
        return human_bytes(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def show_record(model: BaseModel) -> None:
    """One object: JSON, or a two-column table of its set fields."""
    if get_settings().json:
        emit_json(dump(model))
        return
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for name in type(model).model_fields:
        value = getattr(model, name)
        if value is not None:
            table.add_row(Text(name), Text(format_value(name, value)))
    print_table(table)


def show_list(models: Sequence[BaseModel], columns: Sequence[str], *, empty: str) -> None:
    """Many objects: a JSON array, or a table of ``columns``."""
    if get_settings().json:
        emit_json([dump(m) for m in models])
        return
    if not models:
        click.echo(empty)
        return
    rows = [[format_value(c, getattr(model, c, None)) for c in columns] for model in models]
    table = Table(box=None, pad_edge=False, header_style="bold")
    for i, column in enumerate(columns):
        # Ids are for copying: never shrink them; other cells wrap rather than truncate.
        widest = max(len(row[i]) for row in rows) if column.endswith("id") else None
        table.add_column(column, overflow="fold", min_width=widest)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    print_table(table)


def show_message(text: str, data: Mapping[str, Any] | Sequence[Any]) -> None:
    """A result that is a plain value: ``text`` for humans, ``data`` as JSON."""
    if get_settings().json:
        emit_json(data)
    else:
        click.echo(text)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by its masked form."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, mask_key(secret))
    return text


def _where(method: str, url: str) -> str:
    if not method:
        return ""
    try:
        path = URL(url).path_qs if url else ""
    except (TypeError, ValueError):
        path = ""
    return f" ({method} {path})" if path else f" ({method})"


def error_line(exc: BaseException, *, hint: bool = True) -> str:
    """One line that says what went wrong (no traceback; ``hint`` suggests --debug for
    unexpected errors)."""
    if isinstance(exc, ApiError):
        line = f"API error {exc.status}: {exc.message}"
        if exc.code and exc.code not in exc.message:
            line += f" [{exc.code}]"
        line += _where(exc.method, exc.url)
        if isinstance(exc, RateLimitError) and exc.retry_after is not None:
            line += f"; retry after {exc.retry_after:g}s"
        return line
    if isinstance(exc, ApiConnectionError):
        return f"connection error: {exc}"
    if isinstance(exc, FluidCloudError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    line = f"unexpected {type(exc).__name__}: {exc}"
    return f"{line} (rerun with --debug for the traceback)" if hint else line


def show_trashed(resource: str, item_id: str, model: BaseModel | None) -> None:
    """The answer of a soft delete (a record, or nothing when the server said 204)."""
    if get_settings().json:
        emit_json(dump(model) if model is not None else {"id": item_id})
        return
    click.echo(f"moved {item_id} to the trash (undo: fluidcloud {resource} restore {item_id})")
