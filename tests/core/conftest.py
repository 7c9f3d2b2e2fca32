from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aioresponses import aioresponses
from yarl import URL

from fluidcloud_async import AsyncFluidCloud
from tests import _aioresponses_compat
from tests.conftest import RetrySleeps as SleepRecorder

_aioresponses_compat.install()

API_KEY = "fck_test_unitkey0123456789"
ORIGIN = "http://api.test"
ROOT = ORIGIN + "/api/v1"


@pytest.fixture
def sleeps(no_sleep: SleepRecorder) -> SleepRecorder:
    """The retry waits of the test's clients, recorded instead of slept."""
    return no_sleep


@pytest.fixture
def mock() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


@pytest.fixture
async def client(sleeps: SleepRecorder) -> AsyncIterator[AsyncFluidCloud]:
    async with AsyncFluidCloud(API_KEY, base_url=ORIGIN) as fc:
        yield fc


def sent(mock: aioresponses, method: str, url: str) -> list[Any]:
    """The calls aioresponses recorded for ``method url`` (url with its query)."""
    return mock.requests.get((method, URL(url)), [])


def only_call(mock: aioresponses) -> tuple[str, URL, Any]:
    assert len(mock.requests) == 1, list(mock.requests)
    (method, url), calls = next(iter(mock.requests.items()))
    assert len(calls) == 1
    return method, url, calls[0]
