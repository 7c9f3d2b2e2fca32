"""``AsyncFluidCloud``: configuration, lifecycle, and the resource namespaces."""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
from yarl import URL

from ._exceptions import ConfigurationError
from ._proxy import ProxySettings
from ._redact import mask_key, redact_url
from ._retry import OnRetry
from ._transport import API_PREFIX, SessionHolder, Transport, TransportOptions
from ._validate_args import (
    optional_callback,
    require_api_key,
    require_count,
    require_flag,
    require_origin,
    require_seconds,
)
from .resources import Files, Folders, QuotaResource, Shares, Spaces, Uploads

DEFAULT_BASE_URL = "https://api-cloud.fluidvip.com"
DEFAULT_TIMEOUT = 300.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_CONNECTION_LIMIT = 100


_T = TypeVar("_T")


def _setting(check: Callable[[Any, str], _T], value: Any, name: str) -> _T:
    """``check(value, name)``, its TypeError or ValueError raised as ConfigurationError."""
    try:
        return check(value, name)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(str(exc)) from None


@dataclass(frozen=True)
class ClientSettings:
    """A client's settings, resolved and checked once: a frozen object that cannot hold an
    invalid value (``__post_init__`` checks every field, so ``dataclasses.replace`` -
    ``with_options`` - checks what it changes)."""

    api_key: str = field(repr=False)
    origin: str
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    connection_limit: int = DEFAULT_CONNECTION_LIMIT
    on_retry: OnRetry | None = None
    proxies: ProxySettings = field(default_factory=ProxySettings, repr=False)
    ssl_context: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        fix = object.__setattr__  # normalized values on a frozen instance
        _setting(require_api_key, self.api_key, "api_key")
        fix(self, "origin", _setting(require_origin, self.origin, "base_url"))
        fix(self, "timeout", _setting(require_seconds, self.timeout, "timeout"))
        _setting(require_count, self.max_retries, "max_retries")
        # Checked here, not at the first request: aiohttp takes a negative limit as "always
        # full" (every request then waits for a free slot until it times out) and fails
        # late with a bare TypeError on a non-number. 0 means no limit.
        _setting(require_count, self.connection_limit, "connection_limit")
        _setting(optional_callback, self.on_retry, "on_retry")
        if self.ssl_context is not None and not isinstance(self.ssl_context, ssl.SSLContext):
            raise ConfigurationError("ssl_context must be an ssl.SSLContext")

    @classmethod
    def resolve(
        cls,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        connection_limit: int = DEFAULT_CONNECTION_LIMIT,
        on_retry: OnRetry | None = None,
        allow_insecure_http: bool = False,
        trust_env: bool = True,
        proxy: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        own_session: bool = True,
    ) -> ClientSettings:
        """The settings of a client built with these arguments (see `AsyncFluidCloud`):
        key and URL from the environment when not given, the proxy choice, and the
        policies on sending the key over plain http. ``own_session`` is false when the
        caller passes its own session (whose proxy and TLS settings then apply).

        Raises:
            ConfigurationError: As `AsyncFluidCloud`.
        """
        key = api_key if api_key is not None else os.environ.get("FLUIDCLOUD_API_KEY")
        if not key:
            raise ConfigurationError(
                "no API key: pass api_key=... or set FLUIDCLOUD_API_KEY "
                "(create one in the dashboard under Settings → Developer → API keys)"
            )
        key = _setting(require_api_key, key, "api_key")
        allow_insecure_http = _setting(require_flag, allow_insecure_http, "allow_insecure_http")
        trust_env = _setting(require_flag, trust_env, "trust_env")
        raw_url = base_url or os.environ.get("FLUIDCLOUD_BASE_URL") or DEFAULT_BASE_URL
        origin = _setting(require_origin, raw_url, "base_url")
        if key.startswith("fck_live_") and not allow_insecure_http and _is_insecure(origin):
            raise ConfigurationError(
                f"refusing to send a live API key over plain http to {origin}; "
                "use https or pass allow_insecure_http=True"
            )
        if not own_session and (proxy is not None or ssl_context is not None):
            raise ConfigurationError(
                "proxy= and ssl_context= configure the session the client creates; "
                "set them on the session you pass instead"
            )
        proxies = ProxySettings.resolve(
            proxy=proxy, trust_env=trust_env, allow_clear_key=allow_insecure_http
        )
        through = proxies.clear_key_risk(URL(origin)) if own_session else None
        if through is not None:
            raise ConfigurationError(
                f"refusing to send the API key over plain http to {origin} through the proxy "
                f"{redact_url(through.url)}, which could read it; use https, exempt the host "
                "with NO_PROXY, pass trust_env=False, or allow_insecure_http=True"
            )
        return cls(
            api_key=key,
            origin=origin,
            timeout=timeout,
            max_retries=max_retries,
            connection_limit=connection_limit,
            on_retry=on_retry,
            proxies=proxies,
            ssl_context=ssl_context,
        )

    def transport_options(self) -> TransportOptions:
        """The transport's view of these settings."""
        return TransportOptions(
            api_key=self.api_key,
            origin=self.origin,
            timeout=self.timeout,
            max_retries=self.max_retries,
            on_retry=self.on_retry,
        )

    def __repr__(self) -> str:
        return (
            f"ClientSettings(origin={self.origin!r}, api_key={mask_key(self.api_key)!r}, "
            f"timeout={self.timeout!r}, max_retries={self.max_retries!r})"
        )


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
        transport = Transport(settings.transport_options(), sessions)
        self._build(settings, transport, owner=True)

    # One construction path: __init__ resolves the arguments into a checked ClientSettings
    # and a transport over a new SessionHolder, then calls _build. with_options derives its
    # settings from this client's (dataclasses.replace re-runs the same checks) and calls
    # the same _build with a transport over this client's holder: a view must share the
    # lazily created session and the per-client resources (rate limiters, the threaded
    # storage pool), which a second __init__ would create anew. _build sets every attribute.
    def _build(self, settings: ClientSettings, transport: Transport, *, owner: bool) -> None:
        self._settings = settings
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
        settings = replace(self._settings, **changes)  # checked by ClientSettings
        transport = self._transport.with_options(
            timeout=settings.timeout, max_retries=settings.max_retries, on_retry=settings.on_retry
        )
        view = object.__new__(type(self))  # not __init__: see _build
        view._build(settings, transport, owner=False)
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


def _is_insecure(origin: str) -> bool:
    url = URL(origin)
    if url.scheme == "https":
        return False
    host = url.host or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True
