"""The root ``fluidcloud`` group: global options and the exit-status contract.

Exit statuses: 0 ok, 1 API/SDK error (one line on stderr), 2 usage error (click),
130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any

import click

from .._version import __version__
from ._context import Settings, get_settings
from ._output import echo, error_line, redact, terminal_safe
from ._params import AliasedGroup

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class _RedactingFilter(logging.Filter):
    """Masks the API key in any log record (defence in depth: the SDK never logs it)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = terminal_safe(redact(record.getMessage(), self.secrets), multiline=True)
        record.args = None
        return True


class RootGroup(AliasedGroup):
    """Turns exceptions from any subcommand into one stderr line and an exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:  # click prints it: its text may quote input
            # Typed Final in click's stubs, but plain data: rewritten, not re-created (a
            # UsageError keeps its context and exit status).
            setattr(exc, "message", terminal_safe(exc.message))  # noqa: B010
            raise
        except (click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise  # click's own handling (BrokenPipe: `fluidcloud ... | head` ends quietly)
        except KeyboardInterrupt:
            echo("fluidcloud: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            settings = ctx.obj if isinstance(ctx.obj, Settings) else Settings()
            if settings.debug:
                text = "".join(traceback.format_exception(exc))
                echo(redact(text, settings.secrets()).rstrip(), err=True, multiline=True)
            line = error_line(exc, hint=not settings.debug)
            echo(f"fluidcloud: error: {redact(line, settings.secrets())}", err=True)
            ctx.exit(EXIT_ERROR)


def _setup_debug(ctx: click.Context, settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
    handler.addFilter(_RedactingFilter(settings.secrets()))
    logger = logging.getLogger("fluidcloud_async")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)

    def restore() -> None:  # matters when the CLI runs in-process (tests, embedding)
        logger.removeHandler(handler)
        logger.setLevel(previous)

    ctx.call_on_close(restore)
    echo(f"debug: {settings.describe()}", err=True)


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--api-key",
    metavar="KEY",
    help="Partner API key (default: $FLUIDCLOUD_API_KEY; prefer the variable, "
    "options show up in process lists).",
)
@click.option(
    "--base-url",
    metavar="URL",
    help="API origin (default: $FLUIDCLOUD_BASE_URL, then production).",
)
@click.option("--json", "json_output", is_flag=True, help="Print results as JSON.")
@click.option("--debug", is_flag=True, help="Log requests and show tracebacks on errors.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Seconds (default 300). An API call's attempt must finish within it; a storage "
    "transfer only must not stall that long (no progress), however long it runs.",
)
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    metavar="N",
    help="Retries of a failed request (default 3; 0 fails fast).",
)
@click.version_option(__version__, prog_name="fluidcloud")
@click.pass_context
def cli(
    ctx: click.Context,
    api_key: str | None,
    base_url: str | None,
    json_output: bool,
    debug: bool,
    timeout: float | None,
    max_retries: int | None,
) -> None:
    """FluidCloud Partner API from the command line: `fluidcloud <resource> <method>`.

    The commands mirror the Python SDK (fc.files.public_url -> `fluidcloud files
    public-url`). Exit status: 0 ok, 1 API error, 2 usage error, 130 interrupted.
    """
    settings = get_settings(ctx)
    settings.api_key = api_key
    settings.base_url = base_url
    settings.json = settings.json or json_output
    settings.debug = debug
    settings.timeout = timeout
    settings.max_retries = max_retries
    if debug:
        _setup_debug(ctx, settings)


def _register() -> None:
    from . import _emulator, _files, _folders, _quota, _shares, _spaces, _sync, _transfer, _uploads

    for group in (
        _spaces.spaces,
        _folders.folders,
        _files.files,
        _shares.shares,
        _quota.quota,
        _uploads.uploads,
    ):
        cli.add_command(group)
    _transfer.register(_files.files)
    _sync.register(_files.files)
    cli.add_command(_emulator.emulator)


_register()
