"""The :class:`Emulator`: three local servers (API, storage, raw links) and their state."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import aiohttp
from aiohttp import web

from . import _auth
from ._app import build_api_app
from ._clock import Clock
from ._config import EmulatorConfig, S3Storage
from ._context import Context
from ._db import Database
from ._faults import Faults
from ._ratelimit import RateLimiter
from ._rawlinks import build_raw_app
from ._scan import Scanner
from ._signing import Signer
from ._stats import Stats
from ._storage import ObjectStore
from ._storage_local import LocalStorage
from ._storage_server import build_storage_app

SHUTDOWN_TIMEOUT = 1.0
DB_NAME = "emulator.sqlite3"

logger = logging.getLogger("fluidcloud_async.emulator")


def _origin(host: str, port: int, scheme: str = "http") -> str:
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _private_dir(path: Path) -> None:
    """Create ``path`` as 0700, or tighten it to 0700 if it is ours (storage/, tmp/)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def prepare_data_dir(root: Path) -> Path:
    """Create the data dir 0700 (its database holds the default key and the URL-signing
    secret) and make the database files 0600; returns the database path.

    An existing directory is not changed (it may be one the user also uses for other
    things), but a warning says so if group or others can enter it.
    """
    if root.exists():
        mode = root.stat().st_mode
        if stat.S_IMODE(mode) & 0o077:
            logger.warning(
                "emulator data dir %s is accessible to group/others (mode %o); its database "
                "holds the default API key and signing secret: chmod 700 %s",
                root,
                stat.S_IMODE(mode),
                root,
            )
    else:
        root.mkdir(mode=0o700, parents=True)
        os.chmod(root, 0o700)  # mkdir's mode is filtered by the umask, which may add nothing
    db_path = root / DB_NAME
    # Created 0600 before SQLite opens it (SQLite gives the -wal/-shm files the database's
    # mode); files left by an older, laxer emulator are tightened.
    os.close(os.open(db_path, os.O_CREAT | os.O_RDWR, 0o600))
    for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(root / name, 0o600)
    return db_path


class Emulator:
    """A local FluidCloud Partner API: the API, presigned storage and raw links, each on
    its own loopback port.

    Args:
        config: How to build it; the defaults when `None`.

    Use it as `async with Emulator(config) as emu:` (or `await emu.start()` and
    `await emu.aclose()`); `emu.base_url` and `emu.api_key` are then set, for
    `AsyncFluidCloud(emu.api_key, base_url=emu.base_url)`.

    Examples:
        ```python
        from fluidcloud_async.emulator import Emulator, EmulatorConfig

        async with Emulator(EmulatorConfig(scan_delay=None)) as emu:
            async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as client:
                space = await client.spaces.create("t")
                g = await client.files.upload(b"x", space.id, name="x.bin")
                emu.mark_clean(g.id)  # the scan would never end by itself
                print((await client.files.get(g.id)).scan_status)  # clean
        ```
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        """The settings it runs with."""
        self.clock = Clock()
        self.stats = Stats()
        """What it has served so far ([`Stats`][fluidcloud_async.emulator.Stats])."""
        self._ctx: Context | None = None
        self._runners: list[web.AppRunner] = []
        self._stack = contextlib.AsyncExitStack()
        self._api_key = ""
        self.base_url = ""
        """The API's origin, for `AsyncFluidCloud(base_url=...)` (set once started)."""
        self.storage_url = ""
        """The presigned storage server's origin (the S3 endpoint in S3 mode)."""
        self.raw_url = ""
        """The raw-link server's origin (`/s/<token>`)."""

    # -- lifecycle -----------------------------------------------------------------------
    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Bind the three servers; on failure everything started so far is undone."""
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise

    async def _start(self) -> None:
        cfg = self.config
        stack = self._stack
        if cfg.data_dir is None:
            root = Path(tempfile.mkdtemp(prefix="fluidcloud-emulator-"))
            stack.callback(shutil.rmtree, root, True)
            db = Database(None)
        else:
            root = Path(cfg.data_dir)
            db = Database(prepare_data_dir(root))
        stack.callback(db.close)
        _private_dir(root / "storage")  # object bytes
        tmp_dir = root / "tmp"
        _private_dir(tmp_dir)
        secret = db.get_meta("signing_secret")
        if secret is None:
            secret = secrets.token_hex(32)
            db.set_meta("signing_secret", secret)
        signer = Signer(bytes.fromhex(secret), self.clock)
        self._api_key = self._default_key(db)

        local: LocalStorage | None = None
        store: ObjectStore
        if isinstance(cfg.storage_backend, S3Storage):
            from ._storage_s3 import S3Store

            store = S3Store(cfg.storage_backend, cfg.url_ttl)
        else:
            local = LocalStorage(root / "storage", db, signer, self.clock, cfg.bucket, cfg.url_ttl)
            store = local
        stack.push_async_callback(store.aclose)

        scanner = Scanner(db, store, self.clock, cfg.scan_delay)
        stack.push_async_callback(scanner.aclose)
        limits = {
            "default": cfg.rate_limit_default,
            "initiate": cfg.rate_limit_initiate,
            "share_create": cfg.rate_limit_share_create,
            "import": cfg.rate_limit_import,
        }
        ctx = Context(
            config=cfg,
            db=db,
            clock=self.clock,
            signer=signer,
            store=store,
            local=local,
            faults=cfg.faults,
            stats=self.stats,
            limiter=RateLimiter(limits, cfg.rate_limit_time_scale),
            scanner=scanner,
            tmp_dir=str(tmp_dir),
        )
        ctx.http = aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60),
        )
        stack.push_async_callback(ctx.http.close)
        self._ctx = ctx

        scheme = "http" if cfg.ssl_context is None else "https"
        api_port = await self._serve(build_api_app(ctx), cfg.api_port)
        self.base_url = _origin(cfg.host, api_port, scheme)
        if local is not None:
            port = await self._serve(build_storage_app(ctx), cfg.storage_port)
            self.storage_url = local.origin = _origin(cfg.host, port, scheme)
        else:
            self.storage_url = store.origin
        raw_port = await self._serve(build_raw_app(ctx), cfg.raw_port)
        self.raw_url = ctx.raw_origin = _origin(cfg.host, raw_port, scheme)
        scanner.resume_pending()

    async def _serve(self, app: web.Application, port: int) -> int:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        # Registered before binding so a failed bind still cleans the runner up.
        self._stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, self.config.host, port, ssl_context=self.config.ssl_context)
        await site.start()
        self._runners.append(runner)
        bound: int = runner.addresses[0][1]
        return bound

    def _default_key(self, db: Database) -> str:
        cfg = self.config
        stored = db.get_meta("default_api_key")
        wanted = cfg.api_key or stored
        if wanted is not None and _auth.lookup(db, wanted) is not None:
            key = wanted
        else:
            tenant = _auth.create_tenant(
                db,
                self.clock,
                bytes_limit=cfg.default_bytes_limit,
                links_limit=cfg.default_links_limit,
            )
            key = _auth.add_key(db, self.clock, tenant, key=cfg.api_key)
        # Kept in clear only for the default tenant, so a persistent emulator can print it.
        db.set_meta("default_api_key", key)
        return key

    async def aclose(self) -> None:
        """Stop the servers, cancel scans, close sessions, drop temp state."""
        self._runners.clear()
        self._ctx = None
        await self._stack.aclose()

    # -- accessors -----------------------------------------------------------------------
    @property
    def ctx(self) -> Context:
        """Internal state (database, store, signer...) for white-box tests."""
        if self._ctx is None:
            raise RuntimeError("the emulator is not running")
        return self._ctx

    @property
    def api_key(self) -> str:
        """Key of the default tenant (all scopes)."""
        return self._api_key

    @property
    def api_url(self) -> str:
        """``base_url`` + ``/api/v1``."""
        return self.base_url + "/api/v1"

    @property
    def faults(self) -> Faults:
        """The live fault knobs (``config.faults``)."""
        return self.config.faults

    # -- test helpers --------------------------------------------------------------------
    def add_tenant(
        self,
        *,
        scopes: Iterable[str] | None = None,
        bytes_limit: int = -1,
        links_limit: int = -1,
        plan_has_api: bool = True,
    ) -> str:
        """Create a tenant with one API key.

        Args:
            scopes: The key's scopes (`"files:read"`, ...); every scope when `None`
                (see [`ALL_SCOPES`][fluidcloud_async.emulator.ALL_SCOPES]).
            bytes_limit: The storage quota in bytes; `-1` for unlimited.
            links_limit: The share-link quota; `-1` for unlimited.
            plan_has_api: `False` makes every call answer 403 `feature_not_in_plan`.

        Returns:
            The new key.
        """
        db = self.ctx.db
        tenant = _auth.create_tenant(
            db,
            self.clock,
            bytes_limit=bytes_limit,
            links_limit=links_limit,
            plan_has_api=plan_has_api,
        )
        return _auth.add_key(db, self.clock, tenant, scopes)

    def tenant_id(self, api_key: str) -> str:
        """The id of the tenant that owns a key.

        Args:
            api_key: The key.

        Raises:
            KeyError: The key is unknown or revoked.
        """
        who = _auth.lookup(self.ctx.db, api_key)
        if who is None:
            raise KeyError("unknown or revoked API key")
        return who.tenant_id

    def add_key(self, api_key: str, *, scopes: Iterable[str] | None = None) -> str:
        """Another key for the tenant that owns `api_key`.

        Args:
            api_key: A key of the tenant.
            scopes: The new key's scopes; every scope when `None`.

        Returns:
            The new key.
        """
        return _auth.add_key(self.ctx.db, self.clock, self.tenant_id(api_key), scopes)

    def revoke_key(self, api_key: str) -> None:
        """Revoke a key: requests with it answer 401 from now on.

        Args:
            api_key: The key.
        """
        self.ctx.db.run(
            "UPDATE api_keys SET revoked = 1 WHERE key_hash = ?", (_auth.key_hash(api_key),)
        )

    def set_limits(
        self,
        api_key: str,
        *,
        bytes_limit: int | None = None,
        links_limit: int | None = None,
        plan_has_api: bool | None = None,
    ) -> None:
        """Change the quota limits or the plan of the tenant that owns `api_key`.

        Args:
            api_key: A key of the tenant.
            bytes_limit: The new storage quota (`-1`: unlimited); unchanged when `None`.
            links_limit: The new share-link quota (`-1`: unlimited); unchanged when `None`.
            plan_has_api: Whether the plan includes API access; unchanged when `None`.
        """
        tenant = self.tenant_id(api_key)
        db = self.ctx.db
        if bytes_limit is not None:
            db.run("UPDATE tenants SET bytes_limit = ? WHERE id = ?", (bytes_limit, tenant))
        if links_limit is not None:
            db.run("UPDATE tenants SET links_limit = ? WHERE id = ?", (links_limit, tenant))
        if plan_has_api is not None:
            db.run("UPDATE tenants SET plan_has_api = ? WHERE id = ?", (int(plan_has_api), tenant))

    def set_scan_result(self, file_id: str, result: str) -> None:
        """Set a file's `scan_status` now, cancelling its running scan.

        Args:
            file_id: The file.
            result: `"pending"`, `"clean"` or `"infected"`.

        Raises:
            KeyError: No such file.
        """
        if not self.ctx.scanner.set_result(file_id, result):
            raise KeyError(f"no file {file_id}")

    def mark_clean(self, file_id: str) -> None:
        """Mark a file clean now: `set_scan_result(file_id, "clean")`.

        Args:
            file_id: The file.
        """
        self.set_scan_result(file_id, "clean")

    async def wait_for_scans(self) -> None:
        """Wait until every pending scan has produced its verdict."""
        await self.ctx.scanner.wait_idle()

    def advance_time(self, seconds: float) -> None:
        """Move the emulator's clock forward: share links and presigned URLs expire.

        Args:
            seconds: How far.
        """
        self.clock.advance(seconds)
