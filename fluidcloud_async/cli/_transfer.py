"""``fluidcloud files upload`` and ``fluidcloud files download``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .._client import AsyncFluidCloud
from .._models import File
from ._context import run_client
from ._output import show_list
from ._params import ID, TEXT, json_option
from ._progress import Display, make_display

UPLOAD_COLUMNS = ("id", "original_name", "size", "scan_status", "client_key")


def _walk(paths: tuple[Path, ...]) -> list[Path]:
    """Every regular file under ``paths`` (directories recursively, in a stable order)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs.sort()
                found.extend(Path(root, n) for n in sorted(names) if Path(root, n).is_file())
        else:
            found.append(path)
    return found


def _check_upload_args(
    paths: tuple[Path, ...], client_key: str | None, keys_from_paths: bool, key_prefix: str | None
) -> None:
    if client_key is not None and keys_from_paths:
        raise click.UsageError("give at most one of --client-key and --keys-from-paths")
    if client_key is not None and (len(paths) != 1 or paths[0].is_dir()):
        raise click.UsageError("--client-key needs exactly one file (use --keys-from-paths)")
    if key_prefix is not None and not keys_from_paths:
        raise click.UsageError("--key-prefix needs --keys-from-paths")


async def _upload_one(
    fc: AsyncFluidCloud,
    path: Path,
    size: int,
    display: Display,
    *,
    space_id: str,
    folder_id: str | None,
    client_key: str | None,
    public: bool,
    wait: bool,
    concurrency: int,
) -> File:
    task = display.add_file(str(path), size)
    try:
        file = await fc.files.upload(
            path,
            space_id,
            folder_id=folder_id,
            client_key=client_key,
            public=public,
            wait_until_clean=wait,
            max_concurrency=concurrency,
            progress=task.update,
        )
    except Exception as exc:
        task.finish(False, str(exc))
        raise
    task.finish(True, file.id)
    return file


@click.command("upload")
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    metavar="PATH...",
    type=click.Path(exists=True, readable=True, path_type=Path),
)
@click.option("--space", "space_id", type=ID, required=True, help="Space to upload into.")
@click.option("--folder", "folder_id", type=ID, help="Folder inside the space.")
@click.option("--client-key", type=TEXT, help="Your own key for the file (one file only).")
@click.option(
    "--keys-from-paths",
    is_flag=True,
    help="Use each file's path relative to the given directory as its client key.",
)
@click.option("--key-prefix", type=TEXT, help="Prefix of keys from paths (e.g. 'jobs/7/').")
@click.option("--public", is_flag=True, help="Wait for the scan, then mint a public link.")
@click.option("--wait", is_flag=True, help="Wait until every file is scanned clean.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Parts in flight, shared by all files.",
)
@click.option("--max-files", type=click.IntRange(min=1), help="Files in flight at once.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@json_option
def upload(
    paths: tuple[Path, ...],
    space_id: str,
    folder_id: str | None,
    client_key: str | None,
    keys_from_paths: bool,
    key_prefix: str | None,
    public: bool,
    wait: bool,
    concurrency: int,
    max_files: int | None,
    quiet: bool,
) -> None:
    """Upload files and whole directories (progress on stderr; Ctrl-C stops cleanly)."""
    _check_upload_args(paths, client_key, keys_from_paths, key_prefix)
    files = _walk(paths)
    sizes = {p: p.stat().st_size for p in files}
    total = sum(sizes.values())
    single = len(paths) == 1 and not paths[0].is_dir() and not keys_from_paths

    async def body(fc: AsyncFluidCloud) -> list[File]:
        with make_display(total, len(files), quiet=quiet) as display:
            if single:
                one = await _upload_one(
                    fc,
                    paths[0],
                    sizes[paths[0]],
                    display,
                    space_id=space_id,
                    folder_id=folder_id,
                    client_key=client_key,
                    public=public,
                    wait=wait,
                    concurrency=concurrency,
                )
                return [one]
            raise NotImplementedError("bulk upload")

    uploaded = run_client(body)
    show_list(uploaded, (*UPLOAD_COLUMNS, "public_url") if public else UPLOAD_COLUMNS, empty="")


def register(group: click.Group) -> None:
    """Add the transfer commands to the ``files`` group."""
    group.add_command(upload)
