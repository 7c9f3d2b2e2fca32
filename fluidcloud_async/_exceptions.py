"""The exception hierarchy.

Every error the SDK raises derives from :class:`FluidCloudError`. HTTP errors from the API
are :class:`ApiError` subclasses keyed by status, exactly as the synchronous SDK promises;
transport failures are :class:`ApiConnectionError`; upload and download failures carry the
ids needed to reason about what was left behind.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import File
    from ._types import SkipReason

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "ApiResponseError",
    "ApiTimeoutError",
    "AuthError",
    "BadRequestError",
    "ChecksumMismatchError",
    "ConfigurationError",
    "ConflictError",
    "DownloadError",
    "FluidCloudError",
    "InfectedFileError",
    "NotFoundError",
    "NotRegularFileError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PermissionError",
    "ProtocolError",
    "QuotaExceededError",
    "RateLimitError",
    "ScanTimeoutError",
    "ServerError",
    "SourceChangedError",
    "StorageProtocolError",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
    "UploadError",
    "UploadExpiredError",
]


class FluidCloudError(Exception):
    """Base class of every exception raised by ``fluidcloud_async``."""


class ConfigurationError(FluidCloudError, ValueError):
    """The client was constructed with missing or unsafe settings (no API key, bad URL...)."""


class ApiError(FluidCloudError):
    """The API answered with an error status (or a body that breaks the documented contract).

    Attributes:
        status: The HTTP status code.
        detail: The parsed ``detail`` of the JSON error body: a string, an object, or ``None``.
        code: A machine-readable error code when the body gives one
            (``insufficient_scope``, ``feature_not_in_plan``, ``quota_exceeded`` ...).
        method: The request method.
        url: The request URL (API URLs carry no secrets; storage URLs are redacted).
        headers: The response headers.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        detail: Any = None,
        code: str | None = None,
        method: str = "",
        url: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail = detail
        self.code = code
        self.method = method
        self.url = url
        self.headers: Mapping[str, str] = dict(headers or {})

    def __str__(self) -> str:
        where = f" ({self.method} {self.url})" if self.method else ""
        return f"{self.status}: {self.message}{where}"


class BadRequestError(ApiError):
    """400: the request was malformed or referenced something inconsistent."""


class AuthError(ApiError):
    """401: the API key is missing, malformed or revoked."""


class QuotaExceededError(ApiError):
    """402: the tenant's storage or share-link quota would be exceeded."""


class PermissionError(ApiError, builtins.PermissionError):
    """403: the key lacks a scope (``insufficient_scope``) or the plan lacks API access
    (``feature_not_in_plan``). Also exported as `PermissionDeniedError`, a name that does
    not shadow the builtin `PermissionError` (which this one also subclasses)."""


PermissionDeniedError = PermissionError
"""The same class as [`PermissionError`][fluidcloud_async.PermissionError] (403), under a
name that does not shadow the builtin."""


class NotFoundError(ApiError):
    """404: the resource does not exist, or belongs to another tenant."""


class ConflictError(ApiError):
    """409: the file is not ready (not scanned clean yet, or infected)."""


class PayloadTooLargeError(ApiError):
    """413: the file is too large for the requested operation."""


class UnsupportedMediaTypeError(ApiError):
    """415: the file type has no preview."""


class UnprocessableEntityError(ApiError):
    """422: the request body failed validation."""


class RateLimitError(ApiError):
    """429: rate limited. ``retry_after`` is the server's wait in seconds, when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx: the server failed."""


class ProtocolError(FluidCloudError):
    """A server answered outside the documented protocol: a record with missing fields or
    wrong types, a page that is not a page, an upload ticket with impossible parts, a
    storage PUT without an ETag. Not an HTTP error, so it has no ``status``; not retried
    (an [`ApiResponseError`][fluidcloud_async.ApiResponseError] is retried when its real
    status is one the retry table retries).

    Attributes:
        method: The request method, when one request is to blame.
        url: The request URL (redacted for storage URLs).
    """

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url

    def __str__(self) -> str:
        where = " ".join(part for part in (self.method, self.url) if part)
        return f"{self.message} ({where})" if where else self.message


class ApiResponseError(ApiError, ProtocolError):
    """An API answer that breaks the contract at the HTTP level: a body that is not JSON
    or too large, a redirect to another origin. It keeps the answer's real ``status``."""


class ApiConnectionError(FluidCloudError):
    """The request could not be completed: connection refused or dropped, TLS failure..."""

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.url = url


class ApiTimeoutError(ApiConnectionError):
    """The request timed out."""


class UploadError(FluidCloudError):
    """An upload failed after its ticket was issued; ``/complete`` was not called.

    Attributes:
        file_id: The reserved file id from ``/uploads/initiate`` (``None`` if not reached).
        upload_id: The multipart upload id, if any.
        failed_parts: Part numbers that failed for good (empty for single PUTs).
        cause: The underlying exception, also chained as ``__cause__``.
    """

    def __init__(
        self,
        message: str,
        *,
        file_id: str | None = None,
        upload_id: str | None = None,
        failed_parts: Sequence[int] = (),
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.file_id = file_id
        self.upload_id = upload_id
        self.failed_parts: tuple[int, ...] = tuple(failed_parts)
        self.cause = cause


class UploadExpiredError(UploadError):
    """A presigned upload URL expired. The API has no re-sign endpoint: start a new upload."""


class ChecksumMismatchError(UploadError):
    """The stored file's size or SHA-256 differs from the bytes that were sent or received."""


class SourceChangedError(UploadError):
    """The source file changed while it was being uploaded (its size, mtime, ctime,
    inode or device differ from when it was opened, or its path now names another file).

    The stored bytes may mix two versions of the file, so ``/complete`` was not called;
    ``file_id``/``upload_id`` name the upload left uncompleted (None if not reached).
    Upload the file again once it is no longer being written.
    """


class NotRegularFileError(FluidCloudError, ValueError):
    """An upload source path is not a regular file (a FIFO, socket, device or directory),
    or became one before it was opened. Found before any request (nothing was reserved),
    so it is a ValueError like the other bad-input errors; ``path`` names it."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class DownloadError(FluidCloudError):
    """A download failed or its bytes did not match the file record."""


class StorageProtocolError(DownloadError, ProtocolError):
    """The storage answered a download GET outside the protocol: more bytes than the file
    record (or the requested range) holds, a ``Content-Encoding`` although ``identity`` was
    asked for, or a different byte range than requested.

    Never retried (a Range computed from such an answer would be wrong). Nothing beyond the
    expected size is written; a path destination keeps nothing. ``file_id`` names the file.
    """

    def __init__(self, message: str, *, file_id: str | None = None) -> None:
        ProtocolError.__init__(self, message)
        self.file_id = file_id


class InfectedFileError(ConflictError):
    """The virus scan marked the file ``infected``; it can never be shared or served.

    A [`ConflictError`][fluidcloud_async.ConflictError] (status 409, code
    ``file_infected``): where the sync SDK's
    ``upload(..., public=True)`` fails with the API's 409 on an unclean file, this SDK waits
    for the verdict first, so ``except ConflictError`` written for the sync SDK still
    catches it.
    """

    def __init__(self, message: str, *, file: File) -> None:
        super().__init__(message, status=409, code="file_infected")
        self.file = file

    def __str__(self) -> str:
        return self.message


class ScanTimeoutError(ConflictError):
    """Waiting for the scan verdict took longer than the caller allowed.

    A [`ConflictError`][fluidcloud_async.ConflictError] (status 409, code ``scan_pending``)
    for the same reason as [`InfectedFileError`][fluidcloud_async.InfectedFileError]: the
    sync SDK reports a file that is not clean yet as 409.
    """

    def __init__(self, message: str, *, file: File) -> None:
        super().__init__(message, status=409, code="scan_pending")
        self.file = file

    def __str__(self) -> str:
        return self.message


# -- not in __all__: signals raised and handled inside the package, and specialisations
# that reach callers as their public base (ClientClosed and ConnectFailed are
# ApiConnectionErrors, ExpiredUrlError a PermissionError, MissingSourceError a
# FileNotFoundError and a ValueError) --


class MissingSourceError(FileNotFoundError, ValueError):
    """The path to upload does not exist (both a FileNotFoundError and a ValueError)."""


class SourceChanged(ValueError):
    """Internal: the opened source is not the file it was (raised as SourceChangedError)."""


class ConnectFailed(ApiConnectionError):
    """Internal: the connection could not be opened; the request never left the client."""


class ClientClosed(ApiConnectionError):
    """Internal: the client was closed; nothing was sent, and retrying cannot help."""


class ExpiredUrlError(PermissionError):
    """The presigned URL has expired (S3: 403 AccessDenied "Request has expired")."""


class EntrySkipped(Exception):
    """Raised when opening a walked file finds a symlink in its place (it is skipped)."""

    def __init__(self, reason: SkipReason, detail: str | None = None) -> None:
        super().__init__(reason.value if detail is None else f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class EntryReplacedError(OSError):
    """A file found by the directory walk was replaced by another before it was opened."""


class PartsFailed(Exception):
    """Some parts failed for good; the others were cancelled."""

    def __init__(self, failures: dict[int, BaseException]) -> None:
        first = failures[min(failures)]
        super().__init__(str(first))
        self.failures = failures
        self.first = first


class RangesIgnored(Exception):
    """The storage answered a ranged GET with the whole object (the download falls back to
    one plain GET)."""


class SourceFailed(Exception):
    """The source failed under a worker thread's PUT (recorded as the body's error and
    raised unretried)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class TransferStopped(Exception):
    """A worker thread's transfer was aborted between chunks (cancellation or client
    close); the caller sees the cancellation or ``ClientClosed``."""
