"""Emulator configuration."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ._faults import Faults

__all__ = ["ALL_SCOPES", "EmulatorConfig", "S3Storage", "server_ssl_context"]

MiB = 1024 * 1024
ALL_SCOPES: frozenset[str] = frozenset(
    {
        "spaces:read",
        "spaces:write",
        "folders:read",
        "folders:write",
        "files:read",
        "files:write",
        "shares:read",
        "shares:write",
        "quota:read",
    }
)
"""Every scope an API key can have; a key made without `scopes=` has them all."""


@dataclass(frozen=True, kw_only=True)
class S3Storage:
    """Use a real S3-compatible object store instead of the built-in storage server."""

    endpoint_url: str | None
    bucket: str
    region: str = "us-east-1"
    access_key: str | None = None
    secret_key: str | None = None


@dataclass(kw_only=True)
class EmulatorConfig:
    """How an [`Emulator`][fluidcloud_async.emulator.Emulator] is built (keyword-only).

    Ports of 0 pick free ports. The fields without a description: `host` (the bind
    address), `api_port`, `storage_port`, `raw_port`; `rate_limits` (enforce the documented
    per-key limits) and `rate_limit_default`/`_initiate`/`_share_create`/`_import` (their
    budgets per, scaled, minute); `list_max_limit` (the largest `limit` a list accepts);
    `default_bytes_limit`/`default_links_limit` (the default tenant's quota, `-1`:
    unlimited); `storage_backend` (`"local"`, or an
    [`S3Storage`][fluidcloud_async.emulator.S3Storage]); `faults` (the initial
    [`Faults`][fluidcloud_async.emulator.Faults], live as `emu.faults`).
    """

    host: str = "127.0.0.1"
    api_port: int = 0
    storage_port: int = 0
    raw_port: int = 0
    data_dir: Path | str | None = None
    """None: in-memory SQLite + temp dir removed on exit. A path: state, bytes, keys persist."""
    api_key: str | None = None
    """Key of the default tenant; generated (and persisted with data_dir) when None."""
    bucket: str = "fluidcloud-emulator"
    """Bucket name in local storage URLs (``{storage_url}/{bucket}/{key}``)."""
    multipart_threshold: int = 100_000_000
    """Uploads of this many bytes or more use multipart ("100 MB" in the docs)."""
    part_size: int = 16 * MiB
    """Multipart part size. 16 MiB is a typical S3 client part size; it is raised to
    ceil(size / 10_000) when an object would otherwise need more than S3's 10,000 parts."""
    max_object_size: int = 5 * 1024**4
    """Largest accepted upload (S3's 5 TiB object cap); above it /initiate answers 413."""
    import_max_bytes: int = 50 * 1000**3
    """Cap of /uploads/import-url (50 GB as documented); above it 413."""
    verify_sha256: bool = True
    """True: /complete re-hashes the stored object and answers 400 when the client's
    ``sha256`` differs (a stricter server than documented). False: the client's ``sha256``
    is stored as metadata, unverified, as the API docs describe the real server; use it to
    test that no client guarantee leans on the server re-hashing."""
    url_ttl: int = 3600
    """Lifetime in seconds of presigned storage URLs."""
    scan_delay: float | None = 0.2
    """Seconds between /complete and the scan verdict (pending -> clean/infected).
    None: files stay pending until a test calls ``set_scan_result``/``mark_clean``."""
    rate_limits: bool = False
    rate_limit_time_scale: float = 1.0
    """Divides every rate-limit window: 60.0 turns "per minute" into "per second"."""
    rate_limit_default: int = 600
    rate_limit_initiate: int = 300
    rate_limit_share_create: int = 120
    rate_limit_import: int = 30
    list_page_size: int = 100
    """Page size of list endpoints when the client passes no ``limit``."""
    list_max_limit: int = 1000
    list_style: Literal["paged", "array"] = "paged"
    """"paged": ``{"items": [...], "next_cursor": ...}``; "array": one bare JSON array."""
    source_app: str = "api"
    """``source_app`` stamped on files created through the API."""
    default_bytes_limit: int = -1
    default_links_limit: int = -1
    storage_backend: Literal["local"] | S3Storage = "local"
    ssl_context: ssl.SSLContext | None = None
    """A server-side TLS context: the API, storage and raw-link servers then speak https
    (their URLs say so). None: plain http. See
    [`server_ssl_context`][fluidcloud_async.emulator.server_ssl_context]."""
    faults: Faults = field(default_factory=Faults)


def server_ssl_context(certfile: str | Path, keyfile: str | Path | None = None) -> ssl.SSLContext:
    """A server TLS context for `EmulatorConfig(ssl_context=...)`.

    Args:
        certfile: A PEM certificate chain (it may hold the key too).
        keyfile: The PEM private key, when it is not in `certfile`.

    Returns:
        The context.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    return context
