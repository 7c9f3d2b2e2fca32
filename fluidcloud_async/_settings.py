"""``ClientSettings``: a client's settings, resolved from arguments and the environment and
checked once, in one frozen object that the transport, the engine and Dask read."""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from yarl import URL

from ._exceptions import ConfigurationError
from ._proxy import ProxySettings
from ._redact import mask_key, redact_url
from ._retry import OnRetry, RetryPolicy
from ._validate_args import (
    optional_callback,
    require_api_key,
    require_count,
    require_flag,
    require_origin,
    require_seconds,
)

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

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of these settings, for API calls and the storage alike."""
        return RetryPolicy(self.max_retries, self.on_retry)

    def __repr__(self) -> str:
        return (
            f"ClientSettings(origin={self.origin!r}, api_key={mask_key(self.api_key)!r}, "
            f"timeout={self.timeout!r}, max_retries={self.max_retries!r})"
        )


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
