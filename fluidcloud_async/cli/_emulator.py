"""``fluidcloud emulator``: run the local emulator (a thin front of its own command line)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING

import click

from ._context import get_settings
from ._params import json_option

if TYPE_CHECKING:
    from ..emulator import Emulator


def _json_banner(emu: Emulator) -> None:
    # One line, so a script can read exactly one line and parse it.
    info = {
        "base_url": emu.base_url,
        "api_key": emu.api_key,
        "storage_url": emu.storage_url,
        "raw_url": emu.raw_url,
    }
    print(json.dumps(info), flush=True)


@click.command(
    "emulator",
    context_settings={"ignore_unknown_options": True},
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8787,
    show_default=True,
    help="API port; storage and raw links use PORT+1 and PORT+2 (0: free ports).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Persist state, bytes and keys here (default: in memory, gone on exit).",
)
@click.option("--api-key", "emulator_key", metavar="KEY", help="Key of the default tenant.")
@click.option("--scan-delay", type=click.FloatRange(min=0), help="Seconds until pending -> clean.")
@click.argument("extra", nargs=-1, type=click.UNPROCESSED, metavar="[EMULATOR OPTIONS]...")
@json_option
def emulator(
    host: str,
    port: int,
    data_dir: str | None,
    emulator_key: str | None,
    scan_delay: float | None,
    extra: tuple[str, ...],
) -> None:
    """Start the local emulator; print FLUIDCLOUD_BASE_URL=... and FLUIDCLOUD_API_KEY=...

    Export the two lines in another shell to point the CLI or the SDK at it; --json prints
    one JSON line instead. Runs until Ctrl-C. Any other option of
    `python -m fluidcloud_async.emulator` passes through (--rate-limits, --latency, ...).
    """
    from ..emulator.__main__ import build_parser, config_from_args, print_banner, serve

    argv = ["--host", host, "--port", str(port), *extra]
    if data_dir is not None:
        argv += ["--data-dir", data_dir]
    if emulator_key is not None:
        argv += ["--api-key", emulator_key]
    if scan_delay is not None:
        argv += ["--scan-delay", str(scan_delay)]
    parser = build_parser()
    parser.prog = "fluidcloud emulator"
    config = config_from_args(parser.parse_args(argv))
    banner = _json_banner if get_settings().json else print_banner
    asyncio.run(serve(config, on_ready=banner))
    sys.stdout.flush()
