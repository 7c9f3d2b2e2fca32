"""What the transfer engine is handed: the API calls it makes and where it sends bytes.

The engine never sees the client. Like s3transfer, which is given only the S3 calls it
uses, it gets an :class:`Engine`: an :class:`ApiCalls` (initiate, complete, get, the
download URL, the listing of ``skip_existing``), the :class:`StorageRoutes` of presigned
PUTs and GETs, and the storage retry/timeout policy. ``Files`` builds it from a transport
(the client view's, or the rate-limited one of a batch) and orchestrates what follows an
upload (wait for the scan, mint the link) itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from .._models import File, UploadTicket
from ._storage import AiohttpStorage, StoragePolicy, StorageTransport
from ._threaded import RESOURCE_KEY, ThreadedStorage, transport_mode

if TYPE_CHECKING:
    from .._transport import SessionHolder


class ApiCalls(Protocol):
    """The API calls of an upload or a download (the ``fc.uploads`` and ``fc.files``
    methods of the same names)."""

    async def initiate(
        self,
        *,
        original_name: str,
        size: int,
        space_id: str,
        content_type: str | None = None,
        folder_id: str | None = None,
    ) -> UploadTicket: ...

    async def complete(
        self,
        *,
        file_id: str,
        key: str,
        original_name: str,
        size: int,
        space_id: str,
        upload_id: str | None = None,
        parts: Sequence[Mapping[str, Any]] | None = None,
        mime: str | None = None,
        sha256: str | None = None,
        folder_id: str | None = None,
        client_key: str | None = None,
    ) -> File: ...

    async def get(self, file_id: str) -> File: ...

    async def download_url(self, file_id: str) -> str: ...

    def pages(self, space_id: str, folder_id: str | None) -> AsyncIterator[list[File]]:
        """The files at a destination, page by page (an async generator)."""


class StorageRoutes:
    """Which storage transport a presigned URL's PUTs and GETs go through.

    https goes through worker threads (``_threaded``), http through the client's aiohttp
    session (sendfile for PUTs); ``FLUIDCLOUD_STORAGE_TRANSPORT`` forces either. A session
    the caller passed keeps the aiohttp path: its own TLS and proxy settings live in it and
    cannot be carried over to another stack.
    """

    def __init__(self, sessions: SessionHolder) -> None:
        self._sessions = sessions

    @property
    def session(self) -> aiohttp.ClientSession:
        """The client's (credential-free) session; a closed client raises ``ClientClosed``."""
        return self._sessions.get()

    def check_open(self) -> None:
        """Raise ``ClientClosed`` if the client is closed (before an upload sends anything)."""
        self._sessions.get()

    def for_url(self, url: str) -> StorageTransport:
        """The transport of ``url`` (uploads and downloads alike)."""
        sessions = self._sessions
        mode = transport_mode()
        wanted = mode == "threads" or (mode == "auto" and url[:8].lower() == "https://")
        if wanted and sessions.owned:
            threaded = sessions.resource(
                RESOURCE_KEY,
                lambda: ThreadedStorage(sessions.ssl_context, sessions.proxies, sessions.limit),
            )
            if threaded.supports(url):
                return threaded
        return AiohttpStorage(self.session)


@dataclass(frozen=True)
class Engine:
    """Everything the engine may use: API calls, storage routes, the storage policy."""

    api: ApiCalls
    storage: StorageRoutes
    policy: StoragePolicy
