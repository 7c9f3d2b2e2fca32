"""``fc.files``: file records, links, and (via the transfer engine) uploads and downloads."""

from __future__ import annotations

import os
import time
from typing import Any

import anyio

from .._exceptions import ApiResponseError, InfectedFileError, ScanTimeoutError
from .._models import File, Link, Preview, ScanStatus
from .._pagination import AsyncPaginator
from .._transfer import _args
from .._transfer._bulk import FileProgressCallback, UploadMany
from .._transfer._download import download_file
from .._transfer._existing import Existing, HashCache, check_jobs
from .._transfer._items import expand
from .._transfer._journal import journal_location, upload_resumable
from .._transfer._progress import ProgressCallback
from .._transfer._ratelimit import RateLimit
from .._transfer._scheduler import SlotPool
from .._transfer._sources import describe
from .._transfer._upload import storage_policy, upload_file
from .._types import NOT_GIVEN, NotGiven
from .._validate_args import (
    optional_id,
    optional_positive_int,
    require_days,
    require_id,
    require_permission,
    require_seconds,
    require_text,
)
from .._validation import validate_response
from ._base import Resource


class Files(Resource):
    """Files: upload, list, fetch, organize, soft-delete, mint links
    (scopes ``files:read`` / ``files:write``; ``shares:write`` for links)."""

    async def upload(
        self,
        file: Any,
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
        """Upload ``file`` (initiate -> PUT(s) straight to storage -> complete).

        ``file`` is a path, bytes-like object, binary file object (seekable or not),
        aiofiles file, or async iterable of bytes (give ``size=`` to stream it without
        spooling). Large files go up as parallel parts, ``max_concurrency`` at a time;
        memory stays bounded by that, not by the file size.

        ``progress(bytes_sent, total)`` (sync or async) is called at most ~10 times a
        second; a retried part rolls its bytes back; the last call reports ``total``.
        ``checksum=True`` sends the SHA-256 (computed off the event loop, in parallel with
        the parts) and verifies the stored file against it; ``False`` saves that CPU pass
        (~0.7 CPU-seconds per GiB, which bounds a fast link at SHA-256 speed, ~1.5 GiB/s)
        but then only the size is checked.
        ``wait_until_clean`` polls until the virus scan is clean; ``public=True`` waits for
        clean too, then mints the permanent raw link into ``File.public_url``.

        Raises TypeError/ValueError on bad input before any request, :class:`UploadError`
        (``UploadExpiredError`` for expired URLs) when the bytes could not be stored, and
        :class:`ChecksumMismatchError` when the stored file differs from what was sent.
        """
        options = _args.upload_options(
            space_id=space_id,
            folder_id=folder_id,
            client_key=client_key,
            public=public,
            checksum=checksum,
            wait_until_clean=wait_until_clean,
            clean_timeout=clean_timeout,
            progress=progress,
        )
        slots = _args.positive_int(max_concurrency, "max_concurrency")
        spec = describe(file, name=name, content_type=content_type, size=size)
        if resume is not None:
            journal = journal_location(resume, spec)
            return await upload_resumable(
                self._client, spec, options, pool=SlotPool(slots), journal_path=journal
            )
        return await upload_file(self._client, spec, options, pool=SlotPool(slots))

    def upload_many(
        self,
        items: Any,
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
        """Upload many files through one shared scheduler; results stream as they finish.

        ``items``: a path, a directory (walked recursively), bytes, file objects, async
        iterables, ``(source, {options})`` pairs (options: name, content_type, size,
        client_key, folder_id, public, checksum, wait_until_clean), or an iterable of
        these. ``keys_from_paths`` sets each file's ``client_key`` to its POSIX path
        relative to the directory it was found in, joined to ``key_prefix``.

        Directories are walked when the batch starts, in a worker thread. No symlink in
        them is followed: each one, and every fifo, socket or device, is reported as a
        result with ``skipped`` set (its reason; not a failure). ``follow_symlinks=True``
        follows links whose real target stays inside the directory (others are skipped)
        and walks each real directory once (loops are skipped). A file replaced by a
        symlink after the walk is not followed either.

        ``skip_existing=True`` makes a re-run upload only what is missing or changed: each
        destination (space and folder) is listed once, and an item whose ``client_key``
        names a live file there with the same size and SHA-256 is reported as skipped
        (``SkipReason.UNCHANGED``, ``file`` = the stored record); a changed one is uploaded
        and supersedes it. Every item needs a client_key (ValueError otherwise, before any
        request). ``hash_cache`` (a path or :class:`HashCache`) remembers local digests by
        path and stat identity, so an unchanged tree is not read again.

        At most ``max_files`` files and ``max_concurrency`` parts (across all files, with
        their read buffers) are in flight. API calls keep to ``rate_limit`` (the
        documented per-key caps; ``None`` turns the limiter off). ``progress(sent, total)``
        reports the whole batch; ``file_progress(source, sent, total)`` each file (its
        ``source`` as in the results: the path, for files found in a directory).

        ::

            async with fc.files.upload_many("out/", space.id, keys_from_paths=True) as results:
                async for r in results:      # UploadResult: source, client_key, file, error
                    print(r.client_key, "ok" if r.ok else r.error)

            results = await fc.files.upload_many(paths, space.id)   # all, in input order

        One failure does not stop the others unless ``fail_fast=True`` (then the first
        error is raised and the rest are cancelled). Leaving the ``async with`` block early
        cancels the uploads still running. Bad items raise TypeError/ValueError here,
        before any request (duplicate keys of files found in directories: when the batch
        starts, still before any request).
        """
        base = _args.upload_options(
            space_id=space_id,
            folder_id=folder_id,
            public=public,
            checksum=checksum,
            wait_until_clean=wait_until_clean,
            clean_timeout=clean_timeout,
        )
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise TypeError(
                f"rate_limit must be a RateLimit or None, not {type(rate_limit).__name__}"
            )
        keys_from_paths = _args.flag(keys_from_paths, "keys_from_paths")
        skip_existing = _args.flag(skip_existing, "skip_existing")
        cache = _args.hash_cache(hash_cache)
        if cache is not None and not skip_existing:
            raise ValueError("hash_cache is used only with skip_existing=True")
        plan = expand(
            items,
            base,
            keys_from_paths=keys_from_paths,
            key_prefix=key_prefix,
            follow_symlinks=_args.flag(follow_symlinks, "follow_symlinks"),
        )
        if skip_existing and plan.has_trees and not keys_from_paths:
            raise ValueError(
                "skip_existing matches files by client_key: with directories among the "
                "items, pass keys_from_paths=True"
            )
        if skip_existing and not plan.has_trees:
            check_jobs(plan.jobs())  # walked entries are checked when the batch starts
        return UploadMany(
            self._client,
            plan,
            max_files=_args.positive_int(max_files, "max_files"),
            max_concurrency=_args.positive_int(max_concurrency, "max_concurrency"),
            fail_fast=_args.flag(fail_fast, "fail_fast"),
            progress=_args.callback(progress, "progress"),
            file_progress=_args.callback(file_progress, "file_progress"),
            rate_limit=rate_limit,
            existing=Existing(cache) if skip_existing else None,
        )

    async def download(
        self,
        file_id: str,
        dest: Any,
        *,
        progress: ProgressCallback | None = None,
        max_concurrency: int = 4,
        verify: bool = True,
        overwrite: bool = False,
    ) -> File:
        """Download a (clean) file's bytes to ``dest`` and return its record.

        ``dest`` is a path - written to a temporary file beside it, moved into place only
        when complete and verified - or a binary file object (sync or aiofiles) written
        sequentially. An existing path raises :class:`FileExistsError` before any request
        (and is not replaced if it appears during the download) unless ``overwrite=True``;
        a replaced file keeps its permission bits, a new one gets the umask's. Files of
        32 MiB and more are fetched as up to ``max_concurrency`` parallel ranged GETs.
        The size is always checked against the record; ``verify`` also checks the record's
        SHA-256 when it has one (:class:`DownloadError` on a mismatch). A storage answer
        longer than the record raises :class:`StorageProtocolError` before the excess is
        written. ``progress(received, total)`` as for upload.
        """
        file_id = require_id(file_id, "file_id")
        return await download_file(
            self._client,
            file_id,
            _args.destination(dest),
            progress=_args.callback(progress, "progress"),
            max_concurrency=_args.positive_int(max_concurrency, "max_concurrency"),
            verify=_args.flag(verify, "verify"),
            policy=storage_policy(self._client),
            overwrite=_args.flag(overwrite, "overwrite"),
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
        """Files at a space root or in a folder, ordered by name; ``trash=True`` lists the
        tenant-wide trash (``space_id`` then optional and ignored by the server)."""
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
        """One file's metadata; poll it for ``scan_status``."""
        data = await self._transport.request("GET", f"/files/{require_id(file_id, 'file_id')}")
        return validate_response(File, data)

    async def resolve(self, client_key: str, *, app: str | None = None) -> File:
        """The newest live file uploaded under your ``client_key`` (else NotFoundError)."""
        params = {"client_key": require_text(client_key, "client_key"), "app": app}
        data = await self._transport.request("GET", "/files/resolve", params=params)
        return validate_response(File, data)

    async def rename(self, file_id: str, name: str) -> File:
        """Rename a file."""
        return await self.update(file_id, original_name=name)

    async def move(self, file_id: str, folder_id: str | None) -> File:
        """Move a file into ``folder_id`` (same space); ``None`` moves it to the space root."""
        return await self.update(file_id, folder_id=folder_id)

    async def update(
        self,
        file_id: str,
        *,
        original_name: str | NotGiven = NOT_GIVEN,
        folder_id: str | NotGiven | None = NOT_GIVEN,
    ) -> File:
        """Rename and/or move in one call; an omitted field is left unchanged
        (``folder_id=None`` means the space root)."""
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

        Returns the trashed file, or ``None`` when the server answers 204.
        """
        data = await self._transport.request("DELETE", f"/files/{require_id(file_id, 'file_id')}")
        return None if data is None else validate_response(File, data)

    async def restore(self, file_id: str) -> File:
        """Bring a soft-deleted file back from the trash."""
        path = f"/files/{require_id(file_id, 'file_id')}/restore"
        data = await self._transport.request("POST", path, idempotent=True)
        return validate_response(File, data)

    async def download_url(self, file_id: str) -> str:
        """A short-lived presigned GET URL for the bytes (the file must be clean)."""
        path = f"/files/{require_id(file_id, 'file_id')}/download"
        data = await self._transport.request("GET", path)
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            raise ApiResponseError("the download answer has no 'url'", status=200)
        return str(data["url"])

    async def preview(self, file_id: str) -> Preview:
        """An inline-renderable URL for an in-app viewer (415 when the type has none)."""
        path = f"/files/{require_id(file_id, 'file_id')}/preview"
        return validate_response(Preview, await self._transport.request("GET", path))

    async def public_url(self, file_id: str) -> Link:
        """Mint a permanent public raw link (the file must be clean)."""
        return await self._client.shares.create(file_id, permission="view")

    async def signed_url(
        self, file_id: str, *, expires_in_days: int = 7, permission: str = "view"
    ) -> Link:
        """Mint a raw link that expires after 1..365 days."""
        return await self._client.shares.create(
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
        """Poll the file until its scan is ``clean`` and return it.

        Raises :class:`InfectedFileError` if the scan finds malware and
        :class:`ScanTimeoutError` after ``timeout`` seconds (``None`` waits forever).
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
