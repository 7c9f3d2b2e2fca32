"""The one retry policy: what is retried where, how long to wait, and the loop that does it.

API calls, storage part PUTs and ranged storage GETs all retry through :func:`call`, under
the table :data:`RETRIED` (failure -> the request kinds that send again):

=======================================  =========  ==========  ===========  ===========
failure                                  API, safe  API, once   storage PUT  storage GET
=======================================  =========  ==========  ===========  ===========
429 (hint within ``MAX_RETRY_AFTER``)    yes        yes         yes          yes
any hint above ``MAX_RETRY_AFTER``       no         no          no           no
408, 500, 502, 503, 504                  yes        no          yes          yes
S3 ``SlowDown``, ``RequestTimeout``...   no         no          yes          yes
connect never happened                   yes        yes         yes          yes
connection dropped, timeout              yes        no          yes          yes
client closed                            no         no          no           no
presigned URL expired                    no         no          no           no (refreshed)
anything else (4xx, source failure...)   no         no          no           no
=======================================  =========  ==========  ===========  ===========

"API, safe" is GET, PUT, PATCH, DELETE and calls marked idempotent; "API, once" a call that
may create something. The wait is the server's hint (``Retry-After``: delta-seconds or an
HTTP-date, or ``retry-after-ms``), never less, else :func:`backoff` with jitter. A GET whose
URL expired asks for a fresh one and goes on (``_download``), outside this loop.
"""

from __future__ import annotations

import datetime
import email.utils
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

import anyio
import tenacity

from ._exceptions import (
    ApiConnectionError,
    ApiError,
    ClientClosed,
    ConnectFailed,
    ExpiredUrlError,
    RateLimitError,
)

__all__ = [
    "MAX_RETRY_AFTER",
    "RETRIED",
    "Failure",
    "Kind",
    "RetryEvent",
    "RetryPolicy",
    "backoff",
    "call",
    "classify",
    "is_retryable",
    "parse_retry_after",
    "retry_wait",
    "sleep",
]

logger = logging.getLogger("fluidcloud_async")

MAX_RETRY_AFTER = 60.0
"""The longest wait a server may ask for (`Retry-After`) that the client sleeps through, in
seconds; a longer one raises [`RateLimitError`][fluidcloud_async.RateLimitError] at once."""
#: Exponential backoff without a server hint: first wait and ceiling (seconds).
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 8.0

#: Statuses after which the request had no lasting effect (429 is its own row).
STATUSES = frozenset({408, 500, 502, 503, 504})
#: S3 error codes worth another attempt whatever their status (S3 answers 400 for some).
S3_CODES = frozenset(
    {"RequestTimeout", "IncompleteBody", "SlowDown", "InternalError", "ServiceUnavailable"}
)

_jitter = random.Random()

Clock = Callable[[], float]
T = TypeVar("T")


class Kind(enum.Enum):
    """A kind of request, as the retry table tells them apart."""

    API = "API call safe to repeat"
    API_ONCE = "API call that may create something"
    PUT = "storage part PUT"
    GET = "storage ranged GET"


class Failure(enum.Enum):
    """A kind of failed attempt (:func:`classify`), a row of the retry table."""

    RATE_LIMITED = "429, no hint or one within MAX_RETRY_AFTER"
    WAIT_TOO_LONG = "a Retry-After above MAX_RETRY_AFTER"
    STATUS = "408, 500, 502, 503, 504"
    S3_CODE = "S3 RequestTimeout, IncompleteBody, SlowDown, InternalError, ServiceUnavailable"
    NOT_CONNECTED = "the connection was never opened: nothing was sent"
    DROPPED = "the connection dropped or timed out"
    CLOSED = "the client was closed"
    EXPIRED = "the presigned URL expired"
    OTHER = "anything else: another status, a failed upload source, a protocol breach"


_ANY = frozenset(Kind)
_SAFE = frozenset({Kind.API, Kind.PUT, Kind.GET})
_STORAGE = frozenset({Kind.PUT, Kind.GET})
_NONE: frozenset[Kind] = frozenset()

RETRIED: Mapping[Failure, frozenset[Kind]] = MappingProxyType(
    {
        Failure.RATE_LIMITED: _ANY,  # the server did not act on it
        Failure.WAIT_TOO_LONG: _NONE,
        Failure.STATUS: _SAFE,  # it may have acted: only what is safe to repeat
        Failure.S3_CODE: _STORAGE,
        Failure.NOT_CONNECTED: _ANY,
        Failure.DROPPED: _SAFE,
        Failure.CLOSED: _NONE,  # nothing can succeed any more
        Failure.EXPIRED: _NONE,  # a PUT cannot be re-signed; a GET refreshes its URL
        Failure.OTHER: _NONE,
    }
)
"""What is retried where: each failure and the request kinds that send again after it."""


OnRetry = Callable[["RetryEvent"], Any]


@dataclass(frozen=True)
class RetryPolicy:
    """How often a client view retries, and who hears of it: one object for its API calls,
    part PUTs and ranged GETs."""

    max_retries: int = 3
    """Retries after the first attempt (0: fail fast)."""
    on_retry: OnRetry | None = None
    """Called (sync or async) with a :class:`RetryEvent` before each retry sleep."""

    @property
    def attempts(self) -> int:
        """Attempts in all, the first included."""
        return self.max_retries + 1


@dataclass(frozen=True)
class RetryEvent:
    """What the `on_retry` hook receives before each retry sleep."""

    attempt: int
    """The attempt that failed: 1 for the first."""
    method: str
    """The request method."""
    url: str
    """The request URL (a storage URL without its query: the signature stays private)."""
    reason: str
    """Why it failed: `"HTTP 429"`, `"HTTP 503"`..., or the exception's class name."""
    sleep: float
    """Seconds the client sleeps before the next attempt."""


async def sleep(seconds: float) -> None:
    """The one sleep between attempts (tests replace this attribute: ``no_sleep``)."""
    await anyio.sleep(seconds)


def parse_retry_after(headers: Mapping[str, str], *, now: Clock = time.time) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be delta-seconds or an HTTP-date; unparsable values give ``None``.
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - now())


def backoff(attempt: int, *, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter for retry ``attempt`` (1-based)."""
    # The exponent is capped: 2.0 ** 1024 overflows, and with a large ``max_retries`` the
    # attempt number can get there; BACKOFF_MAX is reached long before 2 ** 32 anyway.
    ceiling = min(BACKOFF_MAX, BACKOFF_INITIAL * (2.0 ** min(max(attempt - 1, 0), 32)))
    return ceiling / 2 + (rng or _jitter).uniform(0, ceiling / 2)


def _hint(exc: BaseException | None) -> float | None:
    """The server's requested wait for a failed answer, if it gave one."""
    if isinstance(exc, RateLimitError):
        return exc.retry_after
    if isinstance(exc, ApiError):
        return parse_retry_after(exc.headers)
    return None


def classify(exc: BaseException) -> Failure:
    """The row of the retry table a failed attempt falls in."""
    if isinstance(exc, ExpiredUrlError):
        return Failure.EXPIRED
    if isinstance(exc, ApiError):
        hint = _hint(exc)
        if hint is not None and hint > MAX_RETRY_AFTER:
            return Failure.WAIT_TOO_LONG
        if exc.status == 429:
            return Failure.RATE_LIMITED
        if exc.status in STATUSES:
            return Failure.STATUS
        return Failure.S3_CODE if exc.code in S3_CODES else Failure.OTHER
    if isinstance(exc, ClientClosed):
        return Failure.CLOSED
    if isinstance(exc, ConnectFailed):
        return Failure.NOT_CONNECTED
    if isinstance(exc, ApiConnectionError):
        return Failure.DROPPED
    return Failure.OTHER


def is_retryable(exc: BaseException, kind: Kind) -> bool:
    """Whether a ``kind`` request that failed with ``exc`` may be sent again."""
    return kind in RETRIED[classify(exc)]


def retry_wait(exc: BaseException | None, attempt: int) -> float:
    """Seconds to wait before retry ``attempt``: the server's hint if any, else backoff."""
    hinted = _hint(exc)
    return float(hinted) if hinted is not None else backoff(attempt)


def reason_of(exc: BaseException | None) -> str:
    """A short log-friendly description of why an attempt failed."""
    if isinstance(exc, ApiError):
        # The S3 code when it, not the status, made the attempt worth repeating.
        code = f" {exc.code}" if exc.code in S3_CODES and exc.status not in STATUSES else ""
        return f"HTTP {exc.status}{code}"
    return type(exc).__name__ if exc is not None else "unknown"


async def call(
    attempt: Callable[[int], Awaitable[T]],
    *,
    kind: Kind,
    policy: RetryPolicy,
    method: str,
    url: str,
    note: str = "",
) -> T:
    """``await attempt(n)`` for n = 1, 2... until one succeeds, a failure is not retried
    for ``kind`` (:data:`RETRIED`) or ``policy`` runs out; the last failure is raised as is.

    Before each sleep the retry is logged at INFO and passed to ``policy.on_retry``.
    ``url`` (already redacted for storage) and ``note`` (``"part 3"``) are for those only.
    """
    # The first attempt runs outside tenacity: building a controller per call was most of
    # the SDK's CPU overhead over bare aiohttp (benchmarks, group 4), and nearly all calls
    # succeed first time. A retryable failure hands over to tenacity, which then sees that
    # failure as its own attempt 1 (same waits, hooks and attempt budget).
    try:
        return await attempt(1)
    except Exception as exc:
        if policy.max_retries == 0 or not is_retryable(exc, kind):
            raise
        first: Exception | None = exc
    number = 1

    async def again() -> T:
        nonlocal first, number
        if first is not None:
            failure, first = first, None
            raise failure
        number += 1
        return await attempt(number)

    return await _controller(kind, policy, method, url, note)(again)


def _controller(
    kind: Kind, policy: RetryPolicy, method: str, url: str, note: str
) -> tenacity.AsyncRetrying:
    where = f"storage {method}" if kind in _STORAGE else method
    shown = f"{url} ({note})" if note else url

    def should_retry(state: tenacity.RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return exc is not None and is_retryable(exc, kind)

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return retry_wait(exc, state.attempt_number)

    async def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        event = RetryEvent(state.attempt_number, method, url, reason_of(exc), delay)
        logger.info(
            "retrying %s %s after %s (attempt %d, sleeping %.2fs)",
            where,
            shown,
            event.reason,
            event.attempt,
            delay,
        )
        if policy.on_retry is not None:
            result = policy.on_retry(event)
            if isinstance(result, Awaitable):
                await result

    return tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(policy.attempts),
        wait=wait,
        retry=should_retry,
        sleep=lambda seconds: sleep(seconds),  # looked up per sleep: tests replace it
        before_sleep=before_sleep,
        reraise=True,
    )
