"""One file: initiate -> PUT the part(s) -> complete -> verify (``Files`` then waits for the
scan and mints the link).

``/complete`` is called only when every part has an ETag; a part that fails for good, an
expired URL or a cancellation leaves the reserved upload uncompleted (the API has no abort
endpoint, see the README's choice 9), and the error says which upload it was.

**Plan.** Which byte range of the source goes to which presigned URL (:func:`plan`); a
ticket with impossible parts is a :class:`ProtocolError`.

**Slots.** A :class:`SlotPool` is shared by every file of an upload or a batch: the slot
(and the read buffers that come with it) is taken *before* a part is read and given back
when its PUT has finished, so the memory in use is bounded by the slot count, never by
file sizes or file counts. Parts of one file run in an anyio task group: the first part
that fails for good cancels its siblings at once, and a cancelled caller cancels them all.

**Small files.** For a file of a few dozen KiB the streaming machinery costs more than the
bytes: a ``digest_of`` pass in a worker thread, then ``loop.sendfile`` (transport flush,
reading paused, a separate headers write) or pooled preadv buffers. Below
:data:`SMALL_BODY` the body is read once into memory (one ``pread`` + hash in one worker
call for descriptors; nothing to read and an inline hash for in-memory sources) and sent
as a memory body whose bytes every retry re-sends. It is loaded inside the part's slot, so
memory stays bounded by ``slots x SMALL_BODY``.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import anyio.lowlevel

from .._exceptions import (
    ChecksumMismatchError,
    ExpiredUrlError,
    PartsFailed,
    ProtocolError,
    SourceChanged,
    SourceChangedError,
    UploadError,
    UploadExpiredError,
)
from .._models import File, UploadTicket
from .._redact import redact_url
from ._engine import Engine
from ._io import (
    BUFFERS_PER_BODY,
    CHUNK,
    INLINE_HASH,
    BufferPool,
    FileBody,
    MemoryBody,
    Progress,
    ProgressCallback,
    call_in_thread,
    digest_of,
    pread_into,
)
from ._sources import Reader, Source, materialize
from ._storage import put_with_retries

# --- upload ------------------------------------------------------------------


@dataclass(frozen=True)
class UploadOptions:
    """Everything ``files.upload`` takes besides the source (validated by the caller)."""

    space_id: str
    folder_id: str | None = None
    client_key: str | None = None
    public: bool = False
    checksum: bool = True
    wait_until_clean: bool = False
    clean_timeout: float | None = 300.0
    progress: ProgressCallback | None = None
    use_sendfile: bool = True


@dataclass
class Resume:
    """Hooks for resumable uploads (a journal persists what they report).

    ``ticket`` reuses an earlier ``/initiate`` answer instead of asking for a new one, and
    ``etags`` lists the parts already stored under it: only the others are PUT.
    ``on_ticket`` and ``on_part`` (sync or async) are told about a new ticket and each
    part stored, so a caller can record them before the next step; ``on_complete`` is
    told once ``/complete`` succeeded (the upload then needs no resuming, whatever the
    verification or scan that follows says).
    """

    ticket: UploadTicket | None = None
    etags: dict[int, str] = field(default_factory=dict)
    source: tuple[int, int] | None = None
    """(size, mtime_ns) the opened file must still have (what the journal recorded)."""
    on_ticket: Callable[[UploadTicket], Awaitable[None] | None] | None = None
    on_part: Callable[[int, str], Awaitable[None] | None] | None = None
    on_complete: Callable[[File], Awaitable[None] | None] | None = None


async def _call(hook: Callable[..., Any] | None, *args: Any) -> None:
    if hook is not None:
        result = hook(*args)
        if inspect.isawaitable(result):
            await result


async def upload_file(
    engine: Engine,
    spec: Source,
    options: UploadOptions,
    *,
    pool: SlotPool,
    parent_progress: Progress | None = None,
    resume: Resume | None = None,
) -> File:
    """Upload one validated source through ``pool`` and return the completed, verified
    file (``wait_until_clean`` and ``public`` are the caller's to honour)."""
    resume = resume or Resume()
    async with spec.open(checksum=options.checksum) as reader:
        if parent_progress is not None and spec.size is None:
            parent_progress.total += reader.size  # learned only now (spooled, aiofile)
        if resume.etags and reader.sequential:
            raise ValueError("a stream cannot resume: its earlier parts cannot be skipped")
        _check_expected(reader, resume)
        ticket = resume.ticket
        if ticket is None:
            ticket = await engine.api.initiate(
                original_name=spec.name,
                size=reader.size,
                space_id=options.space_id,
                content_type=spec.content_type,
                folder_id=options.folder_id,
            )
            await _call(resume.on_ticket, ticket)
        progress = Progress(options.progress, reader.size, parent=parent_progress)
        try:
            async with _positional_if_single(reader, ticket) as source:
                etags, sha = await _send(engine, source, ticket, options, pool, progress, resume)
        except (UploadError, ValueError, TypeError, OSError) as exc:
            await _check_source(reader, ticket, exc)  # a change explains a short read
            if isinstance(exc, UploadError):
                raise
            raise UploadError(  # the source failed while spooling
                f"upload {ticket.file_id} failed reading the source: {exc}",
                file_id=ticket.file_id,
                upload_id=ticket.upload_id,
                cause=exc,
            ) from exc
        await progress.finish()
        # Every part is stored (and hashed, from the same descriptor): if the file is
        # still what was opened, the stored bytes and the digest are one version of it.
        # Last step before /complete, still on the open descriptor.
        await _check_source(reader, ticket)
    # A cancel that arrived while the last part finished is honoured before /complete.
    await anyio.lowlevel.checkpoint()
    parts = None
    if ticket.is_multipart:
        parts = [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]
    file = await engine.api.complete(
        file_id=ticket.file_id,
        key=ticket.key,
        original_name=spec.name,
        size=reader.size,
        space_id=options.space_id,
        upload_id=ticket.upload_id if ticket.is_multipart else None,
        parts=parts,
        mime=ticket.content_type or spec.content_type,
        sha256=sha,
        folder_id=options.folder_id,
        client_key=options.client_key,
    )
    await _call(resume.on_complete, file)
    _verify(file, reader.size, sha, ticket)
    return file


@asynccontextmanager
async def _positional_if_single(reader: Reader, ticket: UploadTicket) -> AsyncIterator[Reader]:
    # A single PUT of a stream is spooled so a failed attempt can be re-sent; multipart
    # streams keep each in-flight part in memory instead (bounded by the slots).
    if ticket.is_multipart:
        yield reader
    else:
        async with materialize(reader) as positional:
            yield positional


async def _send(
    engine: Engine,
    reader: Reader,
    ticket: UploadTicket,
    options: UploadOptions,
    pool: SlotPool,
    progress: Progress,
    resume: Resume,
) -> tuple[dict[int, str], str | None]:
    """PUT every part not yet stored (and hash concurrently); returns (ETags by part
    number, sha256)."""
    parts = plan(ticket, reader.size)
    done = {n: e for n, e in resume.etags.items() if ticket.is_multipart and e}
    if done:
        await progress.add(sum(p.length for p in parts if p.number in done))
        parts = [p for p in parts if p.number not in done]
    policy = engine.policy
    engine.storage.check_open()
    content_type = None if ticket.is_multipart else ticket.content_type
    digest: list[str] = []
    # A small single PUT is loaded (and hashed) whole inside its slot: see load_small.
    small = not ticket.is_multipart and not reader.sequential and reader.size <= SMALL_BODY

    async def send(part: Part, prepared: Any) -> str:
        if small:
            prepared, sha = await load_small(reader, hash_it=options.checksum)
            if sha is not None:
                digest.append(sha)

        def make_body() -> Any:
            if prepared is not None:
                return MemoryBody(prepared, progress, policy.stall_timeout)
            return FileBody(
                reader,
                part.offset,
                part.length,
                pool=pool.buffers,
                progress=progress,
                stall_timeout=policy.stall_timeout,
                use_sendfile=options.use_sendfile,
            )

        label = f"part {part.number}" if ticket.is_multipart else "object"
        etag = await put_with_retries(
            engine.storage.for_url(part.url),
            part.url,
            make_body,
            length=part.length,
            content_type=content_type,
            policy=policy,
            label=label,
        )
        if ticket.is_multipart and not etag:
            raise ProtocolError(
                f"storage answered part {part.number} without an ETag",
                method="PUT",
                url=redact_url(part.url),
            )
        await _call(resume.on_part, part.number, etag or "")
        return etag or ""

    async def prepare(part: Part) -> memoryview:
        buf = memoryview(bytearray(part.length))
        await reader.read_next(buf)
        return buf

    hash_errors: list[Exception] = []
    failed: PartsFailed | None = None
    etags: dict[int, str] = {}

    async def hash_all() -> None:
        try:
            digest.append(await digest_of(reader))
        except Exception as exc:  # e.g. the file shrank: the upload must not complete
            hash_errors.append(exc)
            tg.cancel_scope.cancel()

    # Children record their errors instead of raising them, so what propagates is a
    # plain exception (anyio wraps anything raised inside a task group in a group).
    async with anyio.create_task_group() as tg:
        if options.checksum and not reader.sequential and not small:
            tg.start_soon(hash_all)
        try:
            etags = await run_parts(
                parts, send, pool, prepare=prepare if reader.sequential else None
            )
        except PartsFailed as exc:
            failed = exc
            tg.cancel_scope.cancel()
    if failed is not None:
        raise _upload_error(ticket, failed) from failed.first
    if hash_errors:
        cause = hash_errors[0]
        raise UploadError(
            f"upload {ticket.file_id} failed: {cause}", file_id=ticket.file_id, cause=cause
        ) from cause
    sha: str | None = None
    if options.checksum:
        sha = digest[0] if digest else reader.digest()
    return {**done, **etags}, sha


def _check_expected(reader: Reader, resume: Resume) -> None:
    """A resumed file must be the one whose parts were stored (checked on the opened
    descriptor: the path may have changed since the journal was read)."""
    got = reader.identity
    if resume.source is None or got is None or (got.size, got.mtime_ns) == resume.source:
        return
    ticket = resume.ticket
    raise SourceChangedError(
        f"the source changed before the upload could resume (size {resume.source[0]} -> "
        f"{got.size}, mtime_ns {resume.source[1]} -> {got.mtime_ns}); /uploads/complete "
        "was not called",
        file_id=ticket.file_id if ticket else None,
        upload_id=ticket.upload_id if ticket else None,
    )


async def _check_source(
    reader: Reader, ticket: UploadTicket, failure: BaseException | None = None
) -> None:
    """Raise :class:`SourceChangedError` if the opened file changed since it was opened."""
    try:
        await reader.check_unchanged()
    except SourceChanged as exc:
        raise SourceChangedError(
            f"upload {ticket.file_id}: {exc}; the stored parts may mix two versions of the "
            "file, so /uploads/complete was not called",
            file_id=ticket.file_id,
            upload_id=ticket.upload_id,
            cause=failure or exc,
        ) from failure or exc


def _upload_error(ticket: UploadTicket, failed: PartsFailed) -> UploadError:
    cause = failed.first
    numbers = sorted(n for n in failed.failures if n > 0)
    where = f"part(s) {', '.join(map(str, numbers))}" if numbers else "the PUT"
    common: dict[str, Any] = {
        "file_id": ticket.file_id,
        "upload_id": ticket.upload_id,
        "failed_parts": numbers,
        "cause": cause,
    }
    if isinstance(cause, ExpiredUrlError):
        return UploadExpiredError(
            f"upload {ticket.file_id}: the presigned URL of {where} expired; the API cannot "
            "re-sign URLs, so start a new upload (nothing was completed)",
            **common,
        )
    return UploadError(
        f"upload {ticket.file_id}: {where} failed ({cause}); /uploads/complete was not called",
        **common,
    )


def _verify(file: File, size: int, sha: str | None, ticket: UploadTicket) -> None:
    problems = []
    if file.size is not None and file.size != size:
        problems.append(f"size {file.size} != {size} sent")
    if sha is not None and file.sha256 and file.sha256.lower() != sha:
        problems.append(f"sha256 {file.sha256} != {sha} sent")
    if problems:
        raise ChecksumMismatchError(
            f"file {file.id} does not match the uploaded bytes: {'; '.join(problems)}",
            file_id=file.id,
            upload_id=ticket.upload_id,
        )


# --- plan --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Part:
    """One PUT: bytes ``[offset, offset + length)`` of the source to ``url``.

    ``number`` is the S3 part number (1-based); a single-PUT upload has one part numbered 0.
    """

    number: int
    offset: int
    length: int
    url: str

    def __repr__(self) -> str:  # the URL is a write credential
        return f"Part(number={self.number}, offset={self.offset}, length={self.length})"


def part_count(size: int, part_size: int) -> int:
    """Parts of exactly ``part_size`` bytes (the last one smaller); an empty file has one."""
    return max(1, -(-size // part_size))


def plan(ticket: UploadTicket, size: int) -> list[Part]:
    """The parts to PUT for ``ticket``; raises :class:`ProtocolError` on a ticket that
    contradicts itself (missing URLs, wrong part count or numbering)."""
    if not ticket.is_multipart:
        if not ticket.upload_url:
            raise _bad("a single-mode upload ticket without upload_url")
        return [Part(0, 0, size, ticket.upload_url)]
    if not ticket.upload_id or not ticket.part_size or ticket.part_size <= 0:
        raise _bad("a multipart upload ticket without upload_id or part_size")
    urls = sorted(ticket.part_urls or [], key=lambda p: p.part_number)
    expected = part_count(size, ticket.part_size)
    if len(urls) != expected:
        raise _bad(
            f"the ticket has {len(urls)} part URLs but {size} bytes at part_size "
            f"{ticket.part_size} need {expected}"
        )
    parts: list[Part] = []
    for index, entry in enumerate(urls, start=1):
        if entry.part_number != index:
            raise _bad(f"the ticket's part numbers are not 1..{expected}")
        offset = (index - 1) * ticket.part_size
        parts.append(Part(index, offset, min(ticket.part_size, size - offset), entry.url))
    return parts


def _bad(message: str) -> ProtocolError:
    return ProtocolError(message, method="POST", url="/uploads/initiate")


# --- slots ---------------------------------------------------------------------

T = TypeVar("T")


class SlotPool:
    """``slots`` parts in flight at most, across every file that shares the pool."""

    def __init__(self, slots: int, *, chunk_size: int = CHUNK) -> None:
        if slots < 1:
            raise ValueError("a slot pool needs at least one slot")
        self.slots = slots
        self._semaphore = anyio.Semaphore(slots)
        self.buffers = BufferPool(chunk_size, keep=slots * BUFFERS_PER_BODY)

    async def acquire(self) -> None:
        await self._semaphore.acquire()

    def release(self) -> None:
        self._semaphore.release()


async def run_parts(
    parts: Sequence[Part],
    send: Callable[[Part, Any], Awaitable[T]],
    pool: SlotPool,
    *,
    prepare: Callable[[Part], Awaitable[Any]] | None = None,
) -> dict[int, T]:
    """``send(part, prepared)`` for every part, at most ``pool.slots`` at once (shared).

    ``prepare`` (sequential sources) runs in part order in this task once the part's slot
    is held. Returns results by part number; raises :class:`PartsFailed` when any part
    failed (after cancelling the rest).
    """
    results: dict[int, T] = {}
    failures: dict[int, BaseException] = {}

    async def one(part: Part, prepared: Any) -> None:
        try:
            results[part.number] = await send(part, prepared)
        except Exception as exc:
            failures[part.number] = exc
            tg.cancel_scope.cancel()
        finally:
            pool.release()

    async with anyio.create_task_group() as tg:
        for part in parts:
            await pool.acquire()
            try:
                prepared = await prepare(part) if prepare is not None else None
            except Exception as exc:
                pool.release()
                failures[part.number] = exc
                tg.cancel_scope.cancel()
                break
            except BaseException:
                pool.release()
                raise
            tg.start_soon(one, part, prepared)
    if failures:
        raise PartsFailed(failures)
    return results


# --- small files ---------------------------------------------------------------

#: Largest single-PUT body loaded whole into memory. Equal to the inline-hash limit: an
#: in-memory source this small is hashed on the loop (~0.15 ms at 256 KiB, OpenSSL
#: ~1.6 GiB/s), cheaper than a thread hop and well below the 1 MiB read chunk, so one
#: read covers it. The copy sendfile avoids costs ~0.1 ms here; the per-file fixed costs
#: it replaces (a hashing thread hop, the sendfile handshake) cost more. The in-flight
#: memory (slots x 256 KiB) stays below the pooled path's 3 x 1 MiB buffers per slot.
SMALL_BODY = INLINE_HASH


def _shrank(n: int, size: int) -> ValueError:
    return ValueError(f"the file shrank while uploading ({n} of {size} bytes)")


def _read_fd(fd: int, base: int, size: int, hash_it: bool) -> tuple[bytearray, str | None]:
    buf = bytearray(size)
    n = pread_into(fd, memoryview(buf), base)
    if n < size:
        raise _shrank(n, size)
    return buf, hashlib.sha256(buf).hexdigest() if hash_it else None


async def load_small(reader: Reader, *, hash_it: bool) -> tuple[memoryview, str | None]:
    """The whole content of a positional ``reader`` (<= :data:`SMALL_BODY` bytes) and its
    SHA-256 hex digest (None unless ``hash_it``); raises ValueError when it is short."""
    size = reader.size
    known = reader.sha256
    if reader.view is not None:
        view = reader.view[:size]
        sha = known or (hashlib.sha256(view).hexdigest() if hash_it else None)
        return view, sha
    if reader.fd is not None:
        # A cancellation waits for the (short) call, so the descriptor outlives it.
        buf, sha = await call_in_thread(
            _read_fd, reader.fd, reader.base, size, hash_it and not known
        )
        return memoryview(buf), known or sha
    out = memoryview(bytearray(size))
    n = await reader.readinto(0, out) if size else 0
    if n < size:
        raise _shrank(n, size)
    return out, known or (hashlib.sha256(out).hexdigest() if hash_it else None)
