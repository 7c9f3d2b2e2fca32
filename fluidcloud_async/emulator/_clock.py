"""Wall clock with a test-controlled offset, and the API's timestamp format."""

from __future__ import annotations

import time
from datetime import datetime, timezone


class Clock:
    """``time.time()`` plus an offset tests can advance (share expiry, URL expiry)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def iso(ts: float | None) -> str | None:
    """ISO-8601 UTC with a trailing Z, second precision, as in the docs."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def amz_date(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def parse_amz_date(value: str) -> float:
    return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
