"""``fluidcloud files sync DIR``: upload what is new or changed, report what is unchanged.

Built on ``files.upload_many(..., keys_from_paths=True, skip_existing=True)``: client keys
are the files' paths relative to DIR (joined to ``--key-prefix``), the destination is
listed once, and a file whose key names a live file there with the same size and SHA-256
is not sent again. Local digests are cached (see :func:`default_cache`), so re-running
over an unchanged tree reads no file. ``--dry-run`` lists and compares only: no write
request is made.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import anyio
import click

from .._client import AsyncFluidCloud
from .._transfer._bulk import UploadResult, expand
from .._transfer._existing import Existing, HashCache
from .._types import SkipReason
from .._validate_args import upload_options
from ._context import get_settings, run_client
from ._output import emit_json, error_line, human_bytes
from ._params import ID, TEXT, json_option
from ._progress import Display, make_display


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/fluidcloud/hashes.sqlite`` (``~/.cache/fluidcloud/...`` without it)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fluidcloud" / "hashes.sqlite"


def _cache(path: Path | None, disabled: bool) -> HashCache | None:
    if disabled:
        return None
    if path is None:
        path = default_cache()
        # Created private: the digests say which files are not uploaded again.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return HashCache(path)


class Tally:
    """Counts and the per-file records of one sync."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.counts = {"uploaded": 0, "unchanged": 0, "skipped": 0, "failed": 0}
        self.bytes = 0
        self.records: list[dict[str, Any]] = []

    def add(self, result: UploadResult, *, dry_run: bool = False) -> dict[str, Any]:
        """Count one result; its JSON record."""
        record: dict[str, Any] = {"path": str(result.source), "client_key": result.client_key}
        if result.skipped is SkipReason.UNCHANGED:
            status = "unchanged"
            record["id"] = result.file.id if result.file else None
        elif result.skipped is not None:
            status = "skipped"
            record.update(code=result.skipped.name.lower(), reason=result.reason)
        elif result.error is not None:
            status = "failed"
            record["error"] = error_line(result.error, hint=False)
        else:
            status = "uploaded"
            size = result.file.size if result.file else None
            self.bytes += size or 0
            record.update(id=result.file.id if result.file else None, size=size)
            record["change"] = result.note or "new"
        self.counts[status] += 1
        record["status"] = "would upload" if dry_run and status == "uploaded" else status
        self.records.append(record)
        return record

    def summary(self, *, dry_run: bool) -> dict[str, Any]:
        """Counts, bytes, seconds and rate."""
        seconds = time.monotonic() - self.started
        data: dict[str, Any] = dict(self.counts)
        data.update(
            bytes=self.bytes,
            seconds=round(seconds, 3),
            bytes_per_second=int(self.bytes / seconds) if seconds > 0 else 0,
            dry_run=dry_run,
        )
        return data

    def line(self, *, dry_run: bool) -> str:
        """``uploaded 3 (1.2 MiB), unchanged 97, skipped 0, failed 0 in 1.3s (0.9 MiB/s)``."""
        s = self.summary(dry_run=dry_run)
        verb = "would upload" if dry_run else "uploaded"
        rate = "" if dry_run else f" ({human_bytes(s['bytes_per_second'])}/s)"
        return (
            f"{verb} {s['uploaded']} ({human_bytes(s['bytes'])}), unchanged {s['unchanged']}, "
            f"skipped {s['skipped']}, failed {s['failed']} in {s['seconds']:.1f}s{rate}"
        )


def _log(display: Display, record: dict[str, Any], verbose: bool) -> None:
    status = record["status"]
    if status == "skipped":
        display.log(f"skipped {record['path']}: {record['reason']}")
    elif status == "unchanged" and verbose:
        display.log(f"unchanged {record['path']}")
    elif status == "would upload":
        display.log(f"would upload {record['path']} ({record['change']})")


async def _dry_run(fc: AsyncFluidCloud, opts: dict[str, Any], tally: Tally, verbose: bool) -> None:
    """Walk, list and compare as the real run would; no write request."""
    try:
        plan = expand(
            opts["root"],
            upload_options(space_id=opts["space_id"], folder_id=opts["folder_id"]),
            keys_from_paths=True,
            key_prefix=opts["key_prefix"],
            follow_symlinks=opts["follow_symlinks"],
        )
        jobs = await anyio.to_thread.run_sync(plan.jobs, abandon_on_cancel=True)
    except ValueError as exc:  # e.g. two paths giving one key: refused as the real run would
        raise click.UsageError(str(exc)) from exc
    existing = Existing(opts["hash_cache"])
    display = make_display(0, 1, quiet=True)
    try:
        await existing.load(fc.files._engine().api, jobs)
        for job in jobs:
            result = UploadResult(job.source, job.client_key, index=job.index, error=job.error)
            if job.skip is not None:
                result.skipped, result.skip_detail = job.skip
            elif job.spec is not None and job.error is None:
                try:
                    found = await existing.check(job)
                except Exception as exc:  # reported per file, as the real run would
                    result.error = exc
                else:
                    if found.unchanged is not None:
                        result.skipped, result.file = SkipReason.UNCHANGED, found.unchanged
                    else:
                        result.note = found.note
            record = tally.add(result, dry_run=True)
            if record["status"] == "would upload" and job.spec is not None:
                tally.bytes += job.spec.size or 0
            if not get_settings().json:
                _log(display, record, verbose)
    finally:
        with anyio.CancelScope(shield=True):
            await existing.aclose()


async def _sync(
    fc: AsyncFluidCloud, opts: dict[str, Any], tally: Tally, quiet: bool, verbose: bool
) -> None:
    shown: list[Display] = []

    def report(sent: int, total: int) -> None:
        for display in shown:
            display.batch(sent, total)

    def report_file(source: Any, sent: int, total: int) -> None:
        for display in shown:
            display.track(id(source), str(source), sent, total)

    limits = {k: v for k in ("max_files", "max_concurrency") if (v := opts[k]) is not None}
    batch = fc.files.upload_many(
        opts["root"],
        opts["space_id"],
        folder_id=opts["folder_id"],
        keys_from_paths=True,
        key_prefix=opts["key_prefix"],
        follow_symlinks=opts["follow_symlinks"],
        skip_existing=True,
        hash_cache=opts["hash_cache"],
        wait_until_clean=opts["wait"],
        progress=report,
        file_progress=report_file,
        **limits,
    )
    async with contextlib.AsyncExitStack() as stack:
        try:  # the walk and the listing happen here; bad trees are usage errors
            results = await stack.enter_async_context(batch)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
        files = len(batch) - batch.skipped_count
        title = f"syncing {files} files from {opts['root']}"
        display = stack.enter_context(make_display(0, files, quiet=quiet, title=title))
        shown.append(display)
        async for result in results:
            task = display.untrack(id(result.source))
            record = tally.add(result)
            if get_settings().json:
                continue
            if record["status"] == "uploaded":
                display.file_done(str(result.source), record["size"], True, task=task)
            elif record["status"] == "failed":
                display.file_done(str(result.source), None, False, record["error"], task=task)
            else:
                if record["status"] == "unchanged":
                    display.finished += 1
                _log(display, record, verbose)


@click.command("sync")
@click.argument(
    "root",
    metavar="DIR",
    type=click.Path(exists=True, file_okay=False, readable=True, path_type=Path),
)
@click.option("--space", "space_id", type=ID, required=True, help="Space to sync into.")
@click.option("--folder", "folder_id", type=ID, help="Folder inside the space.")
@click.option("--key-prefix", type=TEXT, help="Prefix of the client keys (e.g. 'jobs/7').")
@click.option("--dry-run", is_flag=True, help="Only list and compare: upload nothing.")
@click.option(
    "--hash-cache",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite cache of local SHA-256s (default: $XDG_CACHE_HOME/fluidcloud/hashes.sqlite).",
)
@click.option("--no-hash-cache", is_flag=True, help="Read every candidate file again.")
@click.option("--wait", is_flag=True, help="Wait until every file is scanned clean.")
@click.option(
    "--concurrency", "max_concurrency", type=click.IntRange(min=1), help="Parts in flight."
)
@click.option("--max-files", type=click.IntRange(min=1), help="Files in flight at once.")
@click.option("--follow-symlinks", is_flag=True, help="Follow symlinks to targets inside DIR only.")
@click.option("-v", "--verbose", is_flag=True, help="Also list the unchanged files.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@json_option
def sync(
    root: Path,
    dry_run: bool,
    hash_cache: Path | None,
    no_hash_cache: bool,
    verbose: bool,
    quiet: bool,
    **options: Any,
) -> None:
    """Upload the new and changed files of DIR; report the unchanged ones.

    Each file's client key is its path relative to DIR (after --key-prefix). The
    destination is listed once; a file whose key names a live file there with the same
    size and SHA-256 is left alone, a changed one is uploaded and supersedes it, so an
    interrupted sync resumes where it stopped. Prints a summary (uploaded / unchanged /
    skipped / failed, bytes, rate); --json prints every file's record and the summary.
    Exit status 1 if any file failed; symlinks and special files are skipped (exit 0).
    """
    if hash_cache is not None and no_hash_cache:
        raise click.UsageError("give at most one of --hash-cache and --no-hash-cache")
    opts = dict(options, root=root, hash_cache=_cache(hash_cache, no_hash_cache))
    tally = Tally()

    async def body(fc: AsyncFluidCloud) -> None:
        if dry_run:
            await _dry_run(fc, opts, tally, verbose)
        else:
            await _sync(fc, opts, tally, quiet, verbose)

    run_client(body)
    if get_settings().json:
        emit_json({"files": tally.records, "summary": tally.summary(dry_run=dry_run)})
    else:
        click.echo(tally.line(dry_run=dry_run))
    if tally.counts["failed"]:
        click.get_current_context().exit(1)


def register(group: click.Group) -> None:
    """Add ``sync`` to the ``files`` group."""
    group.add_command(sync)
