"""``AsyncFluidCloud``: configuration, lifecycle, and the resource namespaces."""

from __future__ import annotations

import ipaddress
import math
import os
import ssl
from types import TracebackType
from typing import Any

import aiohttp
from yarl import URL

from ._exceptions import ConfigurationError
from ._proxy import ProxySettings
from ._redact import mask_key, redact_url
from ._retry import OnRetry, Sleep
from ._transport import API_PREFIX, SessionHolder, Transport, TransportOptions, default_sleep
from .resources import Files, Folders, QuotaResource, Shares, Spaces, Uploads

DEFAULT_BASE_URL = "https://api-cloud.fluidvip.com"
DEFAULT_TIMEOUT = 300.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_CONNECTION_LIMIT = 100


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
        _sleep: Sleep = default_sleep,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("FLUIDCLOUD_API_KEY")
        if not key:
            raise ConfigurationError(
                "no API key: pass api_key=... or set FLUIDCLOUD_API_KEY "
                "(create one in the dashboard under Settings → Developer → API keys)"
            )
        if not isinstance(key, str) or any(c.isspace() for c in key) or not key.isprintable():
            raise ConfigurationError("the API key contains whitespace or control characters")
        origin = _origin(base_url or os.environ.get("FLUIDCLOUD_BASE_URL") or DEFAULT_BASE_URL)
        if key.startswith("fck_live_") and not allow_insecure_http and _is_insecure(origin):
            raise ConfigurationError(
                f"refusing to send a live API key over plain http to {origin}; "
                "use https or pass allow_insecure_http=True"
            )
        if session is not None and (proxy is not None or ssl_context is not None):
            raise ConfigurationError(
                "proxy= and ssl_context= configure the session the client creates; "
                "set them on the session you pass instead"
            )
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise ConfigurationError("ssl_context must be an ssl.SSLContext")
        proxies = ProxySettings.resolve(
            proxy=proxy, trust_env=bool(trust_env), allow_clear_key=allow_insecure_http
        )
        through = None if session is not None else proxies.clear_key_risk(URL(origin))
        if through is not None:
            raise ConfigurationError(
                f"refusing to send the API key over plain http to {origin} through the proxy "
                f"{redact_url(through.url)}, which could read it; use https, exempt the host "
                "with NO_PROXY, pass trust_env=False, or allow_insecure_http=True"
            )
        _check_positive("timeout", timeout)
        _check_retries(max_retries)
        # Checked here, not at the first request: aiohttp takes a negative limit as "always
        # full" (every request then waits for a free slot until it times out) and fails
        # late with a bare TypeError on a non-number.
        if (
            isinstance(connection_limit, bool)
            or not isinstance(connection_limit, int)
            or connection_limit < 0
        ):
            raise ConfigurationError(
                f"connection_limit must be an int >= 0 (0: no limit), got {connection_limit!r}"
            )
        options = TransportOptions(
            api_key=key,
            origin=origin,
            timeout=float(timeout),
            max_retries=max_retries,
            on_retry=on_retry,
            sleep=_sleep,
        )
        self._owner = True
        holder = SessionHolder(
            session, connection_limit=connection_limit, proxies=proxies, ssl_context=ssl_context
        )
        self._init(Transport(options, holder))

    def _init(self, transport: Transport) -> None:
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
        return self._transport.options.origin

    @property
    def api_root(self) -> str:
        """The effective endpoint base, ``<origin>/api/v1``."""
        return self._transport.options.origin + API_PREFIX

    @property
    def timeout(self) -> float:
        """The per-request timeout of API calls, in seconds."""
        return self._transport.options.timeout

    @property
    def max_retries(self) -> int:
        """How many times a retryable failure is retried."""
        return self._transport.options.max_retries

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
            _check_positive("timeout", timeout)
            changes["timeout"] = float(timeout)
        if max_retries is not None:
            _check_retries(max_retries)
            changes["max_retries"] = max_retries
        if on_retry is not None:
            changes["on_retry"] = on_retry
        clone = object.__new__(AsyncFluidCloud)
        clone._owner = False
        clone._init(self._transport.with_options(**changes))
        return clone

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
            f"api_key={mask_key(self._transport.options.api_key)!r})"
        )


FluidCloud = AsyncFluidCloud
"""The sync SDK's name for the client: an alias of `AsyncFluidCloud`, so that porting code
changes only the import (`from fluidcloud_async import FluidCloud`)."""


def _origin(base_url: str) -> str:
    url = URL(base_url.strip().rstrip("/"))
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(f"base_url must be an http(s) origin, got {base_url!r}")
    if url.user or url.password or url.query_string or url.fragment:
        raise ConfigurationError("base_url must not carry credentials, a query or a fragment")
    path = url.path.rstrip("/")
    if path.endswith(API_PREFIX):
        path = path[: -len(API_PREFIX)]
    return str(url.with_path(path or "/")).rstrip("/")


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


def _check_positive(name: str, value: float) -> None:
    # NaN compares false with everything and infinity overflows aiohttp's timer
    # (math.ceil(inf) raises OverflowError on every request): only finite values are usable.
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(f"{name} must be a finite number > 0, got {value!r}")


def _check_retries(value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"max_retries must be an int >= 0, got {value!r}")
