"""The object-store interface the API uses, shared by the local and S3 backends."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Protocol

MAX_PARTS = 10_000


async def close_after(reader: BinaryReader, in_flight: asyncio.Future[Any] | None) -> None:
    """Close ``reader`` once the worker-thread call ``in_flight`` (if any) has returned.

    Closing through ``asyncio.to_thread`` can be lost: a cancelled call that has not started
    yet never runs, and the open file then leaks. A call that has started keeps running and
    may open a manifest's next segment after an early close. So the close runs inline (a
    file close does not block) and, when a call is still running, only after it returns,
    even if this coroutine is cancelled while it waits.
    """
    if in_flight is None or in_flight.done():
        reader.close()
        return
    in_flight.add_done_callback(lambda _: reader.close())
    await asyncio.wait([in_flight])


class StorageError(Exception):
    """A completion the store refuses (missing object, bad part list...): a 400."""


class BinaryReader(Protocol):
    """Blocking reader over a byte range of an object (use from a worker thread)."""

    def read(self, n: int) -> bytes: ...

    def close(self) -> None: ...


class ObjectStore(Protocol):
    """What the API needs from storage: presigning, completion checks and reads."""

    origin: str

    async def presign_put(self, key: str, content_type: str | None) -> str: ...

    async def start_multipart(self, key: str) -> str: ...

    async def presign_parts(self, key: str, upload_id: str, count: int) -> list[str]: ...

    async def finish_single(self, key: str, size: int) -> None: ...

    async def finish_multipart(
        self, key: str, upload_id: str, parts: list[tuple[int, str]], part_size: int, size: int
    ) -> None: ...

    async def presign_get(
        self, key: str, *, filename: str, disposition: str, content_type: str | None
    ) -> str: ...

    async def stat(self, key: str) -> int | None: ...

    async def open_reader(self, key: str, start: int = 0, end: int | None = None) -> BinaryReader:
        """Reader over bytes ``[start, end)``; its ``read`` blocks (call it in a thread)."""
        ...

    async def put_file(self, key: str, path: Path) -> None:
        """Store a finished local file under ``key`` (may move it)."""
        ...

    async def aclose(self) -> None: ...


def check_part_list(
    parts: list[tuple[int, str]],
    stored: dict[int, tuple[str, int]],
    part_size: int,
    size: int,
) -> None:
    """S3's completion rules, stricter on sizes: parts exactly 1..N ascending, each ETag
    equal to the stored part's, every non-final part exactly ``part_size`` bytes, and
    the total equal to the declared ``size``. ``stored`` maps number -> (etag, size)."""
    expected = max(1, -(-size // part_size))
    if expected > MAX_PARTS:
        raise StorageError("too many parts")
    numbers = [n for n, _ in parts]
    if numbers != list(range(1, expected + 1)):
        shown = numbers if len(numbers) <= 20 else [*numbers[:20], "..."]
        raise StorageError(f"parts must be exactly 1..{expected} in ascending order, got {shown}")
    total = 0
    for number, etag in parts:
        if number not in stored:
            raise StorageError(f"InvalidPart: part {number} was not uploaded")
        stored_etag, stored_size = stored[number]
        if normalize_etag(etag) != normalize_etag(stored_etag):
            raise StorageError(f"InvalidPart: the ETag of part {number} does not match")
        if number < expected and stored_size != part_size:
            raise StorageError(
                f"part {number} has {stored_size} bytes; every non-final part must have"
                f" exactly part_size={part_size}"
            )
        total += stored_size
    if total != size:
        raise StorageError(f"parts add up to {total} bytes, the declared size is {size}")


def normalize_etag(etag: str) -> str:
    return etag.strip().strip('"').lower()


def validate_key(key: str) -> str | None:
    """Why ``key`` is unsafe as a storage path, or None when it is fine."""
    if not key or len(key) > 1024:
        return "key must be 1..1024 characters"
    if "\x00" in key or "\\" in key:
        return "key contains a forbidden character"
    if key.startswith("/"):
        return "key must be relative"
    if any(seg in {"", ".", ".."} for seg in key.split("/")):
        return "key contains an empty, '.' or '..' segment"
    return None


def content_disposition(disposition: str, filename: str) -> str:
    """``inline``/``attachment`` with an ASCII fallback and RFC 5987 UTF-8 name."""
    from urllib.parse import quote

    ascii_name = (
        "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "file"
    )
    return f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
