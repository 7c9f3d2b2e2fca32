"""``AsyncFluidCloud``: configuration, lifecycle, and the resource namespaces."""

from __future__ import annotations

import ssl
from types import TracebackType
from typing import Any

import aiohttp

from ._redact import mask_key
from ._retry import OnRetry
from ._settings import (
    DEFAULT_CONNECTION_LIMIT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    ClientSettings,
)
from ._transport import SessionHolder, Transport
from ._types import API_PREFIX
from .resources import Files, Folders, QuotaResource, Shares, Spaces, Uploads


class AsyncFluidCloud:
    """Async client of the FluidCloud Partner API.

    Args:
        api_key: The partner key; defaults to ``$FLUIDCLOUD_API_KEY``.
        base_url: The API origin; defaults to ``$FLUIDCLOUD_BASE_URL``, then production.
            ``/api/v1`` is appended for you.
        timeout: Seconds. For an API call it bounds each attempt as a whole (connect, send,
            full answer); retries get a fresh ``timeout`` each. Storage transfers (part PUTs,
            downloads) are not bounded as a whole: there it is a *stall* timeout, the longest
            wait for the storage's answer or for the socket to take or give the next chunk
            (connecting has its own 30 s), so a large transfer that keeps moving never times
            out. For a deadline on a whole call wrap it in ``asyncio.timeout(...)`` /
            ``anyio.fail_after(...)``: cancellation stops every part and never completes.
        max_retries: Retries after the first attempt (see the retry table in the
            errors guide).
        session: An ``aiohttp.ClientSession`` to use; you keep ownership and close it, and
            its own proxy and TLS settings apply. By default the client creates one lazily
            and closes it in [`close`][fluidcloud_async.AsyncFluidCloud.close].
        connection_limit: Size of the connection pool the client creates.
        on_retry: Called (sync or async) with a
            [`RetryEvent`][fluidcloud_async.RetryEvent] before each retry sleep.
        allow_insecure_http: Permit a live key over plain ``http://`` to a non-loopback host,
            and any key over plain ``http://`` through a proxy (which could read it).
        trust_env: Honour ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``/``NO_PROXY`` (read once,
            here) for API, storage and download traffic, like requests and httpx.
        proxy: A proxy URL (``http://[user:pass@]host:port``) for all traffic, replacing the
            ``*_PROXY`` variables; ``NO_PROXY`` still applies while ``trust_env`` is true.
        ssl_context: The TLS settings of the client's session (a private CA, client certs).

    Raises:
        ConfigurationError: No API key, a malformed `base_url`, a live key over plain
            http, or an invalid setting.

    Use `async with AsyncFluidCloud() as fc:` or call `await fc.close()`. One client serves
    any number of concurrent tasks.

    Examples:
        ```python
        async with AsyncFluidCloud(timeout=60, max_retries=5) as client:
            print(await client.quota.usage())
        ```
    """

    spaces: Spaces
    """Spaces: the top-level containers."""
    folders: Folders
    """Folders inside a space."""
    files: Files
    """Files: uploads, downloads, links and the file records."""
    shares: Shares
    """Raw share links."""
    quota: QuotaResource
    """Usage against the plan's limits."""
    uploads: Uploads
    """The raw upload steps and server-side URL import."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        session: aiohttp.ClientSession | None = None,
        connection_limit: int = DEFAULT_CONNECTION_LIMIT,
        on_retry: OnRetry | None = None,
        allow_insecure_http: bool = False,
        trust_env: bool = True,
        proxy: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        settings = ClientSettings.resolve(
            api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            connection_limit=connection_limit,
            on_retry=on_retry,
            allow_insecure_http=allow_insecure_http,
            trust_env=trust_env,
            proxy=proxy,
            ssl_context=ssl_context,
            own_session=session is None,
        )
        sessions = SessionHolder(
            session,
            connection_limit=settings.connection_limit,
            proxies=settings.proxies,
            ssl_context=settings.ssl_context,
        )
        self._build(Transport(settings, sessions), owner=True)

    # One construction path: __init__ resolves the arguments into a checked ClientSettings
    # and a transport over a new SessionHolder, then calls _build. with_options derives a
    # transport whose settings are this client's with some replaced (dataclasses.replace
    # re-runs the same checks) over this client's holder, and calls the same _build: a view
    # must share the lazily created session and the per-client resources (rate limiters,
    # the threaded storage pool), which a second __init__ would create anew. _build sets
    # every attribute; the transport holds the one ClientSettings.
    def _build(self, transport: Transport, *, owner: bool) -> None:
        self._settings = transport.settings
        self._owner = owner  # only the owner closes the holder (a view's close does nothing)
        self._transport = transport
        self.spaces = Spaces(transport)
        self.folders = Folders(transport)
        self.files = Files(transport)
        self.shares = Shares(transport)
        self.quota = QuotaResource(transport)
        self.uploads = Uploads(transport)

    @property
    def base_url(self) -> str:
        """The API origin (without ``/api/v1``)."""
        return self._settings.origin

    @property
    def api_root(self) -> str:
        """The effective endpoint base, ``<origin>/api/v1``."""
        return self._settings.origin + API_PREFIX

    @property
    def timeout(self) -> float:
        """The per-request timeout of API calls, in seconds."""
        return self._settings.timeout

    @property
    def max_retries(self) -> int:
        """How many times a retryable failure is retried."""
        return self._settings.max_retries

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session (created on first use); it carries no credentials."""
        return self._transport.session

    def with_options(
        self,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        on_retry: OnRetry | None = None,
    ) -> AsyncFluidCloud:
        """A view of this client with some options changed, sharing its session.

        Closing the view does nothing; close the original when done.

        Args:
            timeout: A new per-request timeout in seconds.
            max_retries: A new number of retries (0 fails fast).
            on_retry: A new retry hook.

        Returns:
            The view; options left `None` keep this client's values.

        Examples:
            ```python
            impatient = fc.with_options(timeout=5, max_retries=0)
            await impatient.files.get(f.id)
            ```
        """
        changes: dict[str, Any] = {}
        if timeout is not None:
            changes["timeout"] = timeout
        if max_retries is not None:
            changes["max_retries"] = max_retries
        if on_retry is not None:
            changes["on_retry"] = on_retry
        view = object.__new__(type(self))  # not __init__: see _build
        view._build(self._transport.with_options(**changes), owner=False)
        return view

    async def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owner:
            await self._transport.sessions.close()

    async def __aenter__(self) -> AsyncFluidCloud:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return (
            f"AsyncFluidCloud(base_url={self.base_url!r}, "
            f"api_key={mask_key(self._settings.api_key)!r})"
        )


FluidCloud = AsyncFluidCloud
"""The sync SDK's name for the client: an alias of `AsyncFluidCloud`, so that porting code
changes only the import (`from fluidcloud_async import FluidCloud`)."""
