"""fluidcloud_async: the async-first Python SDK for the FluidCloud Partner API.

>>> async with AsyncFluidCloud() as fc:          # key from $FLUIDCLOUD_API_KEY
...     space = await fc.spaces.create("demo")
...     file = await fc.files.upload("report.pdf", space.id, wait_until_clean=True)
"""

from ._client import AsyncFluidCloud, FluidCloud
from ._exceptions import (
    ApiConnectionError,
    ApiError,
    ApiResponseError,
    ApiTimeoutError,
    AuthError,
    BadRequestError,
    ChecksumMismatchError,
    ConfigurationError,
    ConflictError,
    DownloadError,
    FluidCloudError,
    InfectedFileError,
    NotFoundError,
    NotRegularFileError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PermissionError,
    ProtocolError,
    QuotaExceededError,
    RateLimitError,
    ScanTimeoutError,
    ServerError,
    SourceChangedError,
    StorageProtocolError,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
    UploadError,
    UploadExpiredError,
)
from ._models import (
    File,
    Folder,
    Link,
    PartUrl,
    Preview,
    Quota,
    ScanStatus,
    Share,
    Space,
    UploadTicket,
)
from ._pagination import AsyncPaginator
from ._ratelimit import RateLimit
from ._retry import MAX_RETRY_AFTER, RetryEvent
from ._transfer._bulk import Results as UploadResults
from ._transfer._bulk import UploadMany, UploadResult
from ._transfer._existing import HashCache
from ._transfer._journal import UploadJournal
from ._types import NOT_GIVEN, DownloadTarget, SkipReason, UploadItem, UploadItems, UploadSource
from ._version import __version__

__all__ = [
    "MAX_RETRY_AFTER",
    "NOT_GIVEN",
    "ApiConnectionError",
    "ApiError",
    "ApiResponseError",
    "ApiTimeoutError",
    "AsyncFluidCloud",
    "AsyncPaginator",
    "AuthError",
    "BadRequestError",
    "ChecksumMismatchError",
    "ConfigurationError",
    "ConflictError",
    "DownloadError",
    "DownloadTarget",
    "File",
    "FluidCloud",
    "FluidCloudError",
    "Folder",
    "HashCache",
    "InfectedFileError",
    "Link",
    "NotFoundError",
    "NotRegularFileError",
    "PartUrl",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PermissionError",
    "Preview",
    "ProtocolError",
    "Quota",
    "QuotaExceededError",
    "RateLimit",
    "RateLimitError",
    "RetryEvent",
    "ScanStatus",
    "ScanTimeoutError",
    "ServerError",
    "Share",
    "SkipReason",
    "SourceChangedError",
    "Space",
    "StorageProtocolError",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
    "UploadError",
    "UploadExpiredError",
    "UploadItem",
    "UploadItems",
    "UploadJournal",
    "UploadMany",
    "UploadResult",
    "UploadResults",
    "UploadSource",
    "UploadTicket",
    "__version__",
]
