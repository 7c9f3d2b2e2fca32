"""When and how long to wait before retrying a request (built on tenacity).

The rule, also tabled in the README:

* 429 is retried for every request (the server did not act on it), after ``Retry-After``
  (delta-seconds, HTTP-date or ``retry-after-ms``), never earlier. A wait above
  :data:`MAX_RETRY_AFTER` is not slept: :class:`RateLimitError` is raised at once.
* 408, 500, 502, 503, 504, dropped connections and timeouts are retried only for requests
  that are safe to repeat (GET, PUT, PATCH, DELETE and calls marked idempotent).
* A connection that could not be opened at all is retried for every request: nothing was sent.
* Everything else (and 409 in particular) is never retried.
"""

from __future__ import annotations

import datetime
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import tenacity

from ._exceptions import ApiConnectionError, ApiError, RateLimitError

logger = logging.getLogger("fluidcloud_async")

MAX_RETRY_AFTER = 60.0
"""The longest wait a server may ask for (`Retry-After`) that the client sleeps through, in
seconds; a longer one raises [`RateLimitError`][fluidcloud_async.RateLimitError] at once."""
#: Exponential backoff without a server hint: first wait and ceiling (seconds).
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 8.0

_jitter = random.Random()

RETRYABLE_STATUSES = frozenset({408, 500, 502, 503, 504})

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


@dataclass(frozen=True)
class RetryEvent:
    """What the `on_retry` hook receives before each retry sleep."""

    attempt: int
    """The attempt that failed: 1 for the first."""
    method: str
    """The request method."""
    url: str
    """The request URL."""
    reason: str
    """Why it failed: `"HTTP 429"`, `"HTTP 503"`..., or the exception's class name."""
    sleep: float
    """Seconds the client sleeps before the next attempt."""


OnRetry = Callable[[RetryEvent], Any]


class ConnectFailed(ApiConnectionError):
    """The connection could not be opened: the request never left the client."""


class ClientClosed(ApiConnectionError):
    """The client was closed: nothing was sent, and retrying cannot help."""


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


def is_retryable(exc: BaseException, *, idempotent: bool) -> bool:
    """Whether a failed attempt may be sent again under the rule above."""
    if isinstance(exc, RateLimitError):
        return exc.retry_after is None or exc.retry_after <= MAX_RETRY_AFTER
    if isinstance(exc, ClientClosed):
        return False
    if isinstance(exc, ConnectFailed):
        return True
    if isinstance(exc, ApiConnectionError):
        return idempotent
    if isinstance(exc, ApiError):
        return idempotent and exc.status in RETRYABLE_STATUSES
    return False


def retry_wait(exc: BaseException | None, attempt: int) -> float:
    """Seconds to wait before retry ``attempt``: the server's hint if any, else backoff."""
    hinted: float | None = getattr(exc, "retry_after", None)
    if hinted is None and isinstance(exc, ApiError):
        hinted = parse_retry_after(exc.headers)
    if hinted is not None:
        return float(hinted)
    return backoff(attempt)


def reason_of(exc: BaseException | None) -> str:
    """A short log-friendly description of why an attempt failed."""
    if isinstance(exc, ApiError):
        return f"HTTP {exc.status}"
    return type(exc).__name__ if exc is not None else "unknown"


def retrying(
    *,
    max_retries: int,
    idempotent: bool,
    method: str,
    url: str,
    sleep: Sleep,
    on_retry: OnRetry | None,
) -> tenacity.AsyncRetrying:
    """A tenacity controller applying the rule to one logical request."""

    def should_retry(state: tenacity.RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return exc is not None and is_retryable(exc, idempotent=idempotent)

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return retry_wait(exc, state.attempt_number)

    async def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        event = RetryEvent(state.attempt_number, method, url, reason_of(exc), delay)
        logger.info(
            "retrying %s %s after %s (attempt %d, sleeping %.2fs)",
            method,
            url,
            event.reason,
            event.attempt,
            delay,
        )
        if on_retry is not None:
            result = on_retry(event)
            if isinstance(result, Awaitable):
                await result

    return tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(max_retries + 1),
        wait=wait,
        retry=should_retry,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
