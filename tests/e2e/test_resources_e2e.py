"""Every resource method against the emulator over real sockets."""

from __future__ import annotations

import hashlib

import aiohttp
import pytest

from fluidcloud_async import (
    AsyncFluidCloud,
    AuthError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionError,
    QuotaExceededError,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
)
from fluidcloud_async.emulator import Emulator

from .conftest import raw_upload

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


async def test_spaces_and_folders(fluidcloud: AsyncFluidCloud) -> None:
    fc = fluidcloud
    space = await fc.spaces.create("Brand Assets")
    assert space.id in [s.id for s in await fc.spaces.list()]

    inbox = await fc.folders.create("inbox", space_id=space.id)
    child = await fc.folders.create("child", space.id, parent_id=inbox.id)
    assert [f.id for f in await fc.folders.list(space.id)] == [inbox.id]
    assert [f.id for f in await fc.folders.list(space.id, parent_id=inbox.id)] == [child.id]

    renamed = await fc.folders.rename(inbox.id, "incoming")
    assert renamed.name == "incoming"
    moved = await fc.folders.move(child.id, None)
    assert moved.parent_id is None

    trashed = await fc.folders.delete(inbox.id)
    assert trashed is None or trashed.deleted_at is not None
    await fc.folders.delete(inbox.id)  # idempotent: a second delete is no error
    assert [f.id for f in await fc.folders.list(space.id, trash=True)] == [inbox.id]
    restored = await fc.folders.restore(inbox.id)
    assert restored.deleted_at is None


async def test_file_lifecycle(fluidcloud: AsyncFluidCloud) -> None:
    fc = fluidcloud
    space = await fc.spaces.create("s")
    folder = await fc.folders.create("docs", space.id)
    data = b"hello fluidcloud\n" * 100
    f = await raw_upload(
        fc, space.id, data, "hello.txt", client_key="k/hello.txt", content_type="text/plain"
    )
    assert (f.size, f.scan_status, f.sha256) == (
        len(data),
        "pending",
        hashlib.sha256(data).hexdigest(),
    )
    with pytest.raises(ConflictError):
        await fc.files.download_url(f.id)

    clean = await fc.files.wait_until_clean(f.id, timeout=10)
    assert clean.is_clean
    assert (await fc.files.get(f.id)).id == f.id
    assert (await fc.files.resolve("k/hello.txt")).id == f.id
    assert [x.id for x in await fc.files.list(space.id)] == [f.id]

    url = await fc.files.download_url(f.id)
    async with aiohttp.ClientSession() as plain, plain.get(url) as resp:
        assert await resp.read() == data
    preview = await fc.files.preview(f.id)
    assert preview.kind == "text"

    assert (await fc.files.rename(f.id, "greeting.txt")).original_name == "greeting.txt"
    assert (await fc.files.move(f.id, folder.id)).folder_id == folder.id
    assert [x.id for x in await fc.files.list(space.id, folder.id)] == [f.id]
    both = await fc.files.update(f.id, original_name="g.txt", folder_id=None)
    assert (both.original_name, both.folder_id) == ("g.txt", None)

    await fc.files.delete(f.id)
    await fc.files.delete(f.id)  # idempotent
    assert [x.id for x in await fc.files.list(trash=True)] == [f.id]
    with pytest.raises(NotFoundError):
        await fc.files.resolve("k/hello.txt")
    assert (await fc.files.restore(f.id)).deleted_at is None


async def test_supersede_by_client_key(fluidcloud: AsyncFluidCloud) -> None:
    fc = fluidcloud
    space = await fc.spaces.create("s")
    old = await raw_upload(fc, space.id, b"v1", "a.txt", client_key="same")
    new = await raw_upload(fc, space.id, b"v2", "a.txt", client_key="same")
    assert (await fc.files.resolve("same")).id == new.id
    assert (await fc.files.get(old.id)).deleted_at is not None


async def test_links_shares_and_raw_serving(fluidcloud: AsyncFluidCloud) -> None:
    fc = fluidcloud
    space = await fc.spaces.create("s")
    data = bytes(range(256)) * 64
    f = await raw_upload(fc, space.id, data, "img.bin")
    with pytest.raises(ConflictError):
        await fc.files.public_url(f.id)
    await fc.files.wait_until_clean(f.id, timeout=10)

    public = await fc.files.public_url(f.id)
    signed = await fc.files.signed_url(f.id, expires_in_days=1, permission="download")
    assert public.expires_at is None
    assert signed.expires_at is not None
    capped = await fc.shares.create(f.id, max_downloads=1)

    # Raw links are served without any credentials, from another origin.
    async with aiohttp.ClientSession() as anon:
        async with anon.get(public.url) as resp:
            assert await resp.read() == data
            assert resp.headers["Content-Disposition"].startswith("inline")
        async with anon.get(signed.url) as resp:
            assert resp.headers["Content-Disposition"].startswith("attachment")
        async with anon.get(public.url, headers={"Range": "bytes=10-19"}) as resp:
            assert resp.status == 206
            assert await resp.read() == data[10:20]
        async with anon.get(capped.url) as resp:
            assert resp.status == 200
        async with anon.get(capped.url) as resp:
            assert resp.status >= 400

        listed = await fc.shares.list(file_id=f.id)
        assert {s.id for s in listed} >= {public.id, signed.id}
        assert all(s.url is None for s in listed)
        await fc.shares.revoke(public.id)
        await fc.shares.revoke(public.id)  # idempotent
        async with anon.get(public.url) as resp:
            assert resp.status >= 400
    everything = await fc.shares.list(include_inactive=True)
    assert any(s.id == public.id and s.revoked for s in everything)


async def test_quota_and_limits(fluidcloud_emulator: Emulator) -> None:
    key = fluidcloud_emulator.add_tenant(bytes_limit=1000, links_limit=1)
    async with AsyncFluidCloud(key, base_url=fluidcloud_emulator.base_url) as fc:
        space = await fc.spaces.create("tight")
        f = await raw_upload(fc, space.id, b"x" * 600, "a.bin")
        q = await fc.quota.usage()
        assert (q.bytes_used, q.bytes_limit, q.bytes_remaining) == (600, 1000, 400)
        with pytest.raises(QuotaExceededError) as info:
            await fc.uploads.initiate(original_name="b.bin", size=500, space_id=space.id)
        assert info.value.code == "quota_exceeded"
        await fc.files.wait_until_clean(f.id, timeout=10)
        await fc.files.public_url(f.id)
        with pytest.raises(QuotaExceededError):
            await fc.files.public_url(f.id)


async def test_tenant_isolation_is_404(fluidcloud_emulator: Emulator) -> None:
    emu = fluidcloud_emulator
    async with (
        AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as a,
        AsyncFluidCloud(emu.add_tenant(), base_url=emu.base_url) as b,
    ):
        space = await a.spaces.create("mine")
        f = await raw_upload(a, space.id, b"secret", "s.txt", client_key="shared-key")
        with pytest.raises(NotFoundError):
            await b.files.get(f.id)
        with pytest.raises(NotFoundError):
            await b.files.resolve("shared-key")
        with pytest.raises(NotFoundError):
            await b.uploads.initiate(original_name="x", size=1, space_id=space.id)
        assert await b.spaces.list() == []


async def test_auth_and_scopes(fluidcloud_emulator: Emulator) -> None:
    emu = fluidcloud_emulator
    async with AsyncFluidCloud("fck_test_nope", base_url=emu.base_url) as bad:
        with pytest.raises(AuthError):
            await bad.spaces.list()
    readonly = emu.add_tenant(scopes={"spaces:read"})
    async with AsyncFluidCloud(readonly, base_url=emu.base_url) as fc:
        await fc.spaces.list()
        with pytest.raises(PermissionError) as info:
            await fc.spaces.create("x")
        assert info.value.code == "insufficient_scope"
    no_plan = emu.add_tenant(plan_has_api=False)
    async with AsyncFluidCloud(no_plan, base_url=emu.base_url) as fc:
        with pytest.raises(PermissionError) as info:
            await fc.spaces.list()
        assert info.value.code == "feature_not_in_plan"


async def test_validation_errors(fluidcloud: AsyncFluidCloud) -> None:
    fc = fluidcloud
    space = await fc.spaces.create("s")
    with pytest.raises(BadRequestError):
        await fc.files.list(space.id, status="no-such-status")
    other = await fc.spaces.create("other")
    foreign_folder = await fc.folders.create("f", other.id)
    f = await raw_upload(fc, space.id, b"abc", "a.bin")
    with pytest.raises(BadRequestError):
        await fc.files.move(f.id, foreign_folder.id)
    # The SDK refuses 999 days itself; the server's own 422 must map as well.
    with pytest.raises(UnprocessableEntityError):
        await fc._transport.request(
            "POST", "/shares", json={"file_id": f.id, "expires_in_days": 999}
        )


async def test_preview_unsupported_type_is_415(fluidcloud: AsyncFluidCloud) -> None:
    fc = fluidcloud
    space = await fc.spaces.create("s")
    f = await raw_upload(fc, space.id, b"PK\x03\x04zip", "a.zip", content_type="application/zip")
    await fc.files.wait_until_clean(f.id, timeout=10)
    with pytest.raises(UnsupportedMediaTypeError):
        await fc.files.preview(f.id)


async def test_quarantine_infected(fluidcloud: AsyncFluidCloud) -> None:
    from fluidcloud_async import InfectedFileError

    fc = fluidcloud
    space = await fc.spaces.create("s")
    f = await raw_upload(fc, space.id, b"prefix " + EICAR + b" suffix", "eicar.txt")
    with pytest.raises(InfectedFileError):
        await fc.files.wait_until_clean(f.id, timeout=10)
    with pytest.raises(ConflictError):
        await fc.files.public_url(f.id)


async def test_import_url_never_sends_the_key(fluidcloud_emulator: Emulator) -> None:
    from aiohttp import web

    seen: list[dict[str, str]] = []

    async def source(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(body=b"imported bytes", content_type="text/plain")

    app = web.Application()
    app.router.add_get("/data/file.txt", source)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        emu = fluidcloud_emulator
        async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as fc:
            space = await fc.spaces.create("s")
            f = await fc.uploads.import_url(
                url=f"http://127.0.0.1:{port}/data/file.txt", space_id=space.id
            )
            assert (f.original_name, f.size) == ("file.txt", 14)
    finally:
        await runner.cleanup()
    assert seen
    assert all(emu.api_key not in v for headers in seen for v in headers.values())
