"""Porting from the sync SDK: its exception classes catch what they caught there; and
objects that hold credentials keep them out of ``repr``/``str``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aioresponses import aioresponses

from fluidcloud_async import (
    ApiError,
    AsyncFluidCloud,
    ConflictError,
    File,
    InfectedFileError,
    Link,
    RateLimitError,
    ScanTimeoutError,
    UnprocessableEntityError,
)
from fluidcloud_async.emulator import EICAR, Emulator, EmulatorConfig

from .conftest import API_KEY, ROOT

# Every class python-sdk.md documents, and the status it documents for it.
SYNC_SDK = {"AuthError": 401, "QuotaExceededError": 402, "PermissionError": 403}


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(scan_delay=0.5)) as emulator:
        yield emulator


async def test_sync_sdk_except_conflict_error_catches_unclean_public_uploads(
    emu: Emulator,
) -> None:
    """python-sdk.md: minting a link for a file that is not clean raises ConflictError.
    ``upload(..., public=True)`` waits for the verdict first; both outcomes stay 409s."""
    async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as fc:
        space = await fc.spaces.create("port")
        with pytest.raises(ConflictError) as pending:  # waits less than the scan takes
            await fc.files.upload(b"x", space.id, name="x.txt", public=True, clean_timeout=0.05)
        assert isinstance(pending.value, ScanTimeoutError)
        assert pending.value.status == 409 and pending.value.code == "scan_pending"
        assert pending.value.file.scan_status == "pending"

        with pytest.raises(ConflictError) as infected:
            await fc.files.upload(EICAR, space.id, name="eicar.com", public=True)
        err = infected.value
        assert isinstance(err, InfectedFileError) and isinstance(err, ApiError)
        assert err.status == 409 and err.code == "file_infected" and err.file.is_infected
        assert str(err) == f"file {err.file.id} was scanned infected"  # unchanged message


def test_extra_exceptions_sit_under_the_sync_sdk_classes() -> None:
    """Extras that the sync SDK reports as an HTTP status derive from its class for it."""
    assert issubclass(InfectedFileError, ConflictError)
    assert issubclass(ScanTimeoutError, ConflictError)
    assert issubclass(RateLimitError, ApiError)  # sync: 429 surfaces as ApiError
    import fluidcloud_async

    for name in ("ApiError", "ConflictError", "NotFoundError", *SYNC_SDK):
        assert hasattr(fluidcloud_async, name), name


def test_file_repr_hides_the_raw_link_token() -> None:
    token = "Zk3rT0k3n-secret"
    f = File(id="f1", original_name="a.txt", public_url=f"https://files.example/s/{token}")
    for text in (repr(f), str(f), repr([f])):
        assert token not in text
        assert "public_url='https://files.example/s/***'" in text
    assert f.public_url.endswith(token)  # the value itself is intact
    assert f.model_dump()["public_url"].endswith(token)
    link = Link(id="s1", url=f"https://files.example/s/{token}")
    assert token not in repr(link) and token not in str(link)


def test_transport_options_repr_hides_the_key() -> None:
    fc = AsyncFluidCloud(API_KEY, base_url="https://api.example")
    for text in (repr(fc._transport.settings), str(fc._transport.settings), repr(fc)):
        assert API_KEY not in text
    assert "fck_test_***" in repr(fc._transport.settings)


async def test_validation_errors_do_not_carry_a_share_password_back(
    client: AsyncFluidCloud, mock: aioresponses
) -> None:
    password = "hunter2-" + "x" * 300
    detail = [
        {
            "type": "string_too_long",
            "loc": ["body", "password"],
            "msg": "String should have at most 128 characters",
            "input": password,
            "ctx": {"max_length": 128},
        },
        {"type": "missing", "loc": ["body", "file_id"], "msg": "Field required", "input": {}},
    ]
    mock.post(f"{ROOT}/shares", status=422, payload={"detail": detail})
    with pytest.raises(UnprocessableEntityError) as info:
        await client.shares.create("f1", password=password)
    err = info.value
    assert password not in repr(err.detail) and password not in str(err)
    assert err.detail[0]["input"] == "<redacted>"
    assert err.detail[1]["input"] == {}  # other fields keep what the server said
