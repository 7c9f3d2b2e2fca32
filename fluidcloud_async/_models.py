"""Pydantic models of every object the API returns.

Parsing is lenient where the API may grow (unknown fields are ignored, enumerations are
plain strings so new values parse) and strict where a wrong type would be a bug. Ids are
opaque strings; timestamps are timezone-aware ``datetime`` objects (naive ones are taken as
UTC).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ._redact import redact_link

__all__ = [
    "File",
    "Folder",
    "Link",
    "PartUrl",
    "Preview",
    "Quota",
    "ScanStatus",
    "Share",
    "Space",
    "UploadTicket",
]

UNLIMITED = -1


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


Timestamp = Annotated[datetime, AfterValidator(_as_utc)]


class ScanStatus:
    """Known values of ``File.scan_status`` (the server may add more)."""

    PENDING = "pending"
    CLEAN = "clean"
    INFECTED = "infected"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=False, populate_by_name=True)

    #: Fields holding a URL that is a credential (a raw-link token, a presigned query):
    #: ``repr``/``str`` show them redacted; attribute access and ``model_dump`` do not.
    _secret_urls: ClassVar[frozenset[str]] = frozenset()

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            if name in self._secret_urls and isinstance(value, str):
                yield name, redact_link(value)
            else:
                yield name, value


class Space(_Model):
    """A top-level container of folders and files."""

    id: str
    name: str
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class Folder(_Model):
    """A folder inside a space; ``parent_id`` is ``None`` at the space root."""

    id: str
    name: str
    space_id: str | None = None
    parent_id: str | None = None
    deleted_at: Timestamp | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class File(_Model):
    """A stored file's metadata record (the API's ``FileOut``).

    ``public_url`` is set by the SDK only when ``files.upload(..., public=True)`` minted a
    permanent raw link.
    """

    id: str
    original_name: str
    """The file's name (what `rename` changes)."""
    space_id: str | None = None
    folder_id: str | None = None
    """`None` at the space root."""
    tenant_id: str | None = None
    source_app: str | None = None
    """Which app created the file (`"api"` for uploads through the API)."""
    client_key: str | None = None
    """Your own key, as given to `upload`."""
    name: str | None = None
    mime: str | None = None
    """The MIME type."""
    size: int | None = None
    """In bytes."""
    sha256: str | None = None
    """The hex SHA-256 of the bytes."""
    scan_status: str | None = None
    """`"pending"`, `"clean"` or `"infected"` (see [`ScanStatus`][fluidcloud_async.ScanStatus])."""
    status: str | None = None
    """`"draft"` (being scanned), `"ready"` (clean) or `"blocked"` (infected)."""
    created_by: str | None = None
    """A prefix of the key that created the file, never the key."""
    deleted_at: Timestamp | None = None
    """When it was moved to the trash; `None` for a live file."""
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    public_url: str | None = None
    """The permanent raw link minted by `upload(..., public=True)`; else `None`."""

    _secret_urls: ClassVar[frozenset[str]] = frozenset({"public_url"})

    @property
    def is_clean(self) -> bool:
        """Whether the file was scanned clean and may be shared or served."""
        return self.scan_status == ScanStatus.CLEAN

    @property
    def is_infected(self) -> bool:
        """Whether the scan found malware (the file can never be shared or served)."""
        return self.scan_status == ScanStatus.INFECTED


class Share(_Model):
    """A raw share link as listed by ``shares.list`` (the token itself is never listed)."""

    id: str
    file_id: str | None = None
    permission: str = "view"
    expires_at: Timestamp | None = None
    max_downloads: int | None = None
    download_count: int = 0
    revoked: bool = False
    has_password: bool = False
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    url: str | None = Field(default=None, repr=False)


class Link(_Model):
    """A freshly minted raw link, returned by ``files.public_url`` / ``files.signed_url``.

    ``url`` is the only time the link string is available: store it.
    """

    id: str
    """The share's id, for `shares.revoke`."""
    url: str = Field(repr=False)
    """The raw link: a credential, shown only now (and masked in `repr`)."""
    file_id: str | None = None
    permission: str = "view"
    """`"view"` (served inline) or `"download"` (as an attachment)."""
    expires_at: Timestamp | None = None
    """`None` for a permanent link."""
    max_downloads: int | None = None
    """`None` for no limit."""
    created_at: Timestamp | None = None


class Quota(_Model):
    """The tenant's usage and limits; a limit of ``-1`` means unlimited."""

    bytes_used: int
    bytes_limit: int
    links_used: int
    links_limit: int

    @property
    def bytes_unlimited(self) -> bool:
        """Whether storage is unlimited."""
        return self.bytes_limit == UNLIMITED

    @property
    def links_unlimited(self) -> bool:
        """Whether the share-link count is unlimited."""
        return self.links_limit == UNLIMITED

    @property
    def bytes_remaining(self) -> int | None:
        """Bytes left before the storage cap, or ``None`` when unlimited."""
        return None if self.bytes_unlimited else max(0, self.bytes_limit - self.bytes_used)

    @property
    def links_remaining(self) -> int | None:
        """Share links left before the cap, or ``None`` when unlimited."""
        return None if self.links_unlimited else max(0, self.links_limit - self.links_used)


class Preview(_Model):
    """An inline-renderable preview URL (``kind``: image, video, audio, pdf, text, ...)."""

    url: str = Field(repr=False)
    kind: str
    mime: str | None = None
    converted: bool = False


class PartUrl(_Model):
    """One presigned part URL of a multipart upload ticket."""

    part_number: int
    url: str = Field(repr=False)


class UploadTicket(_Model):
    """The answer of ``uploads.initiate``: where and how to PUT the bytes.

    Presigned URLs are write credentials; they are kept out of ``repr``.
    """

    file_id: str
    """The reserved file id, for `uploads.complete`."""
    key: str
    """The storage key, for `uploads.complete`."""
    mode: str
    """`"single"` (one PUT to `upload_url`) or `"multipart"` (a PUT per part URL)."""
    content_type: str | None = None
    """The `Content-Type` the single PUT URL was signed for (send exactly this)."""
    upload_url: str | None = Field(default=None, repr=False)
    """The presigned PUT URL of a single upload."""
    upload_id: str | None = None
    """The multipart upload's id, for `uploads.complete`."""
    part_size: int | None = None
    """Bytes per part (the last part may be shorter)."""
    part_urls: list[PartUrl] | None = Field(default=None, repr=False)
    """One presigned PUT URL per part, in order."""

    @property
    def is_multipart(self) -> bool:
        """Whether the ticket asks for a multipart upload."""
        return self.mode == "multipart"
