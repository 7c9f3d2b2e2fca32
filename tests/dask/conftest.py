"""Dask tests: a real ``LocalCluster`` of two worker processes (shared by the package's
tests), the emulator in this process on loopback, and the throwaway ``redis-server`` of the
fleet tests. Without Dask the tests skip, except in CI (``CI=true``), where they fail."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

try:
    import distributed
except ImportError:  # pragma: no cover
    if os.environ.get("CI") == "true":
        raise  # CI installs the [dask] extra (nox -s tests): a missing Dask is a failure
    pytest.skip("dask[distributed] is not installed (nox -s tests does)", allow_module_level=True)

from tests.e2e.test_ratelimit_redis_e2e import redis_url  # noqa: F401 - the shared fixture


@pytest.fixture(scope="package")
def dask_client() -> Iterator[distributed.Client]:
    """Two worker processes with two threads each (tasks run in threads, as in production),
    no dashboard; every test of the package reuses them."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=2,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client
