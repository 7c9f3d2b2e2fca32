"""A FastAPI service that stores uploads in FluidCloud.

One ``AsyncFluidCloud`` for the whole app (created in the lifespan, so it shares one
connection pool), uploads run in ``BackgroundTasks`` after the request returns, and
clients poll the status by their own key. Run it with:

    pip install fastapi uvicorn python-multipart
    FLUIDCLOUD_API_KEY=... FLUIDCLOUD_SPACE_ID=... uvicorn fastapi_app:app

Without ``FLUIDCLOUD_SPACE_ID`` a space named "fastapi-uploads" is created at start-up.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, BinaryIO

import anyio
from fastapi import BackgroundTasks, FastAPI, HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

from fluidcloud_async import AsyncFluidCloud, FluidCloudError, NotFoundError

state: dict[str, Any] = {}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncFluidCloud() as fc:
        space_id = os.environ.get("FLUIDCLOUD_SPACE_ID")
        if not space_id:
            space_id = (await fc.spaces.create("fastapi-uploads")).id
        state.update(fc=fc, space_id=space_id, errors={})
        yield
    state.clear()


app = FastAPI(lifespan=lifespan)


async def store(path: Path, key: str, filename: str, content_type: str | None) -> None:
    """Runs after the response: upload the spooled file, then delete the local copy."""
    fc: AsyncFluidCloud = state["fc"]
    try:
        await fc.files.upload(
            path,
            state["space_id"],
            name=filename,
            content_type=content_type,
            client_key=key,
            wait_until_clean=True,
        )
    except FluidCloudError as exc:
        state["errors"][key] = str(exc)
    finally:
        await anyio.Path(path).unlink(missing_ok=True)


def spool(source: BinaryIO) -> str:
    fd, name = tempfile.mkstemp(prefix="upload-")
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(source, out, 1024 * 1024)
    return name


@app.post("/files/{key:path}", status_code=202)
async def upload(key: str, file: UploadFile, background: BackgroundTasks) -> dict[str, str]:
    # Spool to disk first (in a worker thread, off the event loop): the request body is
    # gone once the response is sent.
    name = await run_in_threadpool(spool, file.file)
    background.add_task(store, Path(name), key, file.filename or "upload.bin", file.content_type)
    return {"key": key, "status": "accepted"}


@app.get("/files/{key:path}")
async def status(key: str) -> dict[str, Any]:
    fc: AsyncFluidCloud = state["fc"]
    if key in state["errors"]:
        return {"key": key, "status": "failed", "error": state["errors"][key]}
    try:
        f = await fc.files.resolve(key)
    except NotFoundError:
        raise HTTPException(404, "not uploaded (yet)") from None
    return {"key": key, "status": f.scan_status, "id": f.id, "size": f.size, "sha256": f.sha256}
