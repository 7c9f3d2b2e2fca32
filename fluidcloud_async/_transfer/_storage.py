"""One presigned storage request (PUT or GET), its S3 error parsing, the per-part retries.

Storage URLs are credentials: they go out exactly as issued (``encoded=True``, so aiohttp
does not re-quote the signature), never carry the API key (the shared session has no
default auth), and appear in logs and errors only through :func:`redact_url`.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import aiohttp
from yarl import URL

from .._exceptions import (
    ApiConnectionError,
    ApiError,
    ApiTimeoutError,
    BadRequestError,
    ClientClosed,
    ConnectFailed,
    ExpiredUrlError,
    NotFoundError,
    PermissionError,
    RateLimitError,
    ServerError,
)
from .._redact import redact_text, redact_url
from .._retry import Kind, RetryPolicy, call, parse_retry_after

#: Largest storage error body read (S3 XML errors are a few hundred bytes).
MAX_ERROR_BODY = 64 * 1024
#: Local clock allowance before a URL is declared expired without asking the server.
EXPIRY_GRACE = 300.0

_XML_FIELD = re.compile(r"<(Code|Message)>([^<]*)</\1>")


@dataclass(frozen=True)
class StoragePolicy:
    """Retry and timeout settings of storage requests."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    """The client's retry policy (the same object its API calls use)."""
    connect_timeout: float = 30.0
    read_timeout: float = 300.0
    """Longest wait for the answer after a body, or for the next bytes of a GET."""
    stall_timeout: float = 300.0
    """Longest time one chunk of a request body may wait for the socket."""

    def client_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=None, sock_connect=self.connect_timeout, sock_read=self.read_timeout
        )


class Body(Protocol):
    """What the retry loop needs of a request payload (see ``_body``)."""

    sent: int
    error: BaseException | None

    async def rollback(self) -> None: ...


#: Bytes gathered before one write of a GET body (the aiohttp path batches its chunks).
GET_BATCH = 1 << 20

Chunks = list[bytes | memoryview]


class GetSink(Protocol):
    """Where one GET attempt's body goes, and what it must look like (``_download``'s
    ranges). The transport sends :meth:`headers`, raises :func:`storage_error` for a status
    >= 300, calls :meth:`check` before the body and :meth:`admit` before any byte of a
    chunk is written, then writes at :attr:`pos` and advances it."""

    pos: int
    """Where the next byte goes (the transport advances it after each write)."""
    pwrite: Callable[[Chunks, int], None] | None
    """A blocking positional write a worker thread may call itself (path destinations);
    None: only :meth:`deliver` on the loop."""

    def headers(self) -> dict[str, str]: ...

    def check(self, status: int, headers: Mapping[str, str]) -> None: ...

    def admit(self, n: int) -> None: ...

    async def deliver(self, chunks: Chunks, n: int) -> None:
        """Write ``chunks`` (``n`` bytes) at :attr:`pos`, advance it, count the progress."""

    def count(self, n: int) -> Awaitable[None]: ...


class StorageTransport(Protocol):
    """The one step of a storage request that differs between transports.

    ``put``: send ``body`` once to a presigned ``url`` and return the ETag, or raise the
    typed storage error (an :class:`ApiError` for an answer, an :class:`ApiConnectionError`
    for none; a failure of the source is recorded in ``body.error``);
    :func:`put_with_retries` does the rest. ``get``: one GET attempt into ``sink`` (errors
    as for ``put``; the sink's own checks raise what they raise); the retry loop, resume
    and URL refresh are ``_download``'s.

    Two implementations: :class:`AiohttpStorage` (the client's session: sendfile on plain
    TCP) and ``_threaded.ThreadedStorage`` (worker threads, the default for https).
    """

    async def put(
        self,
        url: str,
        body: Any,
        *,
        length: int,
        content_type: str | None,
        policy: StoragePolicy,
    ) -> str | None: ...

    async def get(self, url: str, sink: GetSink, *, policy: StoragePolicy) -> None: ...


class AiohttpStorage:
    """Storage PUTs (:func:`put_once`) and GETs through an aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def put(
        self,
        url: str,
        body: Any,
        *,
        length: int,
        content_type: str | None,
        policy: StoragePolicy,
    ) -> str | None:
        """One PUT of ``body`` through the session (see :func:`put_once`)."""
        return await put_once(
            self.session, url, body, length=length, content_type=content_type, policy=policy
        )

    async def get(self, url: str, sink: GetSink, *, policy: StoragePolicy) -> None:
        """One GET into ``sink``: chunks batched to :data:`GET_BATCH`, written on the loop."""
        session = self.session
        with aiohttp_errors(session, "GET", url):
            # auto_decompress=False: the bytes counted and written are the bytes received,
            # so a small compressed body cannot inflate past the size checks.
            async with session.get(
                URL(url, encoded=True),
                headers=sink.headers(),
                timeout=policy.client_timeout(),
                auto_decompress=False,
            ) as resp:
                if resp.status >= 300:
                    body = await resp.content.read(MAX_ERROR_BODY)
                    raise storage_error(resp.status, body, "GET", url, resp.headers)
                sink.check(resp.status, resp.headers)
                batch: Chunks = []
                batched = 0
                async for chunk in resp.content.iter_any():
                    sink.admit(batched + len(chunk))  # before any of the chunk is kept
                    batch.append(chunk)
                    batched += len(chunk)
                    if batched >= GET_BATCH:
                        await sink.deliver(batch, batched)
                        batch, batched = [], 0
                if batch:
                    await sink.deliver(batch, batched)


def url_expiry(url: str) -> float | None:
    """When a presigned URL expires (epoch seconds), from X-Amz-Date + X-Amz-Expires."""
    query = parse_qs(urlsplit(url).query)
    try:
        stamp = query["X-Amz-Date"][0]
        ttl = int(query["X-Amz-Expires"][0])
        # Sliced by hand: strptime costs more than the rest of a part's bookkeeping.
        if len(stamp) != 16 or stamp[8] != "T" or stamp[15] != "Z":
            return None
        issued = datetime(
            int(stamp[0:4]),
            int(stamp[4:6]),
            int(stamp[6:8]),
            int(stamp[9:11]),
            int(stamp[11:13]),
            int(stamp[13:15]),
            tzinfo=timezone.utc,
        )
    except (KeyError, IndexError, ValueError):
        return None
    return issued.timestamp() + ttl


def check_not_expired(url: str, *, now: Callable[[], float] = time.time) -> None:
    """Raise :class:`ExpiredUrlError` when the URL is past its expiry by our own clock
    (with :data:`EXPIRY_GRACE` for clock skew; the server's 403 is authoritative)."""
    expires = url_expiry(url)
    if expires is not None and now() > expires + EXPIRY_GRACE:
        raise ExpiredUrlError(
            f"the presigned URL expired at {datetime.fromtimestamp(expires, timezone.utc):%c} UTC",
            status=403,
            code="AccessDenied",
            method="PUT",
            url=redact_url(url),
        )


def parse_s3_error(body: bytes) -> tuple[str | None, str | None]:
    """``(Code, Message)`` of an S3 XML error body (either may be None)."""
    fields = dict(_XML_FIELD.findall(body.decode("utf-8", "replace")))
    return fields.get("Code"), fields.get("Message")


def storage_error(
    status: int, body: bytes, method: str, url: str, headers: Mapping[str, str]
) -> ApiError:
    """The typed error of a storage answer ``status`` with S3 XML ``body``."""
    code, message = parse_s3_error(body)
    safe_url = redact_url(url)
    text = f"storage {method} answered {status}" + (f" {code}" if code else "")
    text += f": {message}" if message else ""
    kwargs: dict[str, Any] = {
        "status": status,
        "detail": message,
        "code": code,
        "method": method,
        "url": safe_url,
        "headers": headers,
    }
    if status == 403 and _looks_expired(code, message, url):
        return ExpiredUrlError(text, **kwargs)
    if status == 429:
        return RateLimitError(text, retry_after=parse_retry_after(headers), **kwargs)
    if status >= 500:
        return ServerError(text, **kwargs)
    cls = {400: BadRequestError, 403: PermissionError, 404: NotFoundError}.get(status, ApiError)
    return cls(text, **kwargs)


def _looks_expired(code: str | None, message: str | None, url: str) -> bool:
    if message and "expired" in message.lower():
        return True
    expires = url_expiry(url)
    return code == "AccessDenied" and expires is not None and time.time() > expires


def scrub(text: str) -> str:
    """``text`` with the query string (aiohttp puts the full request URL, signature
    included, into some of its messages) and userinfo of every URL in it redacted."""
    return redact_text(text)


def connection_error(exc: BaseException, method: str, url: str) -> ApiConnectionError:
    """The typed error of a request that got no answer (its message never holds the URL's
    signature; chain it ``from None`` for the same reason)."""
    safe_url = redact_url(url)
    if isinstance(exc, TimeoutError):
        return ApiTimeoutError(f"storage {method} timed out", method=method, url=safe_url)
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return ConnectFailed(
            f"cannot connect to the proxy {exc.host}:{exc.port}: {exc.os_error}",
            method=method,
            url=safe_url,
        )
    if isinstance(exc, aiohttp.ClientHttpProxyError):  # its text would quote the URL
        return ApiConnectionError(
            f"the proxy refused storage {method}: {exc.status}", method=method, url=safe_url
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectFailed(
            f"cannot connect to storage: {exc.os_error}", method=method, url=safe_url
        )
    return ApiConnectionError(
        f"storage {method} failed: {type(exc).__name__}: {scrub(str(exc))}",
        method=method,
        url=safe_url,
    )


def raise_if_closed(session: aiohttp.ClientSession, method: str, url: str) -> None:
    """aiohttp reports a request on a closed session as a bare RuntimeError: when the client
    was closed under a running transfer, say so with a typed error instead."""
    if session.closed:
        raise ClientClosed(
            "the client was closed while the transfer was running",
            method=method,
            url=redact_url(url),
        ) from None


@contextlib.contextmanager
def aiohttp_errors(session: aiohttp.ClientSession, method: str, url: str) -> Iterator[None]:
    """aiohttp's failures of one storage request as the SDK's typed errors (URL redacted);
    the storage's own answers (``ApiError``) pass unchanged."""
    try:
        yield
    except ApiError:  # first: PermissionError (403) is an OSError too
        raise
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise connection_error(exc, method, url) from None
    except RuntimeError:
        raise_if_closed(session, method, url)
        raise


async def put_once(
    session: aiohttp.ClientSession,
    url: str,
    body: Any,
    *,
    length: int,
    content_type: str | None,
    policy: StoragePolicy,
) -> str | None:
    """One PUT of ``body`` (``length`` bytes); the answer's ETag, verbatim.

    The Content-Type header is exactly ``content_type``, or absent when it is None (aiohttp
    would otherwise add ``application/octet-stream``, which breaks the signature).
    """
    headers = {"Content-Length": str(length)}
    if content_type is not None:
        headers["Content-Type"] = content_type
    skip = () if content_type is not None else ("Content-Type",)
    with aiohttp_errors(session, "PUT", url):
        async with session.put(
            URL(url, encoded=True),
            data=body,
            headers=headers,
            skip_auto_headers=skip,
            timeout=policy.client_timeout(),
            allow_redirects=False,
        ) as resp:
            payload = await resp.content.read(MAX_ERROR_BODY)
            if 200 <= resp.status < 300:
                etag: str | None = resp.headers.get("ETag")
                return etag
            raise storage_error(resp.status, payload, "PUT", url, resp.headers)


async def put_with_retries(
    transport: StorageTransport,
    url: str,
    make_body: Callable[[], Any],
    *,
    length: int,
    content_type: str | None,
    policy: StoragePolicy,
    label: str,
) -> str | None:
    """PUT under the client's retry policy (``_retry``); each attempt gets a fresh body that
    re-reads the source and rolls its progress back on failure. A failed source is raised,
    never retried. ``transport`` sends each attempt."""

    async def attempt(number: int) -> str | None:
        check_not_expired(url)
        body = make_body()
        try:
            return await transport.put(
                url, body, length=length, content_type=content_type, policy=policy
            )
        except (ApiError, ApiConnectionError) as failure:
            await body.rollback()
            if body.error is not None:  # the source itself failed: re-sending cannot help
                raise body.error from failure
            raise

    return await call(
        attempt, kind=Kind.PUT, policy=policy.retry, method="PUT", url=redact_url(url), note=label
    )
