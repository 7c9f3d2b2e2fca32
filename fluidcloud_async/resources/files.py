"""``fc.files``: file records, links, and (via the transfer engine) uploads and downloads."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio

from .._exceptions import InfectedFileError, ProtocolError, ScanTimeoutError
from .._models import File, Link, Preview, ScanStatus
from .._pagination import AsyncPaginator
from .._ratelimit import RateLimit, rate_limiter
from .._transfer._bulk import FileProgressCallback, JobPlan, UploadMany, expand
from .._transfer._download import download_file
from .._transfer._engine import Engine, StorageRoutes
from .._transfer._existing import Existing, HashCache, check_jobs
from .._transfer._io import ProgressCallback
from .._transfer._journal import journal_location, upload_resumable
from .._transfer._sources import describe
from .._transfer._storage import StoragePolicy
from .._transfer._upload import SlotPool, UploadOptions, upload_file
from .._types import NOT_GIVEN, DownloadTarget, NotGiven, UploadItems, UploadSource
from .._validate_args import (
    optional_callback,
    optional_hash_cache,
    optional_id,
    optional_positive_int,
    optional_rate_limit,
    require_days,
    require_destination,
    require_flag,
    require_id,
    require_permission,
    require_positive_int,
    require_seconds,
    require_text,
    upload_options,
)
from .._validation import validate_response
from ._base import Resource
from .shares import Shares
from .uploads import Uploads


class Files(Resource):
    """`fc.files`: upload, list, fetch, organize, soft-delete, download, mint links
    (scopes `files:read` / `files:write`; `shares:write` for links)."""

    async def upload(
        self,
        file: UploadSource,
        space_id: str,
        *,
        folder_id: str | None = None,
        name: str | None = None,
        content_type: str | None = None,
        public: bool = False,
        client_key: str | None = None,
        size: int | None = None,
        max_concurrency: int = 8,
        progress: ProgressCallback | None = None,
        checksum: bool = True,
        wait_until_clean: bool = False,
        clean_timeout: float | None = 300.0,
        resume: str | os.PathLike[str] | None = None,
    ) -> File:
        """Upload a file: initiate, PUT the bytes straight to storage, complete.

        Large files go up as parallel parts, `max_concurrency` at a time; memory stays
        bounded by that, not by the file size. A path source is checked after the last
        part: if the file changed while it was read, the upload is not completed. See the
        [uploads guide](../uploads.md).

        Args:
            file: What to upload: a path (`str` or `os.PathLike`), a bytes-like object, a
                binary file object (seekable or not), an `aiofiles` file, or an async
                iterable of `bytes`.
            space_id: The space to store it in.
            folder_id: The folder to store it in (else the space root).
            name: The stored name; by default the path's file name, else `upload.bin`.
            content_type: The MIME type; by default guessed from the name.
            public: Wait until the file is scanned clean, then mint a permanent raw link
                into the result's `public_url`.
            client_key: Your own key for the file:
                [`resolve`][fluidcloud_async.resources.Files.resolve] finds it, and a later
                upload with the same key supersedes this one.
            size: The byte count of an async-iterable source, which then streams without
                being spooled to a temporary file first.
            max_concurrency: Parts in flight at once.
            progress: Called as `progress(bytes_sent, total)` (sync or async), at most
                about ten times a second; a retried part rolls its bytes back; the last call
                reports `total`.
            checksum: Send the SHA-256 (computed off the event loop, alongside the parts)
                and check the stored file against it. `False` saves that CPU pass (about
                0.7 CPU-seconds per GiB), and then only the size is checked.
            wait_until_clean: Poll until the virus scan says clean before returning.
            clean_timeout: Seconds to wait for the scan (`None`: no limit).
            resume: A journal path that makes a multipart upload resumable: calling again
                with the same file, options and `resume=` sends only the missing parts.

        Returns:
            The stored file's record.

        Raises:
            TypeError: An unsupported source (or `resume=` with a source that is not a
                path), before any request.
            ValueError: Bad input before any request: a missing path, a negative size, a
                text-mode file, a journal of another file;
                [`NotRegularFileError`][fluidcloud_async.NotRegularFileError] for a path
                that is not a regular file.
            UploadError: The bytes could not be stored; `/complete` was not called
                ([`UploadExpiredError`][fluidcloud_async.UploadExpiredError] when the
                presigned URLs expired,
                [`SourceChangedError`][fluidcloud_async.SourceChangedError] when the source
                changed while it was read).
            ChecksumMismatchError: The stored file differs from the bytes that were sent.
            InfectedFileError: With `wait_until_clean` or `public`: the scan found malware.
            ScanTimeoutError: With `wait_until_clean` or `public`: no verdict within
                `clean_timeout`.

        Examples:
            ```python
            g = await fc.files.upload(b"a,b", space.id, name="table.csv")
            print(g.mime, g.size)
            ```
        """
        options = upload_options(
            space_id=space_id,
            folder_id=folder_id,
            client_key=client_key,
            public=public,
            checksum=checksum,
            wait_until_clean=wait_until_clean,
            clean_timeout=clean_timeout,
            progress=progress,
        )
        slots = require_positive_int(max_concurrency, "max_concurrency")
        spec = describe(file, name=name, content_type=content_type, size=size)
        engine, pool = self._engine(), SlotPool(slots)
        if resume is not None:
            journal = journal_location(resume, spec)
            stored = await upload_resumable(engine, spec, options, pool=pool, journal_path=journal)
        else:
            stored = await upload_file(engine, spec, options, pool=pool)
        return await self._finish(stored, options)

    def _engine(self) -> Engine:
        """The transfer engine's view of this resource: its API calls, the storage routes,
        the storage retry policy."""
        settings = self._transport.settings
        policy = StoragePolicy(
            retry=settings.retry,
            read_timeout=settings.timeout,
            stall_timeout=settings.timeout,
        )
        return Engine(_EngineCalls(self), StorageRoutes(self._transport.sessions), policy)

    async def _finish(self, file: File, options: UploadOptions) -> File:
        """What follows a stored upload: wait for a clean scan, mint the public link."""
        if (options.wait_until_clean or options.public) and not file.is_clean:
            file = await self.wait_until_clean(file.id, timeout=options.clean_timeout)
        if options.public:
            link = await self.public_url(file.id)
            file.public_url = link.url
        return file

    def upload_many(
        self,
        items: UploadItems,
        space_id: str,
        *,
        folder_id: str | None = None,
        max_files: int = 16,
        max_concurrency: int = 16,
        keys_from_paths: bool = False,
        key_prefix: str | None = None,
        fail_fast: bool = False,
        progress: ProgressCallback | None = None,
        file_progress: FileProgressCallback | None = None,
        checksum: bool = True,
        wait_until_clean: bool = False,
        public: bool = False,
        clean_timeout: float | None = 300.0,
        rate_limit: RateLimit | None = RateLimit(),  # noqa: B008 - frozen, shared on purpose
        follow_symlinks: bool = False,
        skip_existing: bool = False,
        hash_cache: str | os.PathLike[str] | HashCache | None = None,
    ) -> UploadMany:
        """Upload many files through one shared pool of part slots; results stream as they finish.

        At most `max_files` files and `max_concurrency` parts (across all files, with their
        read buffers) are in flight. One failure does not stop the others unless
        `fail_fast=True`. See the [bulk ingest guide](../bulk.md).

        Directories are walked when the batch starts, in a worker thread. No symlink in
        them is followed: each one, and every fifo, socket or device, is reported as a
        result with `skipped` set (its [`SkipReason`][fluidcloud_async.SkipReason]; not a
        failure). A file replaced by a symlink after the walk is not followed either.

        Args:
            items: A path, a directory (walked recursively), bytes, a file object, an
                async iterable, a `(source, {options})` pair (options: `name`,
                `content_type`, `size`, `client_key`, `folder_id`, `public`, `checksum`,
                `wait_until_clean`), or an iterable of these.
            space_id: The space to store them in.
            folder_id: The folder to store them in (per item: the pair's `folder_id`).
            max_files: Files in flight at once.
            max_concurrency: Part slots shared by every file in flight.
            keys_from_paths: Give each file found in a directory a `client_key`: its POSIX
                path relative to that directory.
            key_prefix: Joined in front of those keys.
            fail_fast: Raise the first error and cancel the rest.
            progress: `progress(sent, total)` for the whole batch (sync or async).
            file_progress: `file_progress(source, sent, total)` for each file; `source` as
                in the results (the path, for files found in a directory).
            checksum: As for [`upload`][fluidcloud_async.resources.Files.upload]; per item
                too.
            wait_until_clean: As for `upload`; per item too.
            public: As for `upload`; per item too.
            clean_timeout: As for `upload`.
            rate_limit: The per-key request budget the batch keeps to (the documented caps
                by default); `None` turns the client-side limiter off.
            follow_symlinks: Follow the symlinks whose real target stays inside the
                directory (others are skipped), walking each real directory once.
            skip_existing: Upload only what is missing or changed: each destination is
                listed once, and an item whose `client_key` names a live file there with
                the same size and SHA-256 is reported as skipped (`SkipReason.UNCHANGED`,
                `file` = the stored record); a changed one is uploaded and supersedes it.
                Every item needs a `client_key`.
            hash_cache: With `skip_existing`: a path (or a
                [`HashCache`][fluidcloud_async.HashCache]) where local digests are kept by
                path and stat identity, so an unchanged tree is not read again.

        Returns:
            The batch, not started yet: `async with` it for the results as they finish, or
                `await` it for all of them in input order
                ([`UploadMany`][fluidcloud_async.UploadMany]).

        Raises:
            TypeError: A bad item, before any request.
            ValueError: A bad item (a missing path, two files with one `client_key`; with
                `skip_existing`, an item without a `client_key`, a stream, `public=True`),
                before any request; duplicate keys of files found in directories are found
                when the batch starts, still before any request.

        Examples:
            ```python
            from pathlib import Path

            Path("out").mkdir()
            for i in range(3):
                Path("out", f"{i}.txt").write_text(str(i))
            async with fc.files.upload_many("out", space.id, keys_from_paths=True) as results:
                async for r in results:  # UploadResults: in completion order
                    print(r.client_key, r.status)
            again = await fc.files.upload_many(  # all results, in input order
                "out", space.id, keys_from_paths=True, skip_existing=True
            )
            assert [r.status for r in again] == ["skipped"] * 3
            ```
        """
        base = upload_options(
            space_id=space_id,
            folder_id=folder_id,
            public=public,
            checksum=checksum,
            wait_until_clean=wait_until_clean,
            clean_timeout=clean_timeout,
        )
        rate_limit = optional_rate_limit(rate_limit)
        keys_from_paths = require_flag(keys_from_paths, "keys_from_paths")
        skip_existing = require_flag(skip_existing, "skip_existing")
        cache = optional_hash_cache(hash_cache)
        if cache is not None and not skip_existing:
            raise ValueError("hash_cache is used only with skip_existing=True")
        plan = expand(
            items,
            base,
            keys_from_paths=keys_from_paths,
            key_prefix=key_prefix,
            follow_symlinks=require_flag(follow_symlinks, "follow_symlinks"),
        )
        if skip_existing and plan.has_trees and not keys_from_paths:
            raise ValueError(
                "skip_existing matches files by client_key: with directories among the "
                "items, pass keys_from_paths=True"
            )
        if skip_existing and not plan.has_trees:
            check_jobs(plan.jobs())  # walked entries are checked when the batch starts
        return self._batch(
            plan,
            rate_limit=rate_limit,
            max_files=require_positive_int(max_files, "max_files"),
            max_concurrency=require_positive_int(max_concurrency, "max_concurrency"),
            fail_fast=require_flag(fail_fast, "fail_fast"),
            progress=optional_callback(progress, "progress"),
            file_progress=optional_callback(file_progress, "file_progress"),
            existing=Existing(cache) if skip_existing else None,
        )

    def _batch(
        self,
        plan: JobPlan,
        *,
        rate_limit: RateLimit | None,
        max_files: int,
        max_concurrency: int,
        fail_fast: bool = False,
        progress: ProgressCallback | None = None,
        file_progress: FileProgressCallback | None = None,
        existing: Existing | None = None,
    ) -> UploadMany:
        """An ``upload_many`` batch of checked jobs (also run by the Dask workers)."""
        files = self
        if rate_limit is not None:  # every API call of the batch passes the limiter
            limiter = rate_limiter(self._transport, rate_limit)
            files = Files(self._transport.with_hook(limiter.around))
        return UploadMany(
            files._engine(),
            files._finish,
            plan,
            max_files=max_files,
            max_concurrency=max_concurrency,
            fail_fast=fail_fast,
            progress=progress,
            file_progress=file_progress,
            existing=existing,
        )

    async def download(
        self,
        file_id: str,
        dest: DownloadTarget,
        *,
        progress: ProgressCallback | None = None,
        max_concurrency: int = 4,
        verify: bool = True,
        overwrite: bool = False,
    ) -> File:
        """Download a clean file's bytes to a path or a file object, verified.

        A path is written to a temporary file beside it and moved into place only when
        complete and verified; an existing path is never replaced (not even one that
        appears during the download) unless `overwrite=True`. A replaced file keeps its
        permission bits, a new one gets the umask's. A file object (sync or `aiofiles`) is
        written sequentially. Files of 32 MiB and more are fetched as parallel ranged GETs.
        The size is always checked against the record. See the
        [downloads guide](../downloads.md).

        Args:
            file_id: The file; it must be scanned clean.
            dest: A path, or a binary file object (sync or `aiofiles`).
            progress: `progress(received, total)` (sync or async), as for uploads.
            max_concurrency: Ranged GETs in flight for a large file.
            verify: Also check the record's SHA-256, when it has one.
            overwrite: Replace an existing file at a path `dest`.

        Returns:
            The file's record.

        Raises:
            FileExistsError: `dest` exists and `overwrite` is false (before any request).
            DownloadError: The bytes could not be fetched or do not match the record;
                [`StorageProtocolError`][fluidcloud_async.StorageProtocolError] when the
                storage answered outside the protocol (a body longer than the record, a
                `Content-Encoding`, another range), stopped before the excess is written.
            ConflictError: The file is not scanned clean.

        Examples:
            ```python
            await fc.files.download(f.id, "hello.txt")
            await fc.files.download(f.id, "hello.txt", overwrite=True)
            ```
        """
        file_id = require_id(file_id, "file_id")
        return await download_file(
            self._engine(),
            file_id,
            require_destination(dest),
            progress=optional_callback(progress, "progress"),
            max_concurrency=require_positive_int(max_concurrency, "max_concurrency"),
            verify=require_flag(verify, "verify"),
            overwrite=require_flag(overwrite, "overwrite"),
        )

    def list(
        self,
        space_id: str | None = None,
        folder_id: str | None = None,
        *,
        trash: bool = False,
        status: str | None = None,
        app: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> AsyncPaginator[File]:
        """Files at a space root or in a folder, ordered by name, or in the trash.

        Args:
            space_id: The space; required unless `trash=True`.
            folder_id: List inside this folder (else the space root).
            trash: List the tenant-wide trash instead (`space_id` is then ignored).
            status: Only files with this `status` (`"draft"`, `"ready"`, `"blocked"`).
            app: Only files uploaded by this `source_app`.
            limit: Page size (the server's default when `None`).
            cursor: Start from this page cursor.

        Returns:
            A lazy list: `await` it for every file, or `async for` over it to stream the
                pages ([`AsyncPaginator`][fluidcloud_async.AsyncPaginator]).

        Raises:
            ValueError: No `space_id` without `trash=True`.

        Examples:
            ```python
            for item in await fc.files.list(space.id):
                print(item.original_name, item.size)
            ```
        """
        if space_id is None and not trash:
            raise ValueError("space_id is required unless trash=True")
        params = {
            "space_id": optional_id(space_id, "space_id"),
            "folder_id": optional_id(folder_id, "folder_id"),
            "trash": True if trash else None,
            "status": None if status is None else require_text(status, "status"),
            "app": None if app is None else require_text(app, "app"),
            "limit": optional_positive_int(limit, "limit"),
            "cursor": cursor,
        }
        return AsyncPaginator(self._fetch, params, File)

    async def _fetch(self, params: Any) -> Any:
        return await self._transport.request("GET", "/files", params=params)

    async def get(self, file_id: str) -> File:
        """One file's record; poll it for `scan_status`.

        Args:
            file_id: The file.

        Raises:
            NotFoundError: No such file (or another tenant's).
        """
        data = await self._transport.request("GET", f"/files/{require_id(file_id, 'file_id')}")
        return validate_response(File, data)

    async def resolve(self, client_key: str, *, app: str | None = None) -> File:
        """The newest live file uploaded under your `client_key`.

        Args:
            client_key: The key given to `upload`.
            app: Only files uploaded by this `source_app`.

        Raises:
            NotFoundError: No live file has that key.
        """
        params = {"client_key": require_text(client_key, "client_key"), "app": app}
        data = await self._transport.request("GET", "/files/resolve", params=params)
        return validate_response(File, data)

    async def rename(self, file_id: str, name: str) -> File:
        """Rename a file.

        Args:
            file_id: The file.
            name: Its new name.
        """
        return await self.update(file_id, original_name=name)

    async def move(self, file_id: str, folder_id: str | None) -> File:
        """Move a file into a folder of the same space, or to the space root.

        Args:
            file_id: The file.
            folder_id: The folder; `None` moves it to the space root.
        """
        return await self.update(file_id, folder_id=folder_id)

    async def update(
        self,
        file_id: str,
        *,
        original_name: str | NotGiven = NOT_GIVEN,
        folder_id: str | NotGiven | None = NOT_GIVEN,
    ) -> File:
        """Rename and/or move a file in one call.

        Args:
            file_id: The file.
            original_name: Its new name; unchanged when left out.
            folder_id: Its new folder, `None` for the space root; unchanged when left out
                ([`NOT_GIVEN`][fluidcloud_async.NOT_GIVEN]).

        Raises:
            ValueError: Neither was given.
        """
        body: dict[str, Any] = {}
        if not isinstance(original_name, NotGiven):
            body["original_name"] = require_text(original_name, "original_name")
        if not isinstance(folder_id, NotGiven):
            body["folder_id"] = optional_id(folder_id, "folder_id")
        if not body:
            raise ValueError("update needs original_name and/or folder_id")
        path = f"/files/{require_id(file_id, 'file_id')}"
        return validate_response(File, await self._transport.request("PATCH", path, json=body))

    async def delete(self, file_id: str) -> File | None:
        """Soft-delete a file to the trash (restorable). Idempotent.

        Args:
            file_id: The file.

        Returns:
            The trashed file, or `None` when the server answers 204.
        """
        data = await self._transport.request("DELETE", f"/files/{require_id(file_id, 'file_id')}")
        return None if data is None else validate_response(File, data)

    async def restore(self, file_id: str) -> File:
        """Bring a soft-deleted file back from the trash.

        Args:
            file_id: The file.
        """
        path = f"/files/{require_id(file_id, 'file_id')}/restore"
        data = await self._transport.request("POST", path, idempotent=True)
        return validate_response(File, data)

    async def download_url(self, file_id: str) -> str:
        """A short-lived presigned GET URL of the bytes.

        Args:
            file_id: The file; it must be scanned clean.

        Raises:
            ConflictError: The file is not scanned clean.
        """
        path = f"/files/{require_id(file_id, 'file_id')}/download"
        data = await self._transport.request("GET", path)
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            raise ProtocolError("the download answer has no 'url'", method="GET", url=path)
        return str(data["url"])

    async def preview(self, file_id: str) -> Preview:
        """An inline-renderable URL for an in-app viewer.

        Args:
            file_id: The file; it must be scanned clean.

        Raises:
            UnsupportedMediaTypeError: The file's type has no preview (415).
        """
        path = f"/files/{require_id(file_id, 'file_id')}/preview"
        return validate_response(Preview, await self._transport.request("GET", path))

    async def public_url(self, file_id: str) -> Link:
        """Mint a permanent public raw link.

        Not retried after a 5xx or a dropped connection: a duplicate would spend a link.

        Args:
            file_id: The file; it must be scanned clean.

        Returns:
            The link; its `url` is only available now.

        Raises:
            ConflictError: The file is not scanned clean.

        Examples:
            ```python
            link = await fc.files.public_url(f.id)
            print(link.url)
            ```
        """
        return await Shares(self._transport).create(file_id, permission="view")

    async def signed_url(
        self, file_id: str, *, expires_in_days: int = 7, permission: str = "view"
    ) -> Link:
        """Mint a raw link that expires.

        Args:
            file_id: The file; it must be scanned clean.
            expires_in_days: 1 to 365.
            permission: `"view"` (served inline) or `"download"` (as an attachment).

        Returns:
            The link; its `url` is only available now.

        Raises:
            ConflictError: The file is not scanned clean.
        """
        return await Shares(self._transport).create(
            file_id,
            permission=require_permission(permission),
            expires_in_days=require_days(expires_in_days),
        )

    async def wait_until_clean(
        self,
        file_id: str,
        *,
        timeout: float | None = 300.0,
        poll_interval: float = 0.25,
        max_poll_interval: float = 5.0,
    ) -> File:
        """Poll a file until its virus scan says clean, and return it.

        Args:
            file_id: The file.
            timeout: Seconds to wait; `None` waits forever.
            poll_interval: The first wait between two polls; it grows from there.
            max_poll_interval: The longest wait between two polls.

        Raises:
            InfectedFileError: The scan found malware.
            ScanTimeoutError: No verdict after `timeout` seconds.

        Examples:
            ```python
            g = await fc.files.upload(b"fresh", space.id, name="fresh.txt")
            g = await fc.files.wait_until_clean(g.id, timeout=30)
            assert g.is_clean
            ```
        """
        require_id(file_id, "file_id")
        limit = None if timeout is None else require_seconds(timeout, "timeout")
        delay = require_seconds(poll_interval, "poll_interval")
        ceiling = require_seconds(max_poll_interval, "max_poll_interval")
        deadline = None if limit is None else time.monotonic() + limit
        while True:
            file = await self.get(file_id)
            if file.scan_status == ScanStatus.CLEAN:
                return file
            if file.scan_status == ScanStatus.INFECTED:
                raise InfectedFileError(f"file {file_id} was scanned infected", file=file)
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ScanTimeoutError(
                        f"file {file_id} still {file.scan_status!r} after {timeout}s", file=file
                    )
                delay = min(delay, remaining)
            await anyio.sleep(delay)
            delay = min(delay * 2, ceiling)


class _EngineCalls:
    """The engine's ``ApiCalls``: ``fc.uploads`` and ``fc.files`` over one transport."""

    def __init__(self, files: Files) -> None:
        uploads = Uploads(files._transport)
        self.initiate = uploads.initiate
        self.complete = uploads.complete
        self.get = files.get
        self.download_url = files.download_url
        self._files = files

    def pages(self, space_id: str, folder_id: str | None) -> AsyncIterator[list[File]]:
        return self._files.list(space_id, folder_id).pages()
