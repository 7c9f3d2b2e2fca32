from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aioresponses import aioresponses
from yarl import URL

from fluidcloud_async import AsyncFluidCloud
from tests import _aioresponses_compat

_aioresponses_compat.install()

API_KEY = "fck_test_unitkey0123456789"
ORIGIN = "http://api.test"
ROOT = ORIGIN + "/api/v1"


class SleepRecorder:
    """Stands in for anyio.sleep so retry waits are asserted, not waited."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def mock() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


@pytest.fixture
async def client(sleeps: SleepRecorder) -> AsyncIterator[AsyncFluidCloud]:
    async with AsyncFluidCloud(API_KEY, base_url=ORIGIN, _sleep=sleeps) as fc:
        yield fc


def sent(mock: aioresponses, method: str, url: str) -> list[Any]:
    """The calls aioresponses recorded for ``method url`` (url with its query)."""
    return mock.requests.get((method, URL(url)), [])


def only_call(mock: aioresponses) -> tuple[str, URL, Any]:
    assert len(mock.requests) == 1, list(mock.requests)
    (method, url), calls = next(iter(mock.requests.items()))
    assert len(calls) == 1
    return method, url, calls[0]
