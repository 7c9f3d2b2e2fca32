"""``fluidcloud files upload`` and ``fluidcloud files download``."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import click

from .._client import AsyncFluidCloud
from .._models import File
from .._transfer._bulk import UploadResult
from .._transfer._download import local_name
from ._context import get_settings, run_client
from ._output import dump, error_line, human_bytes, show_list, show_message
from ._params import ID, TEXT, json_option
from ._progress import Display, make_display

UPLOAD_COLUMNS = ("id", "original_name", "size", "scan_status", "client_key")


@dataclass(frozen=True)
class UploadRequest:
    """What `files upload` was asked to do."""

    paths: tuple[Path, ...]
    space_id: str
    folder_id: str | None
    client_key: str | None
    keys_from_paths: bool
    key_prefix: str | None
    public: bool
    wait: bool
    concurrency: int | None
    max_files: int | None
    follow_symlinks: bool

    def check(self) -> None:
        """Usage errors that click's types cannot express."""
        if self.client_key is not None and self.keys_from_paths:
            raise click.UsageError("give at most one of --client-key and --keys-from-paths")
        if self.client_key is not None and (len(self.paths) != 1 or self.paths[0].is_dir()):
            raise click.UsageError("--client-key needs exactly one file (use --keys-from-paths)")
        if self.key_prefix is not None and not self.keys_from_paths:
            raise click.UsageError("--key-prefix needs --keys-from-paths")

    def limits(self, *, single: bool) -> dict[str, Any]:
        """The concurrency options given (only those: the SDK's defaults stay its own)."""
        given: dict[str, Any] = {}
        if self.concurrency is not None:
            given["max_concurrency"] = self.concurrency
        if self.max_files is not None and not single:
            given["max_files"] = self.max_files
        return given

    @property
    def single(self) -> bool:
        """One plain file: uploaded with per-file progress by ``files.upload``."""
        return len(self.paths) == 1 and not self.paths[0].is_dir() and not self.keys_from_paths


async def _upload_single(fc: AsyncFluidCloud, req: UploadRequest, size: int, quiet: bool) -> File:
    path = req.paths[0]
    title = f"uploading {path} ({human_bytes(size)})"
    with make_display(size, 1, quiet=quiet, title=title) as display:
        task = display.add_file(str(path), size)
        # A failure propagates to the root group, which prints its one line.
        file = await fc.files.upload(
            path,
            req.space_id,
            folder_id=req.folder_id,
            client_key=req.client_key,
            public=req.public,
            wait_until_clean=req.wait,
            progress=task.update,
            **req.limits(single=True),
        )
        task.finish(True, file.id)
    return file


def _report_skipped(display: Display, result: UploadResult) -> None:
    """One stderr line per skipped entry (a JSON object with --json, for scripts)."""
    if get_settings().json:
        assert result.skipped is not None
        line = {
            "skipped": str(result.source),
            "client_key": result.client_key,
            "code": result.skipped.name.lower(),
            "reason": result.reason,
        }
        display.log(json.dumps(line, ensure_ascii=False))
    else:
        display.log(f"skipped {result.source}: {result.reason}")


async def _upload_bulk(
    fc: AsyncFluidCloud, req: UploadRequest, quiet: bool
) -> tuple[list[File], int, int]:
    """Everything through ``upload_many`` (one shared scheduler and rate limiter); the
    files uploaded, the number failed and the number skipped."""
    shown: list[Display] = []  # the display exists only once the batch size is known

    def report(sent: int, total: int) -> None:
        for display in shown:
            display.batch(sent, total)

    def report_file(source: Any, sent: int, total: int) -> None:
        for display in shown:  # keyed by identity: the batch hands back the same object
            display.track(id(source), str(source), sent, total)

    try:
        batch = fc.files.upload_many(
            list(req.paths),
            req.space_id,
            folder_id=req.folder_id,
            keys_from_paths=req.keys_from_paths,
            key_prefix=req.key_prefix,
            public=req.public,
            wait_until_clean=req.wait,
            progress=report,
            file_progress=report_file,
            follow_symlinks=req.follow_symlinks,
            **req.limits(single=False),
        )
    except (TypeError, ValueError) as exc:  # refused before any request, e.g. duplicate keys
        raise click.UsageError(str(exc)) from exc
    done: list[tuple[int, File]] = []
    failed = skipped = 0
    async with contextlib.AsyncExitStack() as stack:
        try:  # directories are walked here: their duplicate keys are refused here too
            results = await stack.enter_async_context(batch)
        except (TypeError, ValueError) as exc:
            raise click.UsageError(str(exc)) from exc
        if len(batch) == 0:
            raise click.UsageError("no files to upload under the given paths")
        uploads = len(batch) - batch.skipped_count
        title = f"uploading {uploads} files" + (
            f", {batch.skipped_count} skipped" if batch.skipped_count else ""
        )
        display = stack.enter_context(make_display(0, uploads, quiet=quiet, title=title))
        shown.append(display)
        async for result in results:
            label = str(result.source)
            task = display.untrack(id(result.source))
            if result.skipped is not None:
                skipped += 1
                _report_skipped(display, result)
                continue
            if result.ok and result.file is not None:
                done.append((result.index, result.file))
                display.file_done(label, result.file.size, True, task=task)
            else:
                failed += 1
                why = error_line(result.error) if result.error else "no file returned"
                display.file_done(label, None, False, why, task=task)
    return [file for _, file in sorted(done, key=lambda pair: pair[0])], failed, skipped


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
    help="Client key of each file: its path relative to the directory given "
    "(a file given directly: its name).",
)
@click.option("--key-prefix", type=TEXT, help="Prefix of keys from paths (e.g. 'jobs/7').")
@click.option("--public", is_flag=True, help="Wait for the scan, then mint a public link.")
@click.option("--wait", is_flag=True, help="Wait until every file is scanned clean.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Parts in flight, shared by all files (default 8 for one file, 16 in bulk).",
)
@click.option(
    "--max-files", type=click.IntRange(min=1), help="Files in flight at once (default 16)."
)
@click.option(
    "--follow-symlinks",
    is_flag=True,
    help="Follow symlinks inside directories, to targets inside the directory only "
    "(default: symlinks are skipped).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@json_option
def upload(quiet: bool, **options: Any) -> None:
    """Upload files and whole directories; print the stored files.

    Progress goes to stderr. A directory is walked recursively and uploaded through one
    shared scheduler. Symlinks inside it are not followed (see --follow-symlinks); they
    and fifos, sockets and devices are skipped, each with a 'skipped PATH: REASON' line
    on stderr (a JSON object per line with --json) and a warning at the end, but exit
    status stays 0. Exit status 1 if any file failed (the others still upload);
    Ctrl-C cancels every transfer in flight and exits 130.
    """
    req = UploadRequest(**options)
    req.check()
    size = req.paths[0].stat().st_size if req.single else 0

    async def body(fc: AsyncFluidCloud) -> tuple[list[File], int, int]:
        if req.single:
            return [await _upload_single(fc, req, size, quiet)], 0, 0
        return await _upload_bulk(fc, req, quiet)

    uploaded, failed, skipped = run_client(body)
    columns = (*UPLOAD_COLUMNS, "public_url") if req.public else UPLOAD_COLUMNS
    show_list(uploaded, columns, empty="nothing uploaded")
    if skipped:  # not failures: reported, exit status unchanged
        what = "entry" if skipped == 1 else "entries"
        click.echo(
            f"fluidcloud: warning: {skipped} directory {what} skipped (not uploaded; "
            "see the 'skipped' lines above)",
            err=True,
        )
    if failed:
        total = failed + len(uploaded)
        click.echo(f"fluidcloud: error: {failed} of {total} uploads failed", err=True)
        click.get_current_context().exit(1)


def _split_download_args(args: tuple[str, ...], client_key: str | None) -> tuple[str | None, str]:
    if client_key is not None:
        if len(args) != 1:
            raise click.UsageError("with --client-key give only DEST")
        return None, args[0]
    if len(args) != 2:
        raise click.UsageError("give ID and DEST (or --client-key KEY and DEST)")
    return ID.convert(args[0], None, click.get_current_context()), args[1]


@click.command("download")
@click.argument("args", nargs=-1, metavar="[ID] DEST")
@click.option("--client-key", type=TEXT, help="Find the file by your client key instead of ID.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Ranged GETs in flight for large files.",
)
@click.option("--no-verify", is_flag=True, help="Skip the SHA-256 check of the bytes.")
@click.option(
    "-f", "--force", is_flag=True, help="Replace an existing file (it keeps its permissions)."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@json_option
def download(
    args: tuple[str, ...],
    client_key: str | None,
    concurrency: int,
    no_verify: bool,
    force: bool,
    quiet: bool,
) -> None:
    """Download a file to DEST (a path, a directory, or - for stdout), verified.

    The bytes land beside DEST and are moved into place only when complete. An existing
    file is never replaced without --force (exit status 1). Into a directory, the file
    keeps its stored name unless that name is unsafe here (a dotfile, '..', a path, control
    characters, too long): then it is named after its id. The result line says what was
    checked: the size always, the SHA-256 when the record has one (not with --no-verify).
    """
    file_id, dest_arg = _split_download_args(args, client_key)
    to_stdout = dest_arg == "-"
    if to_stdout and get_settings().json:
        raise click.UsageError("--json cannot be combined with DEST '-'")

    async def body(fc: AsyncFluidCloud) -> tuple[File, str]:
        if file_id is not None:
            file = await fc.files.get(file_id)
        else:
            assert client_key is not None
            file = await fc.files.resolve(client_key)
        dest = Path(dest_arg)
        if not to_stdout and await anyio.Path(dest).is_dir():
            dest = dest / local_name(file, str(dest))
        if not to_stdout and not force and await anyio.to_thread.run_sync(os.path.lexists, dest):
            raise _exists(dest)  # before the download, not after it
        title = f"downloading {file.id} ({human_bytes(file.size or 0)}) to {dest_arg}"
        with make_display(file.size or 0, 1, quiet=quiet, title=title) as display:
            task = display.add_file(file.original_name, file.size)
            target: Any = sys.stdout.buffer if to_stdout else dest
            # A failure propagates to the root group, which prints its one line.
            try:
                file = await fc.files.download(
                    file.id,
                    target,
                    progress=task.update,
                    max_concurrency=concurrency,
                    verify=not no_verify,
                    overwrite=force,
                )
            except FileExistsError:  # created while downloading: still not replaced
                raise _exists(dest) from None
            task.finish(True)
        return file, "-" if to_stdout else str(dest)

    file, where = run_client(body)
    if to_stdout:
        sys.stdout.buffer.flush()
        return
    checked = checks_done(file, verify=not no_verify)
    show_message(
        f"downloaded {file.id} ({human_bytes(file.size or 0)}) to {where}, "
        f"{describe_checks(checked, no_verify=no_verify)}",
        {
            "path": where,
            # "verified" is true only when the bytes' SHA-256 matched the record's.
            "verified": "sha256" in checked,
            "sha256_verified": "sha256" in checked,
            "checked": checked,
            "file": dump(file),
        },
    )


def _exists(dest: Path) -> FileExistsError:
    return FileExistsError(
        errno.EEXIST, "the destination exists (use --force to replace it)", str(dest)
    )


def checks_done(file: File, *, verify: bool) -> list[str]:
    """What ``files.download`` checked the bytes against: ``size`` (whenever the record
    has one) and ``sha256`` (with ``verify`` and a hash on the record)."""
    checked = [] if file.size is None else ["size"]
    if verify and file.sha256:
        checked.append("sha256")
    return checked


def describe_checks(checked: list[str], *, no_verify: bool) -> str:
    """``checked`` in words, saying plainly when the SHA-256 was not checked and why."""
    size = "size" in checked
    if "sha256" in checked:
        return "size and SHA-256 verified" if size else "SHA-256 verified (no size on record)"
    lead = "size verified" if size else "nothing verified (no size on record)"
    why = "SHA-256 not verified (--no-verify)" if no_verify else "no SHA-256 on record"
    return f"{lead}; {why}"


def register(group: click.Group) -> None:
    """Add the transfer commands to the ``files`` group."""
    group.add_command(upload)
    group.add_command(download)
