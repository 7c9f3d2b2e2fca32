"""Suite-wide: no test inherits the machine's proxy settings (the emulator is on loopback,
and tests/proxy sets the variables it tests explicitly); retry waits are recorded, not slept,
by the ``no_sleep`` fixture."""

from __future__ import annotations

import anyio
import pytest

from fluidcloud_async import _retry

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _no_inherited_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


class RetrySleeps:
    """Stands in for ``fluidcloud_async._retry.sleep``: records every retry wait and sleeps
    at most ``cap`` seconds of it (0: a bare checkpoint)."""

    def __init__(self, cap: float = 0.0) -> None:
        self.calls: list[float] = []
        self.cap = cap

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await anyio.sleep(min(seconds, self.cap))


def replace_retry_sleep(monkeypatch: pytest.MonkeyPatch, cap: float = 0.0) -> RetrySleeps:
    """Install a :class:`RetrySleeps` as the retry module's sleep for one test."""
    sleeps = RetrySleeps(cap)
    monkeypatch.setattr(_retry, "sleep", sleeps)
    return sleeps


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> RetrySleeps:
    """Retry waits of every client in the test recorded (``.calls``), not slept."""
    return replace_retry_sleep(monkeypatch)
