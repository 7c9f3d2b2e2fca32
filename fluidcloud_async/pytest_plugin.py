"""pytest fixtures that run a local FluidCloud emulator and hand you a client.

Installed as a ``pytest11`` plugin, so with ``fluidcloud-async`` and ``pytest-asyncio``
installed a test needs no set-up:

```python
async def test_upload(fluidcloud):
    space = await fluidcloud.spaces.create("t")
    f = await fluidcloud.files.upload(b"hi", space.id, name="hi.txt")
    assert f.size == 2
```

``fluidcloud_emulator`` gives the running emulator (its ``base_url``, ``api_key``, fault
knobs and stats) for tests that need them; override ``fluidcloud_emulator_config`` to
change the emulator's settings, or mark a test (or module) with
``@pytest.mark.fluidcloud_emulator(**settings)``. ``verify_sha256=False`` runs the server
the API docs describe, which stores the client's SHA-256 without checking it: tests of
integrity guarantees belong there, so none leans on the emulator re-hashing:

```python
import pytest

pytestmark = pytest.mark.fluidcloud_emulator(verify_sha256=False)


async def test_the_client_checks_what_was_stored(fluidcloud, fluidcloud_emulator):
    assert fluidcloud_emulator.config.verify_sha256 is False
    space = await fluidcloud.spaces.create("t")
    assert (await fluidcloud.files.upload(b"hi", space.id, name="hi.txt")).size == 2
```
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from fluidcloud_async import AsyncFluidCloud
    from fluidcloud_async.emulator import Emulator, EmulatorConfig

_F = TypeVar("_F", bound=Callable[..., Any])

try:
    import pytest_asyncio

    _fixture: Any = pytest_asyncio.fixture
except ImportError:  # pragma: no cover - the fixtures then need another async plugin
    _fixture = pytest.fixture


def _async_fixture(function: _F) -> _F:
    return cast(_F, _fixture(function))


def pytest_configure(config: pytest.Config) -> None:
    """Registers the `fluidcloud_emulator(**settings)` mark (a pytest hook)."""
    config.addinivalue_line(
        "markers",
        "fluidcloud_emulator(**settings): EmulatorConfig fields for the fluidcloud_emulator "
        "fixture (verify_sha256=False: the docs-faithful server that stores sha256 unverified)",
    )


@pytest.fixture
def fluidcloud_emulator_config(request: pytest.FixtureRequest) -> EmulatorConfig:
    """The emulator's settings (a ``fluidcloud_emulator`` mark's keywords applied); override
    this fixture to change them."""
    from fluidcloud_async.emulator import EmulatorConfig

    marker = request.node.get_closest_marker("fluidcloud_emulator")
    return EmulatorConfig(**(marker.kwargs if marker is not None else {}))


@_async_fixture
async def fluidcloud_emulator(
    fluidcloud_emulator_config: EmulatorConfig,
) -> AsyncIterator[Emulator]:
    """A running emulator on free loopback ports, stopped after the test."""
    from fluidcloud_async.emulator import Emulator

    async with Emulator(fluidcloud_emulator_config) as emulator:
        yield emulator


@_async_fixture
async def fluidcloud(fluidcloud_emulator: Emulator) -> AsyncIterator[AsyncFluidCloud]:
    """An ``AsyncFluidCloud`` connected to the emulator, closed after the test."""
    from fluidcloud_async import AsyncFluidCloud

    # The emulator is on loopback: a proxy from the environment could not reach it.
    async with AsyncFluidCloud(
        fluidcloud_emulator.api_key, base_url=fluidcloud_emulator.base_url, trust_env=False
    ) as client:
        yield client
