"""Counters a test can assert on."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Stats"]


@dataclass
class Stats:
    """What the emulator has served. Route keys look like ``"GET /api/v1/files/{file_id}"``."""

    requests: Counter[str] = field(default_factory=Counter)
    """API requests per route (unknown routes count under ``"<unmatched>"``)."""
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    """API responses per (route, status)."""
    completes: int = 0
    """Calls to POST /uploads/complete, whatever their outcome."""
    storage_puts: int = 0
    """Storage PUTs received (single and part), whatever their outcome."""
    storage_puts_ok: int = 0
    storage_put_bytes: int = 0
    """Bytes successfully stored by storage PUTs."""
    storage_gets: int = 0
    raw_gets: int = 0
    rate_limited: int = 0
    """429s sent, real and injected."""
    faults: Counter[str] = field(default_factory=Counter)
    """Injected faults by kind (``api_error``, ``api_429``, ``storage_error``, ...)."""

    def reset(self) -> None:
        """Zero every counter."""
        fresh = Stats()
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))

    def count(self, route: str, status: int | None = None) -> int:
        """How many requests a route received.

        Args:
            route: As the emulator names it: `"POST /api/v1/uploads/complete"`,
                `"GET /api/v1/files/{file_id}"`.
            status: Count only the requests answered with this status.
        """
        if status is None:
            return self.requests[route]
        return self.statuses[(route, status)]
