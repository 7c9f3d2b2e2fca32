"""The HTTP transport: one lazily created aiohttp session, API requests with retries.

The API key is attached per request and only to requests for the API origin; the shared
session itself carries no credentials, so storage PUTs and raw-link GETs made through it
can never leak the key. Redirects are followed only within the API origin.
"""

from __future__ import annotations

import json as jsonlib
import logging
import platform
import ssl
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import replace
from typing import Any, Protocol, TypeVar

import aiohttp
from yarl import URL

from ._exceptions import (
    ApiConnectionError,
    ApiError,
    ApiResponseError,
    ApiTimeoutError,
    AuthError,
    BadRequestError,
    ClientClosed,
    ConflictError,
    ConnectFailed,
    NotFoundError,
    PayloadTooLargeError,
    PermissionError,
    ProtocolError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
)
from ._proxy import ProxySettings
from ._redact import redact_text, redact_url
from ._retry import Kind, call, parse_retry_after
from ._settings import ClientSettings
from ._types import API_PREFIX
from ._version import __version__

logger = logging.getLogger("fluidcloud_async")

#: Largest API response body read into memory; anything bigger is a broken server.
MAX_API_BODY = 16 * 1024 * 1024
MAX_REDIRECTS = 5
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})

USER_AGENT = (
    f"fluidcloud-async/{__version__} python/{platform.python_version()} "
    f"aiohttp/{aiohttp.__version__}"
)

_STATUS_ERRORS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthError,
    402: QuotaExceededError,
    403: PermissionError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


AttemptHook = Callable[[str, str, Callable[[], Awaitable[Any]]], Awaitable[Any]]
"""``hook(method, path, send)`` runs around every attempt of an API call, retries included
(the rate limiter is one); it must ``await send()`` and return its result."""


class AsyncCloseable(Protocol):
    """A per-client resource closed with the client (a rate limiter's Redis connections)."""

    async def aclose(self) -> None: ...


_R = TypeVar("_R", bound=AsyncCloseable)


class SessionHolder:
    """Owns (or borrows) the one ``aiohttp.ClientSession`` a client and its copies share."""

    def __init__(
        self,
        session: aiohttp.ClientSession | None,
        *,
        connection_limit: int,
        proxies: ProxySettings | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._session = session
        self._owned = session is None
        self._connection_limit = connection_limit
        self.proxies = proxies or ProxySettings()
        self._ssl: ssl.SSLContext | bool = True if ssl_context is None else ssl_context
        self._closed = False
        self._resources: dict[Hashable, AsyncCloseable] = {}

    def resource(self, key: Hashable, factory: Callable[[], _R]) -> _R:
        """The client's resource for ``key``, made by ``factory`` on first use; shared by
        the client and its copies and closed with them (no module-level registry)."""
        if self._closed:  # one made now would never be closed
            raise ClientClosed("the client is closed; create a new AsyncFluidCloud")
        if key not in self._resources:
            self._resources[key] = factory()
        return self._resources[key]  # type: ignore[return-value]

    def get(self) -> aiohttp.ClientSession:
        """The session, created on first use inside the running event loop.

        After :meth:`close` no new session is created: a request still running (a retry,
        an upload's ``/complete``) or made later would otherwise open a session that
        nobody closes. It fails with :class:`ApiConnectionError` instead.
        """
        if self._closed:
            raise ClientClosed("the client is closed; create a new AsyncFluidCloud")
        if self._session is None or (self._owned and self._session.closed):
            connector = aiohttp.TCPConnector(
                limit=self._connection_limit, limit_per_host=0, ttl_dns_cache=300, ssl=self._ssl
            )
            # trust_env stays False: aiohttp's own reading of the environment costs two
            # thread hops per request and adds ~/.netrc credentials to any host (a presigned
            # PUT with an Authorization header fails). The proxy choice is ours instead.
            middlewares = (self.proxies.middleware,) if self.proxies.enabled else ()
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": USER_AGENT},
                auto_decompress=True,
                middlewares=middlewares,
            )
        return self._session

    @property
    def owned(self) -> bool:
        """Whether the client created (and configures) the session, rather than the caller."""
        return self._owned

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The ``ssl_context=`` the client was given (None: the system's trust store)."""
        return self._ssl if isinstance(self._ssl, ssl.SSLContext) else None

    @property
    def limit(self) -> int:
        """The client's ``connection_limit``."""
        return self._connection_limit

    @property
    def created(self) -> bool:
        """Whether a session exists (a closed client never creates one by itself)."""
        return self._session is not None and not self._session.closed

    async def close(self) -> None:
        """Close the session if this holder created it; a borrowed session is left open.
        Per-client resources are closed either way."""
        resources, self._resources = list(self._resources.values()), {}
        for resource in resources:
            await resource.aclose()
        if self._owned:
            self._closed = True
        if self._owned and self._session is not None and not self._session.closed:
            await self._session.close()


class Transport:
    """Sends API requests: auth, retries, error mapping, logging."""

    def __init__(
        self, settings: ClientSettings, sessions: SessionHolder, hook: AttemptHook | None = None
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.hook = hook
        self._api_root = URL(settings.origin + API_PREFIX)

    def with_options(self, **changes: Any) -> Transport:
        """A transport over the same session with some settings replaced (and re-checked)."""
        return Transport(replace(self.settings, **changes), self.sessions, self.hook)

    def with_hook(self, hook: AttemptHook) -> Transport:
        """A transport over the same session whose every attempt passes ``hook``."""
        return Transport(self.settings, self.sessions, hook)

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared session (credential-free), for storage and raw-link traffic too."""
        return self.sessions.get()

    def url(self, path: str) -> URL:
        """The absolute API URL of ``path`` (``/files/...``)."""
        return self._api_root.with_path(self._api_root.path + path)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Send one API call, retrying per the rule, and return the parsed JSON (or None)."""
        url = self.url(path)
        query = _clean_params(params)
        if query:
            url = url.with_query(query)
        safe = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        return await call(
            lambda attempt: self._attempt(method, url, json, attempt),
            kind=Kind.API if safe else Kind.API_ONCE,
            policy=self.settings.retry,
            method=method,
            url=str(url.with_query(None)),
        )

    async def _attempt(self, method: str, url: URL, json: Any, attempt: int) -> Any:
        if self.hook is None:
            return await self._send(method, url, json, attempt)
        return await self.hook(method, url.path, lambda: self._send(method, url, json, attempt))

    async def _send(self, method: str, url: URL, json: Any, attempt: int) -> Any:
        headers = {"X-API-Key": self.settings.api_key, "Accept": "application/json"}
        data: bytes | None = None
        if json is not None:
            data = jsonlib.dumps(json).encode()
            headers["Content-Type"] = "application/json"
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
        started = time.perf_counter()
        target = url
        refused: str | None = None
        try:
            for _ in range(MAX_REDIRECTS + 1):
                async with self.session.request(
                    method,
                    target,
                    data=data,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                ) as resp:
                    if resp.status in (301, 302, 303, 307, 308):
                        target = self._redirect_target(method, target, resp)
                        continue
                    body = await _read_limited(resp, method, target)
                    elapsed = (time.perf_counter() - started) * 1000
                    logger.debug(
                        "%s %s -> %d in %.1fms (attempt %d)",
                        method,
                        target.path,
                        resp.status,
                        elapsed,
                        attempt,
                    )
                    if resp.status >= 400:
                        raise _error_from(resp.status, body, method, target, resp.headers)
                    return _decode_success(resp.status, body, method, target, resp.headers)
            raise ProtocolError(
                f"more than {MAX_REDIRECTS} redirects", method=method, url=str(url.with_query(None))
            )
        except TimeoutError as exc:
            logger.debug("%s %s timed out (attempt %d)", method, url.path, attempt)
            raise ApiTimeoutError(
                f"request timed out after {self.settings.timeout}s", method=method, url=str(url)
            ) from exc
        except aiohttp.ClientProxyConnectionError as exc:
            raise ConnectFailed(
                f"cannot connect to the proxy {exc.host}:{exc.port}: {exc.os_error}",
                method=method,
                url=str(url),
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise ConnectFailed(
                f"cannot connect to {url.host}:{url.port}: {exc.os_error}",
                method=method,
                url=str(url),
            ) from exc
        except aiohttp.ClientHttpProxyError as exc:
            # Raised below, outside this block: the aiohttp error's request_info carries
            # the Proxy-Authorization header and must not even become __context__.
            refused = f"the proxy refused to connect to {url.host}:{url.port}: {exc.status}"
        except aiohttp.ClientError as exc:
            raise ApiConnectionError(
                f"connection failed: {type(exc).__name__}: {redact_text(str(exc))}",
                method=method,
                url=str(url),
            ) from exc
        raise ApiConnectionError(refused or "the proxy refused", method=method, url=str(url))

    def _redirect_target(self, method: str, current: URL, resp: aiohttp.ClientResponse) -> URL:
        location = resp.headers.get("Location")
        try:
            target = current.join(URL(location)) if location else None
            origin = target.origin() if target is not None else None
        except ValueError:  # yarl: bad IPv6 literal, port out of range, relative origin...
            raise ApiResponseError(
                "the API redirected to a malformed Location",
                status=resp.status,
                method=method,
                url=str(current.with_query(None)),
                headers=resp.headers,
            ) from None
        if target is None or origin != self._api_root.origin():
            raise ApiResponseError(
                f"the API redirected to another origin ({redact_url(target or '')}); "
                "not followed so the API key stays with the API",
                status=resp.status,
                method=method,
                url=str(current.with_query(None)),
                headers=resp.headers,
            )
        return target


def _clean_params(params: Mapping[str, Any] | None) -> dict[str, str]:
    if not params:
        return {}
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


async def _read_limited(resp: aiohttp.ClientResponse, method: str, url: URL) -> bytes:
    declared = resp.content_length
    if declared is not None and declared > MAX_API_BODY:
        raise ApiResponseError(
            f"response body of {declared} bytes exceeds the {MAX_API_BODY}-byte limit",
            status=resp.status,
            method=method,
            url=str(url),
            headers=resp.headers,
        )
    chunks: list[bytes] = []
    total = 0
    async for chunk in resp.content.iter_chunked(65536):
        total += len(chunk)
        if total > MAX_API_BODY:
            raise ApiResponseError(
                f"response body exceeds the {MAX_API_BODY}-byte limit",
                status=resp.status,
                method=method,
                url=str(url),
                headers=resp.headers,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(body: bytes) -> Any:
    """``json.loads`` that fails only with ``ValueError``.

    Deeply nested input (``[[[[...``) exhausts the parser's recursion limit and raises
    ``RecursionError``, which is not a ``ValueError``: a broken or hostile server must not
    be able to push that through to the caller.
    """
    try:
        return jsonlib.loads(body)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def _decode_success(
    status: int, body: bytes, method: str, url: URL, headers: Mapping[str, str]
) -> Any:
    if status == 204 or not body.strip():
        return None
    try:
        return _parse_json(body)
    except ValueError as exc:
        raise ApiResponseError(
            f"the API answered {status} with a body that is not JSON: {_snippet(body)!r}",
            status=status,
            method=method,
            url=str(url),
            headers=headers,
        ) from exc


def _snippet(body: bytes, limit: int = 200) -> str:
    text = body.decode("utf-8", "replace").strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _error_from(
    status: int, body: bytes, method: str, url: URL, headers: Mapping[str, str]
) -> ApiError:
    detail: Any = None
    try:
        parsed = _parse_json(body) if body.strip() else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and "detail" in parsed:
        detail = _hide_secret_inputs(parsed["detail"])
    elif parsed is not None:
        detail = parsed
    elif body.strip():
        detail = _snippet(body)
    code = _error_code(detail)
    message = _error_message(status, detail, code)
    cls = _STATUS_ERRORS.get(status, ServerError if status >= 500 else ApiError)
    kwargs: dict[str, Any] = {
        "status": status,
        "detail": detail,
        "code": code,
        "method": method,
        "url": str(url),
        "headers": headers,
    }
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=parse_retry_after(headers), **kwargs)
    return cls(message, **kwargs)


#: Request fields whose value a validation error must not carry back (FastAPI echoes the
#: rejected ``input`` in each 422 item).
_SECRET_FIELDS = frozenset({"password"})


def _hide_secret_inputs(detail: Any) -> Any:
    if not isinstance(detail, list):
        return detail
    out = []
    for item in detail:
        loc = item.get("loc") if isinstance(item, dict) else None
        if isinstance(loc, list) and _SECRET_FIELDS.intersection(map(str, loc)):
            item = {**item, "input": "<redacted>"} if "input" in item else item
            item.pop("ctx", None)  # may quote the value too
        out.append(item)
    return out


def _error_code(detail: Any) -> str | None:
    if isinstance(detail, dict):
        for field in ("error", "code"):
            value = detail.get(field)
            if isinstance(value, str):
                return value
        return None
    if isinstance(detail, str) and detail and " " not in detail and detail.isascii():
        return detail
    return None


def _error_message(status: int, detail: Any, code: str | None) -> str:
    if isinstance(detail, str) and detail:
        return detail
    if isinstance(detail, dict):
        text = detail.get("message") or detail.get("msg")
        return f"{code}: {text}" if code and text else str(code or text or detail)
    if isinstance(detail, list) and detail:
        return "; ".join(_validation_item(item) for item in detail[:5])
    return f"HTTP {status}"


def _validation_item(item: Any) -> str:
    if isinstance(item, dict):
        raw_loc = item.get("loc")
        # FastAPI sends a list; tolerate a bare string or any other shape without crashing.
        parts = raw_loc if isinstance(raw_loc, list) else [] if raw_loc is None else [raw_loc]
        loc = ".".join(str(part) for part in parts if part != "body")
        return f"{loc}: {item.get('msg', item)}" if loc else str(item.get("msg", item))
    return str(item)
