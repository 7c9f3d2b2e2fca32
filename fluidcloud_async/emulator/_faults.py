"""Fault-injection knobs, mutable at runtime by tests."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Faults"]


@dataclass
class Faults:
    """Failure knobs of a running emulator; change fields at any time.

    Probabilistic knobs draw from a private RNG seeded with ``seed`` so a run is
    reproducible. Deterministic ``*_next_*`` counters are consumed one per request and
    are usually the better tool in tests.
    """

    seed: int = 0
    # API routes (/api/v1/...): probabilities in [0, 1].
    api_error_rate: float = 0.0
    """Answer 500/502/503 (without running the handler)."""
    api_429_rate: float = 0.0
    """Answer 429 with ``Retry-After: retry_after``."""
    retry_after: float = 1.0
    """Seconds advertised on injected 429s."""
    latency: float = 0.0
    """Seconds added to every API and storage request."""
    # Storage PUTs (presigned uploads).
    storage_error_rate: float = 0.0
    """Answer an S3-style 500/503 after draining the body (nothing stored)."""
    storage_drop_rate: float = 0.0
    """Read part of the body, then abort the TCP connection."""
    storage_bandwidth: float | None = None
    """Bytes per second per connection on storage PUT/GET and raw-link GET."""
    storage_stall: float = 0.0
    """Seconds to sleep after storing a PUT's body and before answering it."""
    # Deterministic counters: each is decremented by the request it affects.
    fail_next_api_requests: int = 0
    """The next N API requests answer ``fail_next_api_status`` without running."""
    fail_next_api_status: int = 503
    rate_limit_next_api_requests: int = 0
    """The next N API requests answer 429 with ``Retry-After: retry_after``."""
    drop_next_complete_responses: int = 0
    """The next N successful /uploads/complete calls commit, then drop the connection."""
    fail_next_storage_puts: int = 0
    """The next N storage PUTs answer 500 InternalError after draining the body."""
    drop_next_storage_puts: int = 0
    """The next N storage PUTs are aborted mid-body."""
    stall_next_storage_puts: int = 0
    """The next N storage PUTs sleep ``stall_next_seconds`` before answering."""
    stall_next_seconds: float = 30.0
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def reseed(self, seed: int) -> None:
        """Restart the random sequence of the probabilistic knobs.

        Args:
            seed: The new seed.
        """
        self.seed = seed
        self._rng = random.Random(seed)

    def reset(self) -> None:
        """Turn every fault off (keeps the seed)."""
        fresh = Faults(seed=self.seed)
        for name in self.__dataclass_fields__:
            if name != "_rng":
                setattr(self, name, getattr(fresh, name))

    def roll(self, probability: float) -> bool:
        """Draw from the private random generator (used by the emulator's handlers).

        Args:
            probability: Of returning `True`, 0 to 1.
        """
        return probability > 0 and self._rng.random() < probability

    def choice(self, options: tuple[int, ...]) -> int:
        """Pick one of `options` with the private random generator (the emulator's handlers
        use it to choose an error status).

        Args:
            options: What to pick from.
        """
        return self._rng.choice(options)

    def take(self, counter: str) -> bool:
        """Consume one unit of a `*_next_*` counter (used by the emulator's handlers).

        Args:
            counter: The knob's name, e.g. `"fail_next_storage_puts"`.

        Returns:
            Whether one was left.
        """
        left: int = getattr(self, counter)
        if left > 0:
            setattr(self, counter, left - 1)
            return True
        return False
