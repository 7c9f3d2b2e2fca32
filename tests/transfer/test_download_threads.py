"""The download tests again, with every storage GET forced through worker threads.

``test_download``, ``test_download_digest`` and ``test_download_hostile`` run their
scripted plain-http storages through the default transport (aiohttp for http); here
``FLUIDCLOUD_STORAGE_TRANSPORT=threads`` sends the same GETs through
``_threaded.ThreadedStorage``, so every fault and protocol check holds for both transports.
"""

from __future__ import annotations

import pytest

from fluidcloud_async._transfer._threaded import TRANSPORT_ENV

from .conftest import record_storage_calls
from .test_download import *  # noqa: F403 - the tests (and their fixtures) run again here
from .test_download import small_ranges as small_ranges
from .test_download_digest import *  # noqa: F403
from .test_download_digest import small_ranges_and_hash_chunks as small_ranges_and_hash_chunks
from .test_download_hostile import *  # noqa: F403
from .test_download_hostile import writes as writes


@pytest.fixture(autouse=True)
def through_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Force the threaded transport and check, after each test, that it carried the GETs."""
    monkeypatch.setenv(TRANSPORT_ENV, "threads")
    return record_storage_calls(monkeypatch, "get")
