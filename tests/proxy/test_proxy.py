"""Proxies: API, storage and download traffic through a real proxy server (proxy.py).

What the proxy received is read from its recorder, so "went through the proxy", "bypassed
it" and "the proxy never saw the key" are checked from the proxy's side.
"""

from __future__ import annotations

import base64
import io
import logging
import traceback
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from fluidcloud_async import (
    ApiConnectionError,
    AsyncFluidCloud,
    ConfigurationError,
)
from fluidcloud_async._proxy import ProxySettings
from fluidcloud_async.emulator import Emulator, EmulatorConfig
from tests._tls import Tls, make_tls

from .conftest import Proxy

MiB = 1024 * 1024
DEAD = "http://127.0.0.1:9"  # nothing listens there


def _config(**changes: Any) -> EmulatorConfig:
    return EmulatorConfig(
        scan_delay=0.01, multipart_threshold=2 * MiB, part_size=1 * MiB, **changes
    )


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(_config()) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def tls_emu(tls: Tls) -> AsyncIterator[Emulator]:
    async with Emulator(_config(ssl_context=tls.server_context())) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _fresh_log(proxy: Proxy, auth_proxy: Proxy) -> None:
    proxy.clear()
    auth_proxy.clear()


async def _round_trip(fc: AsyncFluidCloud, tmp_path: Path) -> None:
    """API calls, a single PUT, a multipart upload, a download and a raw-link GET."""
    space = await fc.spaces.create("proxied")
    await fc.quota.usage()
    small = await fc.files.upload(b"small\n", space.id, name="small.txt", public=True)
    big_bytes = bytes(range(256)) * (3 * MiB // 256)
    big = await fc.files.upload(big_bytes, space.id, name="big.bin", wait_until_clean=True)
    await fc.files.download(big.id, tmp_path / "big.bin")
    assert (tmp_path / "big.bin").read_bytes() == big_bytes
    assert small.public_url is not None
    async with fc.session.get(small.public_url) as resp:
        assert await resp.read() == b"small\n"


def _port(url: str) -> int:
    port = URL(url).port
    assert port is not None
    return port


async def test_http_origin_api_uploads_and_downloads_go_through_the_env_proxy(
    proxy: Proxy, emu: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url, allow_insecure_http=True) as fc:
        await _round_trip(fc, tmp_path)
    seen = proxy.requests()
    api, storage, raw = _port(emu.base_url), _port(emu.storage_url), _port(emu.raw_url)
    by_port = {p: [r for r in seen if r["port"] == p] for p in (api, storage, raw)}
    assert len(seen) == sum(len(v) for v in by_port.values())  # nothing went elsewhere
    api_paths = {r["path"].split("?")[0] for r in by_port[api]}
    assert {"/api/v1/spaces", "/api/v1/quota", "/api/v1/uploads/initiate"} <= api_paths
    assert sum(r["method"] == "PUT" for r in by_port[storage]) == 1 + 3  # single + 3 parts
    assert any(r["method"] == "GET" for r in by_port[storage])  # the download
    assert [r["path"].split("/")[1] for r in by_port[raw]] == ["s"]
    # Plain http: the proxy reads every header, and the key goes to the API origin only.
    assert all(r["headers"].get("X-API-Key") == emu.api_key for r in by_port[api])
    assert not any("X-API-Key" in r["headers"] for r in by_port[storage] + by_port[raw])


async def test_https_origin_goes_through_connect_and_the_proxy_never_sees_the_key(
    proxy: Proxy,
    tls_emu: Emulator,
    tls: Tls,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    async with AsyncFluidCloud(
        tls_emu.api_key, base_url=tls_emu.base_url, ssl_context=tls.client_context()
    ) as fc:
        await _round_trip(fc, tmp_path)
    seen = proxy.requests()
    assert seen and {r["method"] for r in seen} == {"CONNECT"}
    ports = {_port(tls_emu.base_url), _port(tls_emu.storage_url), _port(tls_emu.raw_url)}
    assert {r["port"] for r in seen} == ports
    assert tls_emu.api_key not in repr(seen)
    assert "X-Amz-Signature" not in repr(seen)  # presigned URLs are inside the tunnel too


async def test_http_origin_through_a_proxy_is_refused_unless_allowed(
    proxy: Proxy, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", proxy.url)
    with pytest.raises(ConfigurationError, match="NO_PROXY") as info:
        AsyncFluidCloud(emu.api_key, base_url=emu.base_url)
    assert "could read it" in str(info.value)
    # The session guards direct use too: a request carrying the key over http is refused.
    async with AsyncFluidCloud(emu.api_key, base_url="https://127.0.0.1:1") as fc:
        with pytest.raises(ConfigurationError, match="plain http through the proxy"):
            await fc.session.get(emu.api_url + "/quota", headers={"X-API-Key": emu.api_key})
    assert proxy.requests() == []


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost,127.0.0.0/8", "*", ".x, 127.0.0.1"])
async def test_no_proxy_for_loopback_bypasses_the_proxy(
    proxy: Proxy,
    emu: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    no_proxy: str,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    # No allow_insecure_http needed: nothing passes through the proxy.
    async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as fc:
        await _round_trip(fc, tmp_path)
    assert proxy.requests() == []


async def test_trust_env_false_ignores_the_environment(
    proxy: Proxy, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, DEAD)
    async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url, trust_env=False) as fc:
        space = await fc.spaces.create("direct")
        await fc.files.upload(b"direct", space.id, name="d.txt")
    # The same environment, trusted: the dead proxy is used (and named in the error).
    async with AsyncFluidCloud(
        emu.api_key, base_url=emu.base_url, allow_insecure_http=True, max_retries=0
    ) as fc:
        with pytest.raises(ApiConnectionError, match=r"cannot connect to the proxy 127\.0\.0\.1:9"):
            await fc.quota.usage()
    assert proxy.requests() == []


async def test_explicit_proxy_argument_without_the_environment(
    proxy: Proxy, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", DEAD)
    async with AsyncFluidCloud(
        emu.api_key,
        base_url=emu.base_url,
        trust_env=False,
        proxy=proxy.url,
        allow_insecure_http=True,
    ) as fc:
        await fc.quota.usage()
    assert [r["path"] for r in proxy.requests()] == ["/api/v1/quota"]


def _all_text(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc))
    current: BaseException | None = exc
    while current is not None:
        text += repr(current) + str(current) + repr(vars(current))
        current = current.__cause__ or current.__context__
    return text


async def test_proxy_credentials_are_used_and_never_shown(
    auth_proxy: Proxy,
    tls_emu: Emulator,
    tls: Tls,
    emu: Emulator,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "pr0xy-s3cret"
    encoded = base64.b64encode(b"fc:" + password.encode()).decode()
    assert auth_proxy.credentials is not None and password in auth_proxy.url
    # https origin: the credentials go on the CONNECT.
    async with AsyncFluidCloud(
        tls_emu.api_key,
        base_url=tls_emu.base_url,
        proxy=auth_proxy.url,
        ssl_context=tls.client_context(),
    ) as fc:
        await _round_trip(fc, tmp_path)
        shown = repr(fc) + repr(fc._transport.sessions.proxies) + repr(fc._transport.settings)
        assert password not in shown and encoded not in shown
    connects = auth_proxy.requests()
    assert connects and all(r["method"] == "CONNECT" for r in connects)
    # http origin (allowed): on the request itself.
    async with AsyncFluidCloud(
        emu.api_key, base_url=emu.base_url, proxy=auth_proxy.url, allow_insecure_http=True
    ) as fc:
        await fc.quota.usage()
    # Wrong credentials: a clear error that shows neither the password nor its encoding.
    wrong = auth_proxy.url.replace(password, "wr0ng-pa55")
    failures: list[BaseException] = []
    async with AsyncFluidCloud(
        tls_emu.api_key,
        base_url=tls_emu.base_url,
        proxy=wrong,
        ssl_context=tls.client_context(),
        max_retries=0,
    ) as fc:
        with pytest.raises(ApiConnectionError, match="proxy refused") as refused:
            await fc.quota.usage()
        failures.append(refused.value)
        with pytest.raises(ApiConnectionError) as upload_failure:
            await fc.files.upload(io.BytesIO(b"x"), "space", name="x.bin")
        failures.append(upload_failure.value)
    for exc in failures:
        text = _all_text(exc)
        assert "wr0ng-pa55" not in text and password not in text
        assert base64.b64encode(b"fc:wr0ng-pa55").decode() not in text
    for record in caplog.records:
        message = record.getMessage() + repr(record.args) + (record.exc_text or "")
        assert password not in message and "wr0ng-pa55" not in message


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> ProxySettings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return ProxySettings.resolve(proxy=None, trust_env=True, allow_clear_key=False)


def _via(settings: ProxySettings, url: str) -> str | None:
    chosen = settings.route(URL(url))
    return None if chosen is None else str(chosen.url)


def test_environment_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    s = _settings(
        monkeypatch,
        HTTPS_PROXY="http://upper:1",
        https_proxy="proxy.corp:3128",  # lower case wins; no scheme means http://
        ALL_PROXY="http://all:2",
        NO_PROXY="internal.corp, 10.0.0.0/8, [::1], svc:8443, .example.org",
    )
    assert _via(s, "https://api-cloud.fluidvip.com/x") == "http://proxy.corp:3128"
    assert _via(s, "http://storage.example/x") == "http://all:2"  # ALL_PROXY fallback
    for direct in (
        "https://internal.corp/",
        "https://a.b.internal.corp/",
        "https://10.1.2.3/",
        "https://[::1]:8443/",
        "https://svc:8443/",
        "https://example.org/",
        "https://www.example.org/",
    ):
        assert _via(s, direct) is None, direct
    for proxied in ("https://notinternal.corp/", "https://svc:443/", "https://11.0.0.1/"):
        assert _via(s, proxied) == "http://proxy.corp:3128", proxied


def test_cgi_ignores_http_proxy_and_socks_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpoxy: under CGI, HTTP_PROXY may come from a request's "Proxy:" header.
    s = _settings(monkeypatch, REQUEST_METHOD="GET", HTTP_PROXY="http://attacker:1")
    assert _via(s, "http://storage.example/") is None
    monkeypatch.delenv("REQUEST_METHOD")
    with pytest.raises(ConfigurationError, match="only http:// and https:// proxies") as info:
        _settings(monkeypatch, ALL_PROXY="socks5://user:secret@socks:1080")
    assert "secret" not in str(info.value)


async def test_explicit_proxy_with_a_session_is_refused() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ConfigurationError, match="session you pass"):
            AsyncFluidCloud("fck_test_k", base_url="https://x.test", session=session, proxy=DEAD)


async def test_storage_through_a_failing_proxy_names_the_proxy_not_the_secret(
    auth_proxy: Proxy, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_PROXY exempts the API's host:port only, so just storage goes through the proxy."""
    from fluidcloud_async import UploadError

    monkeypatch.setenv("NO_PROXY", f"127.0.0.1:{_port(emu.base_url)}")
    monkeypatch.setenv("HTTP_PROXY", DEAD)
    async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url, max_retries=0) as fc:
        space = await fc.spaces.create("storage-proxy")
        with pytest.raises(UploadError) as dead:
            await fc.files.upload(b"x", space.id, name="x.bin")
    assert "cannot connect to the proxy 127.0.0.1:9" in str(dead.value)
    wrong = auth_proxy.url.replace("pr0xy-s3cret", "wr0ng-pa55")
    monkeypatch.setenv("HTTP_PROXY", wrong)
    async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url, max_retries=0) as fc:
        with pytest.raises(UploadError) as refused:
            await fc.files.upload(b"x", space.id, name="x.bin")
    assert "407" in str(refused.value)
    assert "wr0ng-pa55" not in _all_text(refused.value)
    assert emu.stats.storage_puts == 0  # neither PUT got past the proxy


async def test_https_storage_puts_from_worker_threads_use_the_proxy_and_no_proxy(
    auth_proxy: Proxy,
    tls_emu: Emulator,
    tls: Tls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The threaded storage transport (https storage's default) routes as ``_proxy``
    decides: a CONNECT tunnel with the credentials, and NO_PROXY bypasses it."""
    from fluidcloud_async._transfer._threaded import ThreadedStorage

    sent: list[str] = []
    original = ThreadedStorage.put

    async def spy(self: ThreadedStorage, url: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(url)
        return await original(self, url, *args, **kwargs)

    monkeypatch.setattr(ThreadedStorage, "put", spy)
    monkeypatch.setenv("HTTPS_PROXY", auth_proxy.url)
    big = bytes(range(256)) * (3 * MiB // 256)
    storage_port = _port(tls_emu.storage_url)
    async with AsyncFluidCloud(
        tls_emu.api_key, base_url=tls_emu.base_url, ssl_context=tls.client_context()
    ) as fc:
        space = await fc.spaces.create("threads-proxied")
        f = await fc.files.upload(big, space.id, name="big.bin")
        assert f.size == len(big) and len(sent) == 3
        tunnels = [r for r in auth_proxy.requests() if r["port"] == storage_port]
        assert tunnels and all(r["method"] == "CONNECT" for r in tunnels)
        assert "X-Amz-Signature" not in repr(auth_proxy.requests())
    # NO_PROXY naming the storage's host:port: its PUTs go direct, still from threads.
    auth_proxy.clear()
    monkeypatch.setenv("NO_PROXY", f"127.0.0.1:{storage_port}")
    async with AsyncFluidCloud(
        tls_emu.api_key, base_url=tls_emu.base_url, ssl_context=tls.client_context()
    ) as fc:
        await fc.files.upload(big, space.id, name="direct.bin")
    assert len(sent) == 6
    seen = auth_proxy.requests()
    assert seen and not any(r["port"] == storage_port for r in seen)
