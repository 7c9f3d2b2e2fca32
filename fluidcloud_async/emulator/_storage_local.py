"""Built-in object store: files on disk, metadata in SQLite, our own presigned URLs.

A multipart object is never concatenated: completion records a manifest (the ordered
part files) and reads stream across them, so a multi-GiB object is not copied.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import IO

from ._clock import Clock
from ._db import Database
from ._signing import Signer
from ._storage import (
    BinaryReader,
    StorageError,
    check_part_list,
    content_disposition,
    validate_key,
)


def _move_into(source: Path, target: Path) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    size = source.stat().st_size
    shutil.move(source, target)
    return size


class UnsafeKey(ValueError):
    """A key that would escape the storage root."""


class _ManifestReader:
    """Reads ``[start, end)`` across an ordered list of (path, size) segments."""

    def __init__(self, segments: list[tuple[Path, int]], start: int, end: int) -> None:
        self._segments = segments
        self._pos = start
        self._end = end
        self._index = 0
        self._offset = 0  # absolute offset where segment _index begins
        self._fh: IO[bytes] | None = None
        while self._index < len(segments) and self._offset + segments[self._index][1] <= start:
            self._offset += segments[self._index][1]
            self._index += 1

    def read(self, n: int) -> bytes:
        while self._pos < self._end and self._index < len(self._segments):
            path, seg_size = self._segments[self._index]
            if self._fh is None:
                self._fh = open(path, "rb")  # noqa: SIM115 - closed when the segment ends
                self._fh.seek(self._pos - self._offset)
            want = min(n, self._end - self._pos, self._offset + seg_size - self._pos)
            data = self._fh.read(want)
            if data:
                self._pos += len(data)
                return data
            self._fh.close()
            self._fh = None
            self._offset += seg_size
            self._index += 1
        return b""

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class PartWriter:
    """Streams a PUT body to a temp file, hashing MD5 on the way."""

    def __init__(self, tmp_dir: Path) -> None:
        self.path = tmp_dir / f"put-{secrets.token_hex(8)}"
        self._fh: IO[bytes] = open(self.path, "wb")  # noqa: SIM115 - closed in finish/abort
        self._md5 = hashlib.md5()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._fh.write(chunk)
        self._md5.update(chunk)
        self.size += len(chunk)

    def finish(self) -> str:
        self._fh.close()
        return self._md5.hexdigest()

    def abort(self) -> None:
        self._fh.close()
        self.path.unlink(missing_ok=True)


class LocalStorage:
    """Objects under ``root``; the storage server writes, the API presigns and reads."""

    def __init__(
        self, root: Path, db: Database, signer: Signer, clock: Clock, bucket: str, url_ttl: int
    ) -> None:
        self.root = root.resolve()
        self.objects_dir = self.root / "objects"
        self.parts_dir = self.root / "parts"
        self.tmp_dir = self.root / "tmp"
        for d in (self.objects_dir, self.parts_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.db = db
        self.signer = signer
        self.clock = clock
        self.bucket = bucket
        self.url_ttl = url_ttl
        self.origin = ""

    # -- paths -------------------------------------------------------------------------
    def object_path(self, key: str) -> Path:
        problem = validate_key(key)
        if problem is not None:
            raise UnsafeKey(problem)
        path = (self.objects_dir / key).resolve()
        if not path.is_relative_to(self.objects_dir):
            raise UnsafeKey("key escapes the storage root")
        return path

    def _url_path(self, key: str) -> str:
        return f"/{self.bucket}/{key}"

    # -- presigning ----------------------------------------------------------------------
    async def presign_put(self, key: str, content_type: str | None) -> str:
        return self.signer.presign(
            self.origin, "PUT", self._url_path(key), ttl=self.url_ttl, content_type=content_type
        )

    async def start_multipart(self, key: str) -> str:
        upload_id = secrets.token_urlsafe(24)
        self.db.run(
            "INSERT INTO mp_uploads (upload_id, key, created_at) VALUES (?, ?, ?)",
            (upload_id, key, self.clock.now()),
        )
        return upload_id

    async def presign_parts(self, key: str, upload_id: str, count: int) -> list[str]:
        return [
            self.signer.presign(
                self.origin,
                "PUT",
                self._url_path(key),
                ttl=self.url_ttl,
                extra={"partNumber": str(n), "uploadId": upload_id},
            )
            for n in range(1, count + 1)
        ]

    async def presign_get(
        self, key: str, *, filename: str, disposition: str, content_type: str | None
    ) -> str:
        extra = {"response-content-disposition": content_disposition(disposition, filename)}
        if content_type:
            extra["response-content-type"] = content_type
        return self.signer.presign(
            self.origin, "GET", self._url_path(key), ttl=self.url_ttl, extra=extra
        )

    # -- writes (storage server) ---------------------------------------------------------
    def new_writer(self) -> PartWriter:
        return PartWriter(self.tmp_dir)

    def commit_object(self, key: str, writer: PartWriter, etag: str) -> None:
        path = self.object_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(writer.path, path)
        self.db.run(
            "INSERT OR REPLACE INTO objects (key, size, etag, parts, created_at)"
            " VALUES (?, ?, ?, NULL, ?)",
            (key, writer.size, etag, self.clock.now()),
        )

    def upload_key(self, upload_id: str) -> str | None:
        key: str | None = self.db.scalar(
            "SELECT key FROM mp_uploads WHERE upload_id = ?", (upload_id,)
        )
        return key

    def commit_part(self, upload_id: str, number: int, writer: PartWriter, etag: str) -> None:
        part_dir = self.parts_dir / hashlib.sha256(upload_id.encode()).hexdigest()[:32]
        part_dir.mkdir(exist_ok=True)
        # A retried part gets a fresh file: a completed manifest may still point at the old one.
        path = part_dir / f"{number:05d}-{secrets.token_hex(4)}"
        os.replace(writer.path, path)
        self.db.run(
            "INSERT OR REPLACE INTO mp_parts (upload_id, part_number, etag, size, path)"
            " VALUES (?, ?, ?, ?, ?)",
            (upload_id, number, etag, writer.size, str(path.relative_to(self.root))),
        )

    # -- completion ----------------------------------------------------------------------
    async def finish_single(self, key: str, size: int) -> None:
        actual = await self.stat(key)
        if actual is None:
            raise StorageError("no object was uploaded to this key")
        if actual != size:
            raise StorageError(f"uploaded object has {actual} bytes, declared size is {size}")

    async def finish_multipart(
        self, key: str, upload_id: str, parts: list[tuple[int, str]], part_size: int, size: int
    ) -> None:
        if self.upload_key(upload_id) != key:
            raise StorageError("unknown upload_id for this key")
        rows = self.db.all("SELECT * FROM mp_parts WHERE upload_id = ?", (upload_id,))
        check_part_list(
            parts, {r["part_number"]: (r["etag"], r["size"]) for r in rows}, part_size, size
        )
        by_number = {r["part_number"]: r for r in rows}
        segments = [[by_number[n]["path"], by_number[n]["size"]] for n, _ in parts]
        etag = f"mp-{upload_id[:16]}-{len(parts)}"
        self.db.run(
            "INSERT OR REPLACE INTO objects (key, size, etag, parts, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (key, size, etag, json.dumps(segments), self.clock.now()),
        )

    # -- reads ---------------------------------------------------------------------------
    async def stat(self, key: str) -> int | None:
        size: int | None = self.db.scalar("SELECT size FROM objects WHERE key = ?", (key,))
        return size

    def _segments(self, key: str) -> list[tuple[Path, int]]:
        row = self.db.one("SELECT size, parts FROM objects WHERE key = ?", (key,))
        if row is None:
            raise FileNotFoundError(key)
        if row["parts"] is None:
            return [(self.object_path(key), row["size"])]
        return [(self.root / p, int(s)) for p, s in json.loads(row["parts"])]

    async def open_reader(self, key: str, start: int = 0, end: int | None = None) -> BinaryReader:
        segments = self._segments(key)
        total = sum(s for _, s in segments)
        return _ManifestReader(segments, start, total if end is None else min(end, total))

    async def put_file(self, key: str, path: Path) -> None:
        size = await asyncio.to_thread(_move_into, path, self.object_path(key))
        self.db.run(
            "INSERT OR REPLACE INTO objects (key, size, etag, parts, created_at)"
            " VALUES (?, ?, ?, NULL, ?)",
            (key, size, "import", self.clock.now()),
        )

    async def aclose(self) -> None:
        return None
