"""Rendering results (compact tables or JSON) and one-line error messages.

Everything the CLI prints passes through :func:`terminal_safe` (via :func:`echo`,
:func:`cell` or :func:`emit_json`): names, error details and URLs come from the server, and
a name like ``ESC]0;...BEL`` must not retitle or clear the user's terminal.
"""

from __future__ import annotations

import json
import re
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

# What a terminal acts on or cannot print: C0 controls (ESC starts CSI/OSC sequences, BEL
# ends them, CR/BS overwrite), DEL, C1 controls (0x9b is an 8-bit CSI), lone surrogates
# (undecodable file names; not encodable for output), line/paragraph separators and the
# bidi embeddings, overrides and isolates (they reorder what is shown).
_OTHER_UNSAFE = r"\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE_TEXT = re.compile(rf"[\x00-\x1f\x7f-\x9f{_OTHER_UNSAFE}]")
_UNSAFE_LINES = re.compile(rf"[\x00-\x09\x0b-\x1f\x7f-\x9f{_OTHER_UNSAFE}]")  # keeps \n


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match[0]):04x}"


def terminal_safe(text: str, *, multiline: bool = False) -> str:
    """``text`` with every C0/C1 control character, DEL, lone surrogate, line separator
    and bidi control written as a ``\\uXXXX`` escape (``multiline`` keeps ``\\n``).

    The escape is the same in JSON, Python and JavaScript strings, so applied to JSON text
    it changes no value (JSON itself escapes only C0). A backslash already in ``text`` is
    left as it is.
    """
    return (_UNSAFE_LINES if multiline else _UNSAFE_TEXT).sub(_escape, text)


def echo(text: str, *, err: bool = False, multiline: bool = False) -> None:
    """Print a line (``multiline``: lines) made terminal-safe, on stdout or stderr."""
    click.echo(terminal_safe(text, multiline=multiline), err=err)


def cell(text: str) -> Text:
    """A terminal-safe table cell (rich markup is never interpreted either)."""
    return Text(terminal_safe(text))


def console(*, stderr: bool = False, width: int | None = None) -> Console:
    """A console that never interprets markup in API data and, when piped, never wraps."""
    stream = sys.stderr if stderr else sys.stdout
    if width is None and not stream.isatty():
        width = 10_000
    return Console(
        file=stream, markup=False, highlight=False, emoji=False, width=width, soft_wrap=False
    )


def print_table(table: Table) -> None:
    """Print a table on stdout without the trailing padding rich adds to each row.

    Its cells must be made with :func:`cell`: the rendered text is printed as it is (on a
    terminal it holds rich's own styling sequences)."""
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
    """Print ``data`` as indented JSON on stdout (C1 controls and the like escaped as
    ``\\uXXXX``: the same values, but nothing a terminal acts on)."""
    echo(json.dumps(data, indent=2, ensure_ascii=False), multiline=True)


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
            table.add_row(cell(name), cell(format_value(name, value)))
    print_table(table)


def show_list(models: Sequence[BaseModel], columns: Sequence[str], *, empty: str) -> None:
    """Many objects: a JSON array, or a table of ``columns``."""
    if get_settings().json:
        emit_json([dump(m) for m in models])
        return
    if not models:
        echo(empty)
        return
    rows = [
        [terminal_safe(format_value(c, getattr(model, c, None))) for c in columns]
        for model in models
    ]
    table = Table(box=None, pad_edge=False, header_style="bold")
    for i, column in enumerate(columns):
        # Ids are for copying: never shrink them; other cells wrap rather than truncate.
        widest = max(len(row[i]) for row in rows) if column.endswith("id") else None
        table.add_column(column, overflow="fold", min_width=widest)
    for row in rows:
        table.add_row(*(Text(text) for text in row))  # made safe above
    print_table(table)


def show_message(text: str, data: Mapping[str, Any] | Sequence[Any]) -> None:
    """A result that is a plain value: ``text`` for humans, ``data`` as JSON."""
    if get_settings().json:
        emit_json(data)
    else:
        echo(text)


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
    echo(f"moved {item_id} to the trash (undo: fluidcloud {resource} restore {item_id})")
