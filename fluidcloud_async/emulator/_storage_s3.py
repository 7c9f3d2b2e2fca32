"""S3 backend: real presigned URLs from boto3 (optional dependency, extra ``s3``).

boto3 is blocking, so every call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ._config import S3Storage
from ._storage import BinaryReader, StorageError, check_part_list, content_disposition

# S3 error codes that mean "the client's completion request is wrong", i.e. a 400.
_CLIENT_FAULTS = frozenset(
    {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "NoSuchUpload", "NoSuchKey", "404"}
)


class _EmptyReader:
    def read(self, n: int) -> bytes:
        return b""

    def close(self) -> None:
        return None


class _BodyReader:
    def __init__(self, body: Any) -> None:
        self._body = body

    def read(self, n: int) -> bytes:
        data: bytes = self._body.read(n)
        return data

    def close(self) -> None:
        self._body.close()


class S3Store:
    """ObjectStore over an S3-compatible endpoint."""

    def __init__(self, config: S3Storage, url_ttl: int) -> None:
        try:
            import boto3  # type: ignore[import-untyped,unused-ignore]
            from botocore.config import Config  # type: ignore[import-untyped,unused-ignore]
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError("S3 mode needs boto3: pip install 'fluidcloud-async[s3]'") from exc
        self.bucket = config.bucket
        self.url_ttl = url_ttl
        self.origin = config.endpoint_url or f"https://s3.{config.region}.amazonaws.com"
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=config.endpoint_url,
            region_name=config.region,
            aws_access_key_id=config.access_key,
            aws_secret_access_key=config.secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    @staticmethod
    def _code(exc: Exception) -> str:
        response = getattr(exc, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code", ""))
        return ""

    def _presign(self, op: str, params: dict[str, Any]) -> str:
        url: str = self._client.generate_presigned_url(
            op, Params={"Bucket": self.bucket, **params}, ExpiresIn=self.url_ttl
        )
        return url

    async def presign_put(self, key: str, content_type: str | None) -> str:
        params: dict[str, Any] = {"Key": key}
        if content_type is not None:
            params["ContentType"] = content_type
        return await asyncio.to_thread(self._presign, "put_object", params)

    async def start_multipart(self, key: str) -> str:
        out = await asyncio.to_thread(
            self._client.create_multipart_upload, Bucket=self.bucket, Key=key
        )
        upload_id: str = out["UploadId"]
        return upload_id

    async def presign_parts(self, key: str, upload_id: str, count: int) -> list[str]:
        def sign_all() -> list[str]:
            return [
                self._presign("upload_part", {"Key": key, "UploadId": upload_id, "PartNumber": n})
                for n in range(1, count + 1)
            ]

        return await asyncio.to_thread(sign_all)

    async def finish_single(self, key: str, size: int) -> None:
        actual = await self.stat(key)
        if actual is None:
            raise StorageError("no object was uploaded to this key")
        if actual != size:
            raise StorageError(f"uploaded object has {actual} bytes, declared size is {size}")

    def _list_parts(self, key: str, upload_id: str) -> dict[int, tuple[str, int]]:
        stored: dict[int, tuple[str, int]] = {}
        marker = 0
        while True:
            page = self._client.list_parts(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
            )
            for part in page.get("Parts", []):
                stored[int(part["PartNumber"])] = (str(part["ETag"]), int(part["Size"]))
            if not page.get("IsTruncated"):
                return stored
            marker = int(page["NextPartNumberMarker"])

    async def finish_multipart(
        self, key: str, upload_id: str, parts: list[tuple[int, str]], part_size: int, size: int
    ) -> None:
        try:
            stored = await asyncio.to_thread(self._list_parts, key, upload_id)
            # Same rules as the local store, so both backends refuse the same part lists.
            check_part_list(parts, stored, part_size, size)
            await asyncio.to_thread(
                self._client.complete_multipart_upload,
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": n, "ETag": stored[n][0]} for n, _ in parts]
                },
            )
        except StorageError:
            raise
        except Exception as exc:
            code = self._code(exc)
            if code in _CLIENT_FAULTS:
                raise StorageError(f"S3 refused the completion: {code}") from None
            raise

    async def presign_get(
        self, key: str, *, filename: str, disposition: str, content_type: str | None
    ) -> str:
        params: dict[str, Any] = {
            "Key": key,
            "ResponseContentDisposition": content_disposition(disposition, filename),
        }
        if content_type:
            params["ResponseContentType"] = content_type
        return await asyncio.to_thread(self._presign, "get_object", params)

    async def stat(self, key: str) -> int | None:
        try:
            head = await asyncio.to_thread(self._client.head_object, Bucket=self.bucket, Key=key)
        except Exception as exc:
            if self._code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        size: int = head["ContentLength"]
        return size

    async def open_reader(self, key: str, start: int = 0, end: int | None = None) -> BinaryReader:
        if end is not None and end <= start:
            return _EmptyReader()
        byte_range = f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"
        out = await asyncio.to_thread(
            self._client.get_object, Bucket=self.bucket, Key=key, Range=byte_range
        )
        return _BodyReader(out["Body"])

    async def put_file(self, key: str, path: Path) -> None:
        await asyncio.to_thread(self._client.upload_file, str(path), self.bucket, key)

    async def aclose(self) -> None:
        close = getattr(self._client, "close", None)
        if close is not None:
            await asyncio.to_thread(close)
