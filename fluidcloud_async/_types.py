"""Small shared types."""

from __future__ import annotations

import enum
import os
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import IO, TYPE_CHECKING, Any, Final, Literal, Union

if TYPE_CHECKING:
    from aiofiles.base import AsyncBase
    from typing_extensions import Buffer


API_PREFIX = "/api/v1"
"""The path every API endpoint lives under (``base_url`` may name it or not)."""


class NotGiven:
    """Marks an argument the caller left out (distinct from an explicit ``None``)."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()
"""The default of an argument you may leave out where `None` means something else: in
[`files.update`][fluidcloud_async.resources.Files.update], `folder_id=None` moves the file to
the space root, while leaving it out (`NOT_GIVEN`) keeps the folder. It is falsy."""

Permission = Literal["view", "download"]

UploadSource = Union[
    str,
    "os.PathLike[str]",
    "os.PathLike[bytes]",
    "Buffer",
    "IO[bytes]",
    "AsyncBase[bytes]",
    "AsyncIterable[bytes | bytearray | memoryview]",
]
"""What `files.upload` accepts: a path (`str` or path-like) of a regular file; a bytes-like
object (`bytes`, `bytearray`, a C-contiguous `memoryview`, `array.array`, `mmap`...); a
binary file object (`open(path, "rb")`, `io.BytesIO`, a pipe...); an aiofiles file opened
in binary mode; or an async iterable of bytes-like chunks. Sources whose size is unknown
(unseekable files, streams without `size=`) are spooled first."""

UploadItem = Union[UploadSource, "tuple[UploadSource, Mapping[str, Any]]"]
"""One item of `files.upload_many`: a source (a directory path is walked), or a
`(source, {options})` pair with per-item `name`, `content_type`, `size`, `client_key`,
`folder_id`, `public`, `checksum`, `wait_until_clean`."""

UploadItems = Union[UploadItem, "Iterable[UploadItem]"]
"""What `files.upload_many` accepts: one item or an iterable of them."""

DownloadTarget = Union[str, "os.PathLike[str]", "IO[bytes]", "AsyncBase[bytes]"]
"""Where `files.download` writes: a path (written beside, then moved into place) or a
binary file object, sync or aiofiles, written sequentially."""


class SkipReason(str, enum.Enum):
    """Why ``upload_many`` did not upload an item (not a failure): an entry of a directory
    it does not follow, or (``skip_existing``) a file already stored unchanged."""

    SYMLINK = "symlink (not followed)"
    OUTSIDE_ROOT = "symlink target outside the tree"
    LOOP = "symlink loop"
    ALREADY_WALKED = "directory already walked"
    BROKEN_SYMLINK = "broken symlink"
    NOT_REGULAR = "not a regular file"
    UNCHANGED = "unchanged"
    """``skip_existing``: its client_key names a live file of the same size and SHA-256."""
