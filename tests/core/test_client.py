"""Construction, configuration, lifecycle and credential hygiene."""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from fluidcloud_async import (
    AsyncFluidCloud,
    ConfigurationError,
    FluidCloud,
    NotFoundError,
    ProtocolError,
)
from fluidcloud_async import _validate_args as check
from fluidcloud_async._settings import ClientSettings
from fluidcloud_async._transport import USER_AGENT

from .conftest import API_KEY, ORIGIN, ROOT

QUOTA = {"bytes_used": 1, "bytes_limit": -1, "links_used": 0, "links_limit": -1}


def test_fluidcloud_alias() -> None:
    assert FluidCloud is AsyncFluidCloud


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLUIDCLOUD_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="FLUIDCLOUD_API_KEY"):
        AsyncFluidCloud()


def test_env_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUIDCLOUD_API_KEY", "fck_test_env")
    monkeypatch.setenv("FLUIDCLOUD_BASE_URL", "http://127.0.0.1:9999/")
    fc = AsyncFluidCloud()
    assert fc.base_url == "http://127.0.0.1:9999"
    assert fc.api_root == "http://127.0.0.1:9999/api/v1"


def test_default_origin_and_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLUIDCLOUD_BASE_URL", raising=False)
    fc = AsyncFluidCloud("fck_live_x")
    assert fc.api_root == "https://api-cloud.fluidvip.com/api/v1"
    assert AsyncFluidCloud("k", base_url="https://h.example/api/v1/").base_url == (
        "https://h.example"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_url": "ftp://x"},
        {"base_url": "https://user:pw@h.example"},
        {"timeout": 0},
        {"max_retries": -1},
        {"api_key": "fck_test_a b"},
        {"api_key": "fck_test_a\nX-Evil: 1"},
        {"allow_insecure_http": "no"},  # truthy: would silently lift the live-key guard
        {"trust_env": 0},
    ],
)
def test_bad_configuration(kwargs: dict[str, object]) -> None:
    args = {"api_key": "fck_test_k", **kwargs}
    with pytest.raises(ConfigurationError):
        AsyncFluidCloud(**args)  # type: ignore[arg-type]


def test_live_key_over_plain_http_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="plain http"):
        AsyncFluidCloud("fck_live_abc", base_url="http://api.example.com")
    AsyncFluidCloud("fck_live_abc", base_url="http://api.example.com", allow_insecure_http=True)
    AsyncFluidCloud("fck_live_abc", base_url="http://127.0.0.1:8787")
    AsyncFluidCloud("fck_live_abc", base_url="http://localhost:8787")
    AsyncFluidCloud("fck_test_abc", base_url="http://api.example.com")


def test_repr_hides_the_key() -> None:
    fc = AsyncFluidCloud("fck_live_supersecret123", base_url="https://h.example")
    assert "supersecret" not in repr(fc) and "supersecret" not in str(fc)
    assert "fck_live_***" in repr(fc)


async def test_session_is_lazy_and_closed() -> None:
    fc = AsyncFluidCloud(API_KEY, base_url=ORIGIN)
    assert not fc._transport.sessions.created
    session = fc.session
    assert fc._transport.sessions.created
    await fc.close()
    assert session.closed


async def test_user_session_is_not_closed(mock: aioresponses) -> None:
    async with aiohttp.ClientSession() as own:
        async with AsyncFluidCloud(API_KEY, base_url=ORIGIN, session=own) as fc:
            mock.get(f"{ROOT}/quota", payload=QUOTA)
            await fc.quota.usage()
        assert not own.closed


async def test_with_options_shares_the_session(mock: aioresponses) -> None:
    async with AsyncFluidCloud(API_KEY, base_url=ORIGIN) as fc:
        fast = fc.with_options(timeout=5, max_retries=0)
        assert (fast.timeout, fast.max_retries) == (5.0, 0)
        assert (fc.timeout, fc.max_retries) == (300.0, 3)
        assert fast.session is fc.session
        await fast.close()
        assert not fc.session.closed
        mock.get(f"{ROOT}/quota", payload=QUOTA)
        await fast.quota.usage()


async def test_a_view_shares_the_holder_and_its_resources() -> None:
    fc = AsyncFluidCloud(API_KEY, base_url=ORIGIN)
    view = fc.with_options(max_retries=0)
    assert view._transport.sessions is fc._transport.sessions
    assert view.files._transport is view._transport and view._transport is not fc._transport

    class Limiter:
        async def aclose(self) -> None:
            pass

    made = fc._transport.sessions.resource("k", Limiter)
    assert view._transport.sessions.resource("k", Limiter) is made  # one per client
    assert (view._settings.api_key, view.base_url) == (API_KEY, fc.base_url)
    await view.close()
    assert not fc._transport.sessions._closed
    await fc.close()
    assert fc._transport.sessions._closed


def test_settings_are_resolved_once_into_a_frozen_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLUIDCLOUD_API_KEY", "fck_test_env")
    monkeypatch.setenv("FLUIDCLOUD_BASE_URL", "http://127.0.0.1:9/api/v1/")
    settings = ClientSettings.resolve(timeout=7)
    assert (settings.api_key, settings.origin, settings.timeout) == (
        "fck_test_env",
        "http://127.0.0.1:9",
        7.0,
    )
    assert "fck_test_env" not in repr(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.timeout = 1.0  # type: ignore[misc]
    with pytest.raises(ConfigurationError, match="max_retries"):
        dataclasses.replace(settings, max_retries=-1)  # what with_options goes through
    with pytest.raises(ConfigurationError, match="on_retry"):
        ClientSettings.resolve(on_retry="nope")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="session you pass"):
        ClientSettings.resolve(proxy="http://proxy.example:3128", own_session=False)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: check.require_seconds("5", "t"), TypeError),
        (lambda: check.require_seconds(math.nan, "t"), ValueError),
        (lambda: check.optional_seconds(math.inf, "t"), ValueError),
        (lambda: check.require_positive_int(True, "n"), TypeError),
        (lambda: check.require_positive_int(0, "n"), ValueError),
        (lambda: check.require_count(-1, "n"), ValueError),
        (lambda: check.require_days(366), ValueError),
        (lambda: check.require_fraction(0, "share"), ValueError),
        (lambda: check.require_flag(1, "flag"), TypeError),
        (lambda: check.optional_callback(3, "cb"), TypeError),
        (lambda: check.require_id("..", "id"), ValueError),
        (lambda: check.require_origin("ftp://x"), ValueError),
        (lambda: check.optional_rate_limit({}), TypeError),
    ],
)
def test_argument_checks_raise_type_or_value_errors(call: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        call()
    assert check.optional_seconds(None, "t") is None and check.require_seconds(2, "t") == 2.0


async def test_headers_sent(client: AsyncFluidCloud, mock: aioresponses) -> None:
    mock.get(f"{ROOT}/quota", payload=QUOTA)
    await client.quota.usage()
    call = next(iter(mock.requests.values()))[0]
    assert call.kwargs["headers"]["X-API-Key"] == API_KEY
    assert USER_AGENT.startswith("fluidcloud-async/") and " python/" in USER_AGENT
    assert " aiohttp/" in USER_AGENT


async def test_cross_origin_redirect_is_not_followed(
    client: AsyncFluidCloud, mock: aioresponses
) -> None:
    mock.get(f"{ROOT}/files/f1", status=302, headers={"Location": "https://evil.example/steal"})
    with pytest.raises(Exception, match="another origin") as info:
        await client.files.get("f1")
    assert API_KEY not in str(info.value)
    hosts = {url.host for (_, url) in mock.requests}
    assert hosts == {"api.test"}


async def test_endless_redirects_are_a_status_less_protocol_error(
    client: AsyncFluidCloud, mock: aioresponses
) -> None:
    mock.get(f"{ROOT}/files/f1", status=307, headers={"Location": f"{ROOT}/files/f1"}, repeat=True)
    with pytest.raises(ProtocolError, match="redirects") as info:
        await client.files.get("f1")
    assert not hasattr(info.value, "status")


async def test_same_origin_redirect_is_followed(
    client: AsyncFluidCloud, mock: aioresponses
) -> None:
    mock.get(f"{ROOT}/files/f1", status=307, headers={"Location": f"{ROOT}/files/f2"})
    mock.get(f"{ROOT}/files/f2", payload={"id": "f2", "original_name": "x"})
    assert (await client.files.get("f1")).id == "f2"


async def test_key_never_logged(
    client: AsyncFluidCloud, mock: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="fluidcloud_async")
    mock.get(f"{ROOT}/files/f1", status=503)
    mock.get(f"{ROOT}/files/f1", status=404, payload={"detail": "not found"})
    with pytest.raises(NotFoundError) as info:
        await client.files.get("f1")
    assert caplog.records, "expected request logs"
    assert all(API_KEY not in r.getMessage() for r in caplog.records)
    assert API_KEY not in str(info.value) and API_KEY not in repr(info.value)
    assert any("retrying GET" in r.getMessage() for r in caplog.records)
