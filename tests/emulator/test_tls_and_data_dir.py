"""The emulator's https mode (used by the proxy and TLS tests) and its data-dir permissions."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from fluidcloud_async import ApiConnectionError, AsyncFluidCloud
from fluidcloud_async.emulator import Emulator, EmulatorConfig
from fluidcloud_async.emulator.__main__ import build_parser, config_from_args
from tests._tls import Tls, make_tls


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    return make_tls(tmp_path)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 0, so nothing below is private merely because of the caller's umask."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_https_emulator_serves_api_storage_and_raw_links(tls: Tls) -> None:
    config = EmulatorConfig(ssl_context=tls.server_context(), scan_delay=0.01)
    async with Emulator(config) as emu:
        assert emu.base_url.startswith("https://127.0.0.1:")
        assert emu.storage_url.startswith("https://") and emu.raw_url.startswith("https://")
        async with AsyncFluidCloud(
            emu.api_key, base_url=emu.base_url, ssl_context=tls.client_context()
        ) as fc:
            space = await fc.spaces.create("tls")
            f = await fc.files.upload(b"over tls\n", space.id, name="t.txt", public=True)
            assert f.public_url is not None and f.public_url.startswith(emu.raw_url)
            async with fc.session.get(f.public_url) as resp:
                assert await resp.read() == b"over tls\n"
        # The default trust store does not know the throwaway CA: verification is on.
        async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url, max_retries=0) as bare:
            with pytest.raises(ApiConnectionError, match=r"(?i)certificate"):
                await bare.quota.usage()


def test_command_line_tls_options(tls: Tls) -> None:
    ns = build_parser().parse_args(["--certfile", str(tls.certfile), "--keyfile", str(tls.keyfile)])
    assert config_from_args(ns).ssl_context is not None
    assert config_from_args(build_parser().parse_args([])).ssl_context is None


@pytest.mark.usefixtures("open_umask")
async def test_new_data_dir_is_private(tmp_path: Path) -> None:
    root = tmp_path / "state" / "emulator"
    async with Emulator(EmulatorConfig(data_dir=root)) as emu:
        assert emu.api_key
    assert _mode(root) == 0o700
    for sub in ("storage", "tmp"):
        assert _mode(root / sub) == 0o700
    db_files = list(root.glob("emulator.sqlite3*"))
    assert db_files
    for path in db_files:
        assert _mode(path) == 0o600, path


@pytest.mark.usefixtures("open_umask")
async def test_existing_open_data_dir_warns_and_its_files_are_tightened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "old"
    root.mkdir(mode=0o755)
    async with Emulator(EmulatorConfig(data_dir=root)):
        pass
    # As an older emulator left it: everything readable by everyone.
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    caplog.set_level(logging.WARNING, "fluidcloud_async.emulator")
    async with Emulator(EmulatorConfig(data_dir=root)):
        pass
    assert any("chmod 700" in r.getMessage() for r in caplog.records)
    assert _mode(root) == 0o755  # the user's directory is reported, not changed
    assert _mode(root / "emulator.sqlite3") == 0o600
    assert _mode(root / "storage") == 0o700 and _mode(root / "tmp") == 0o700
